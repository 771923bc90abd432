"""The referral state machine: which action may move a referral Task from which status to which.

A referral is a ServiceRequest (what is asked: direction, reason, urgency, supporting results)
and a Task (where it stands), as FHIR's workflow pattern puts it. Task.status uses the R4 task-
status codes; every allowed move is a row of ``TRANSITIONS``, anything else is refused with 409
naming the action and the status. Who may act: the receiving organization (Task.owner) answers
the referral, the referring organization (Task.requester) cancels it and records its follow-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from yilian.fhir.errors import invalid
from yilian.referral.errors import conflict


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str | None  # None: the status stays (the action is recorded in businessStatus)
    by: str  # "owner" (receiving organization) | "requester" (referring organization)
    needs_reason: bool = False
    display: str = ""


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("receive", ("requested",), "received", "owner", display="已接收"),
        Transition("accept", ("requested", "received"), "accepted", "owner", display="已接受"),
        Transition("decline", ("requested", "received"), "rejected", "owner", True, "已拒绝"),
        Transition(
            "reschedule",
            ("requested", "received", "accepted"),
            "accepted",
            "owner",
            True,
            "已改约",
        ),  # fmt: skip
        Transition("start", ("accepted",), "in-progress", "owner", display="已就诊"),
        Transition("complete", ("accepted", "in-progress"), "completed", "owner", display="已完成"),
        Transition(
            "cancel",
            ("requested", "received", "accepted"),
            "cancelled",
            "requester",
            True,
            "已撤销",
        ),  # fmt: skip
        Transition(
            "follow-up",
            ("requested", "received", "accepted", "in-progress", "completed", "rejected"),
            None,
            "requester",
            display="已随访",
        ),
    )
}
OPEN = ("requested", "received", "accepted", "in-progress")
TERMINAL = ("completed", "rejected", "cancelled", "failed", "entered-in-error")


def transition(action: str, status: str) -> Transition:
    """The transition for ``action`` from ``status``, or a 409 naming both."""
    step = TRANSITIONS.get(action)
    if step is None:
        raise invalid(
            f"unknown referral action {action!r}; actions: {', '.join(TRANSITIONS)}",
            expression="action",
            rule="referral-action",
        )
    if status not in step.sources:
        raise conflict(
            "referral-transition",
            f"cannot {action} a referral whose Task.status is {status!r}; {action} is allowed "
            f"from {', '.join(step.sources)}",
        )
    return step
