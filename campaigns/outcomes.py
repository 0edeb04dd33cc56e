"""What a call's result means for the CRM and the campaign — pure.

``effects(kind, result, outcome)`` → :class:`Effects`: the appointment's new status, whether the
freed slot goes to the waitlist, a callback job for an operator, a booking request, a task for
the manager, an opt-out, and whether the call is retried (answering machine, silence, no
answer, busy) — after the last attempt the clinic's webhook gets ``unreached`` (its SMS hook).
"""

from __future__ import annotations

from dataclasses import dataclass

RETRY_RESULTS = frozenset({"no_answer", "busy", "failed"})
RETRY_OUTCOMES = frozenset({"answering_machine", "no_response", "hung_up", "no_dialog"})


@dataclass(frozen=True)
class Effects:
    appointment_status: str = ""
    """``confirmed`` / ``cancelled`` in the CRM, or ``""``."""
    offer_slot: bool = False
    callback_reason: str = ""
    """Non-empty: a callback job for an operator with this reason."""
    booking_request: bool = False
    manager_task: bool = False
    opt_out: bool = False
    retry: bool = False


def effects(kind: str, result: str, outcome: str) -> Effects:
    """Effects of one dial. ``result``: answered|no_answer|busy|failed|unknown;
    ``outcome``: the dialog's."""
    if result != "answered":
        return Effects(retry=result in RETRY_RESULTS or result == "unknown")
    if outcome in RETRY_OUTCOMES:
        return Effects(retry=True)
    table = {
        "confirmed": Effects(appointment_status="confirmed"),
        "cancelled": Effects(appointment_status="cancelled", offer_slot=True),
        "reschedule": Effects(callback_reason=f"campaign_{kind}_reschedule"),
        "operator": Effects(callback_reason=f"campaign_{kind}_operator"),
        "opt_out": Effects(opt_out=True),
        "low_score": Effects(manager_task=True),
        "booking_requested": Effects(booking_request=True),
        "slot_accepted": Effects(booking_request=True),
    }
    return table.get(outcome, Effects())


def final_outcome(result: str, outcome: str) -> str:
    """The target's outcome once no retry is left: the dialog's, else what the line did."""
    if outcome and outcome not in RETRY_OUTCOMES:
        return outcome
    return "unreached"
