"""Many writers appending at once: exactly one chain, numbered 1..N, no fork, no gap.

Each thread appends in its own transactions through its own connection, as concurrent requests
do; some transactions roll back after appending, which must leave no hole in the numbering.
"""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import Engine

from yilian.audit import append, verify
from yilian.db import session_factory, unit_of_work

from .helpers import all_rows, an_input

THREADS = 16
APPENDS = 20
ROLLBACK_EVERY = 7  # every 7th transaction of a thread fails after appending


class _Abort(Exception):
    pass


def test_concurrent_appenders_build_one_gapless_chain(engine: Engine) -> None:
    factory = session_factory(engine)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    committed: list[str] = []
    lock = threading.Lock()

    def writer(thread: int) -> None:
        start.wait()
        for i in range(APPENDS):
            request = f"t{thread}-{i}"
            try:
                with unit_of_work(factory) as session:
                    append(session, an_input(i, request_id=request, actor=f"user-{thread}"))
                    if (i + 1) % ROLLBACK_EVERY == 0:
                        raise _Abort
            except _Abort:
                continue
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)
                return
            with lock:
                committed.append(request)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    expected = THREADS * (APPENDS - APPENDS // ROLLBACK_EVERY)
    records = all_rows(factory)
    assert len(records) == len(committed) == expected
    assert [r.seq for r in records] == list(range(1, expected + 1))  # no gap
    assert len({r.prev_hash for r in records}) == expected  # no fork: each head used once
    assert Counter(r.request_id for r in records) == Counter(committed)
    assert all(r.request_id and int(r.request_id.split("-")[1]) % 7 != 6 for r in records)
    with factory() as session:
        report = verify(session)
    assert (report.ok, report.checked) == (True, expected)
