"""Commit order across the worker processes of one load.

Workers write their chunks' rows in parallel, but each chunk commits (audit entry, file
progress) only when every earlier chunk of the load has committed or failed: the recorded file
position then always marks a prefix of the input, which is what makes a load resumable. Chunks
are numbered by the main process in the order it reads them; a worker waits for its number's
turn and passes the turn on when it is done, whatever happened.

The primitives come from the pool's multiprocessing context and reach the workers through the
pool's initializer (https://docs.python.org/3/library/multiprocessing.html#synchronization-between-processes);
the main process uses the same object when it prepares chunks itself.
"""

from __future__ import annotations

from multiprocessing.context import BaseContext
from typing import Any

POLL_SECONDS = 0.05  # how often a waiting worker looks at the turn


class Yield(Exception):
    """An earlier chunk waits for this one's locks: give up the transaction, retry in turn."""


class Turns:
    def __init__(self, context: BaseContext) -> None:
        self._next: Any = context.Value("q", 0)
        self._aborted: Any = context.Value("b", 0)
        self._blocked: Any = context.Value("q", -1)  # an earlier chunk waiting for later ones
        self._changed = context.Condition()

    @property
    def aborted(self) -> bool:
        return bool(self._aborted.value)

    def abort(self) -> None:
        """No later chunk commits (strict stop, cancellation, a failed chunk)."""
        with self._changed:
            self._aborted.value = 1
            self._changed.notify_all()

    def blocked(self, seq: int) -> None:
        """Chunk ``seq`` could not get a lock: later chunks waiting with locks held yield."""
        with self._changed:
            if self._blocked.value < 0 or seq < self._blocked.value:
                self._blocked.value = seq
            self._changed.notify_all()

    def wait(self, seq: int, *, holding_locks: bool = False) -> None:
        """Return when it is chunk ``seq``'s turn or the load is aborted (a chunk cancelled in
        the main process never takes its turn). A chunk ``holding_locks`` (its rows written,
        uncommitted) raises ``Yield`` when an earlier chunk reports itself ``blocked``."""
        with self._changed:
            while self._next.value != seq and not self._aborted.value:
                if holding_locks and 0 <= self._blocked.value < seq:
                    raise Yield()
                self._changed.wait(POLL_SECONDS)

    def done(self, seq: int) -> None:
        """Chunk ``seq`` has committed or given up: the next chunk's turn."""
        with self._changed:
            self._next.value = max(self._next.value, seq + 1)
            if 0 <= self._blocked.value <= seq:
                self._blocked.value = -1
            self._changed.notify_all()


_installed: Turns | None = None


def install(turns: Turns) -> None:
    """Pool initializer: the load's ``Turns`` for the chunks this worker process will run."""
    global _installed
    _installed = turns


def installed() -> Turns:
    if _installed is None:
        raise RuntimeError("no commit order installed in this process (see Loader)")
    return _installed
