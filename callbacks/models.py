"""Callback jobs and attempts (plain data; the store maps them to PostgreSQL rows).

A *job* is one patient need ("call this number back"): several misses from one number merge into
the one open job. An *attempt* is one Originate: the operator's phone first, then the patient.
Times are POSIX seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JobState = Literal["open", "active", "done"]
"""``open``: waiting for its next attempt; ``active``: being dialled or claimed by an operator;
``done``: finished (``outcome`` says how)."""

DIAL_RESULTS = ("answered", "no_answer", "busy", "failed", "operator_no_answer")
"""What the dialer reports per attempt (the ``dialer`` port's ``result``)."""
LOST = "interrupted"
"""An attempt whose instance died and whose call was gone when it was reconciled."""
OPERATOR_RESULTS = ("reached", "booked", "not_needed", "no_answer", "busy")
"""What an operator records through ``POST /api/callbacks/jobs/{id}/result``."""
FINAL_OUTCOMES = ("reached", "booked", "not_needed", "patient_called", "max_attempts", "dnc")

EXPLICIT_REASONS = frozenset({"web_form", "bot", "virtual_hold", "api"})
"""Requests the patient made (consent): the do-not-call list does not stop them."""


@dataclass(frozen=True)
class JobSpec:
    """A request to call ``phone`` (E.164) back; merged into an open job of the same phone."""

    phone: str
    reason: str
    source: str = ""
    queue: str = ""
    call_id: str = ""
    patient_id: str = ""
    patient_name: str = ""
    name: str = ""
    comment: str = ""
    utm: dict[str, str] = field(default_factory=dict)
    patient_tz: str = ""
    priority: int = 0
    missed_at: float = 0.0
    due_at: float = 0.0
    """Earliest first attempt (the policy moves it into allowed hours)."""


@dataclass(frozen=True)
class ClaimedJob:
    """A job the scheduler claimed for one attempt (``attempt_id``) on ``operator``."""

    id: str
    phone: str
    reason: str
    source: str
    queue: str
    patient_name: str
    patient_tz: str
    missed_at: float
    attempts: int
    missed_count: int
    attempt_id: str
    operator: str


JOB_FIELDS = (
    "id", "phone", "patient_id", "patient_name", "name", "reason", "source", "queue",
    "missed_at", "attempts", "state", "claimed_by", "priority", "next_attempt_at",
    "last_result", "missed_count", "outcome", "comment", "closed_at", "first_attempt_at",
    "created_at",
)  # fmt: skip


def job_dict(row: Any) -> dict[str, Any]:
    """A job row as the API shows it (the fields desk's missed-calls panel reads)."""
    return {f: row[f] for f in JOB_FIELDS}
