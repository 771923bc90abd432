"""Which Slots an Appointment occupies — shared by the booking rule and the bulk loader.

The booking rule (``yilian.referral.booking``, a store write hook) books and frees the Slots an
Appointment starts and stops holding. The bulk loader writes rows without running write hooks, so
it refuses Appointments that hold a Slot (docs/bulk.md, docs/referral.md): both ask this module.
"""

from __future__ import annotations

from typing import Any

# Appointment statuses that occupy their slots (R4 appointmentstatus); proposed, waitlist,
# cancelled, noshow and entered-in-error do not.
HOLDING = frozenset({"pending", "booked", "arrived", "fulfilled", "checked-in"})


def held_slots(appointment: dict[str, Any] | None) -> set[str]:
    """Ids of the Slots the Appointment occupies (none unless its status holds them)."""
    if not appointment or appointment.get("status") not in HOLDING:
        return set()
    found = set()
    for slot in appointment.get("slot", []):
        text = slot.get("reference") if isinstance(slot, dict) else None
        kind, _, res_id = text.rpartition("/") if isinstance(text, str) else ("", "", "")
        if kind.rsplit("/", 1)[-1] == "Slot" and res_id:
            found.add(res_id)
    return found
