"""The data steward's review queue: candidate pairs, decisions on them, and their undo.

``enqueue_candidate`` is what the matchers call (real-time on a Patient write, the batch job's
import); ``decisions`` links, keeps apart, merges and undoes.
"""

from yilian.mpi.review.queue import (
    ComparisonEvidence,
    ReviewError,
    count_items,
    enqueue_candidate,
    get_item,
    list_items,
)

__all__ = [
    "ComparisonEvidence",
    "ReviewError",
    "count_items",
    "enqueue_candidate",
    "get_item",
    "list_items",
]
