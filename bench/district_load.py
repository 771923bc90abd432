"""Load a whole synthetic district (``yilian synth --out DIR``) into a store and measure it.

Issue #3 asks for scale 1.0 generation + load benchmarked (time, memory, resources/s). The
generation is timed by ``/usr/bin/time -v yilian synth``; this script times the load of its
output with the same loader ``yilian load`` uses (validation on, worker processes), and reports
wall time, resources/s, CPU per process group (loader, workers, PostgreSQL backends; see
``bulk_load.CpuMeter``) and the peak memory of the loader and its workers.

``--nice`` lowers the priority of the loader and of the PostgreSQL backends serving it, so that a
multi-hour load on a shared machine only takes otherwise idle CPU; the wall time is then not the
loader's speed, the CPU time is.

    .venv/bin/python bench/district_load.py --district /tmp/synth1 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/yilian_scale1 --nice
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bulk_load import CpuMeter, pg_backends  # bench/ is the script's directory
from sqlalchemy import create_engine, text

from yilian.db import make_engine
from yilian.fhir.bulk.importer import Loader, LoadOptions
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.schema import upgrade_to_head


def ensure_pg_database(url: str) -> None:
    """Create the database of ``url`` when it does not exist (a resumed load reuses it)."""
    base, name = url.rsplit("/", 1)
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def renice_forever(pids: Callable[[], list[int]], stop: threading.Event) -> None:
    """Keep the PostgreSQL backends of the load at the loader's own priority (new ones appear per
    connection). Following the loader lets an operator ``renice`` a running load back to normal
    when the machine falls quiet."""
    while not stop.wait(2.0):
        level = os.getpriority(os.PRIO_PROCESS, os.getpid())  # the main thread's, not ours
        for pid in pids():
            with contextlib.suppress(OSError):  # the backend ended between listing and renicing
                os.setpriority(os.PRIO_PROCESS, pid, level)


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory (VmHWM) of a live process, in MB; 0 once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def watch_memory(
    meter: CpuMeter, peaks: dict[int, tuple[str, float]], stop: threading.Event
) -> None:
    """Peak memory of the loader and each of its workers (the pool's workers are not this
    process's children, so ``RUSAGE_CHILDREN`` does not see them)."""
    while not stop.wait(5.0):
        for pid, (group, _cpu) in list(meter.last.items()):
            if group != "postgres":
                peaks[pid] = (group, max(peaks.get(pid, (group, 0.0))[1], peak_rss_mb(pid)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--district", type=Path, required=True, help="a yilian synth --out DIR")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--nice", action="store_true", help="run at the lowest CPU priority")
    args = parser.parse_args()
    if not args.district.is_dir():
        parser.error(f"--district: {args.district} is not a directory")
    if args.nice:
        os.nice(19)
    is_pg = args.database_url.startswith("postgresql")
    if is_pg:
        ensure_pg_database(args.database_url)
    engine = make_engine(args.database_url)
    upgrade_to_head(engine)
    runtime = Runtime(engine, "http://bench/fhir")
    backends = pg_backends(args.database_url) if is_pg else None
    stop = threading.Event()
    if args.nice and backends is not None:
        threading.Thread(target=renice_forever, args=(backends, stop), daemon=True).start()
    files = sorted(args.district.glob("*.ndjson*"))
    size = sum(f.stat().st_size for f in files)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, load {os.getloadavg()}")
    print(f"loading {len(files)} files, {size / 1e9:.2f} GB from {args.district}")
    peaks: dict[int, tuple[str, float]] = {}
    with CpuMeter(backends) as meter:
        threading.Thread(target=watch_memory, args=(meter, peaks, stop), daemon=True).start()
        started = time.perf_counter()
        report = Loader(runtime, RequestContext.system(), LoadOptions(workers=args.workers)).load(
            [args.district]
        )
        seconds = time.perf_counter() - started
    stop.set()
    engine.dispose()
    cpu = meter.seconds()
    total = sum(cpu.values())
    peak_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_peaks = [mb for group, mb in peaks.values() if group == "workers"] or [0.0]
    print(f"loaded {report.loaded:,}, rejected {report.rejected:,} in {seconds:,.1f} s wall")
    print(f"  {report.loaded / seconds:,.0f} resources/s wall; load average now {os.getloadavg()}")
    print(
        "  CPU "
        + ", ".join(f"{group} {value:,.1f} s" for group, value in cpu.items())
        + f" = {total * 1000 / max(report.loaded, 1):.3f} ms per resource"
        + f" → {report.loaded / (total / args.cores):,.0f} resources/s on {args.cores} idle cores"
    )
    print(
        f"  peak memory: loader {peak_main:,.0f} MB, largest worker {max(worker_peaks):,.0f} MB"
        f" ({len(worker_peaks)} worker processes seen)"
    )


if __name__ == "__main__":
    main()
