"""Pure desk rules: what a screen-pop card shows, which status a pause means, what an outcome,
a user or an API token request may contain. Standard library only; no I/O.

Untrusted input (HTTP bodies, caller names) is validated here and raises ``DeskInvalid`` naming
the field; it is never formatted into markup (the browser renders text nodes only).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from desk.errors import DeskInvalid
from desk.models import OUTCOMES, ROLES, STATUSES, WRAPUP_REASON, OperatorState, Outcome, UserInput
from desk.ports import Patient

ROUTING_KEYS = ("ROUTE_REASON", "ROUTE_MODE", "ROUTE_QUEUE", "ROUTE_PRIORITY", "ROUTE_AGENT",
                "ROUTE_STICKY", "ROUTE_CAMPAIGN", "ROUTE_LANG")  # fmt: skip
RECORDING_VARIABLE = "MIXMONITOR_FILENAME"
LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
INTERFACE_RE = re.compile(r"^(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@-]{1,64}$")
NAME_RE = re.compile(r"^[\w.-]{1,64}$")
MAX_TEXT = 2000


def age(birth: date | None, today: date) -> int | None:
    """Full years on ``today``; None when the birth date is unknown."""
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def is_paid(source: str, paid_sources: Sequence[str]) -> bool:
    """A paid-advertising source (its name starts with one of ``paid_sources``)."""
    low = source.lower()
    return bool(low) and any(low.startswith(p.lower()) for p in paid_sources if p)


def routing_of(variables: Mapping[str, str]) -> dict[str, str]:
    """Why the call reached this queue: the routing decision's ``ROUTE_*`` variables."""
    return {k[6:].lower(): variables[k] for k in ROUTING_KEYS if variables.get(k)}


def recording_link(variables: Mapping[str, str], template: str) -> str:
    """The URL of the call's MixMonitor file, or "" when Asterisk did not record it.

    Only the base name is used: a path from Asterisk never becomes a path on our server."""
    name = posixpath.basename(variables.get(RECORDING_VARIABLE, "").replace("\\", "/"))
    if not name or not re.fullmatch(r"[\w.+-]{1,200}", name):
        return ""
    return template.replace("{file}", name)


def patient_dict(p: Patient, today: date, operator_name: str) -> dict[str, Any]:
    """The patient part of a card (``operator_name``: the coordinator shown by name)."""
    appt = p.next_appointment
    return {
        "id": p.id, "name": p.full_name, "age": age(p.birth_date, today), "vip": p.vip,
        "segment": p.segment, "notes": p.notes, "coordinator": operator_name,
        "next_appointment": None if appt is None else {
            "starts_at": appt.starts_at.timestamp(), "doctor": appt.doctor,
            "specialty": appt.specialty, "clinic": appt.clinic},
        "plan_items": [
            {"plan": i.plan, "description": i.description, "status": i.status,
             "price": str(i.price), "planned_for": i.planned_for.isoformat()
             if i.planned_for else None}
            for i in p.plan_items if i.status not in ("done", "cancelled")],
    }  # fmt: skip


def script_text(body: str, *, operator: str, patient: str) -> str:
    """A script with ``{operator}``/``{patient}`` filled in (plain replace: no format spec)."""
    return body.replace("{operator}", operator).replace("{patient}", patient or "")


def state_from_pause(extension: str, paused: bool, reason: str) -> OperatorState:
    """The desk status that an Asterisk pause state means."""
    if not paused:
        return OperatorState(extension, "available")
    if reason.lower() in (WRAPUP_REASON, "wrapup"):
        return OperatorState(extension, "wrapup", WRAPUP_REASON)
    return OperatorState(extension, "paused", reason)


def parse_status(body: Mapping[str, Any]) -> tuple[str, str]:
    """``{"status": "available|paused|wrapup", "reason": "…"}`` → (status, reason)."""
    status = body.get("status")
    if status not in STATUSES:
        raise DeskInvalid(message=f"status: expected one of {', '.join(STATUSES)}",
                          field="status")  # fmt: skip
    reason = _text(body, "reason", 80)
    if status == "paused" and not reason:
        raise DeskInvalid(message="reason: a pause needs a reason", field="reason")
    return str(status), WRAPUP_REASON if status == "wrapup" else reason


def parse_outcome(
    call_id: str, body: Mapping[str, Any], tags: Sequence[str], reasons: Sequence[str]
) -> Outcome:
    """Validate an operator's outcome for ``call_id`` against the configured lists."""
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        raise DeskInvalid(message=f"outcome: expected one of {', '.join(OUTCOMES)}",
                          field="outcome")  # fmt: skip
    given = _str_list(body, "tags")
    unknown = [t for t in given if t not in tags]
    if unknown:
        raise DeskInvalid(message=f"tags: unknown tag {unknown[0]!r}", field="tags")
    reason = _text(body, "reason", 80)
    if outcome == "not_booked" and reason not in reasons:
        raise DeskInvalid(message=f"reason: expected one of {', '.join(reasons)}",
                          field="reason")  # fmt: skip
    if outcome != "not_booked":
        reason = ""
    return Outcome(call_id, str(outcome), tuple(dict.fromkeys(given)), reason,
                   _text(body, "notes", MAX_TEXT))  # fmt: skip


def parse_user(body: Mapping[str, Any], *, creating: bool) -> UserInput:
    """An admin's user request. ``creating``: a password (≥ 8 characters) is required."""
    login = str(body.get("login", "")).strip().lower()
    if not LOGIN_RE.match(login):
        raise DeskInvalid(message="login: 2-64 of a-z 0-9 . _ -", field="login")
    name = _text(body, "name", 120).strip()
    if not name:
        raise DeskInvalid(message="name: required", field="name")
    roles = _str_list(body, "roles")
    if not roles or any(r not in ROLES for r in roles):
        raise DeskInvalid(message=f"roles: one or more of {', '.join(ROLES)}", field="roles")
    extension = str(body.get("extension", "") or "").strip()
    if extension and not INTERFACE_RE.match(extension):
        raise DeskInvalid(message="extension: an interface like PJSIP/op101", field="extension")
    password = str(body.get("password", "") or "")
    if (creating or password) and len(password) < 8:
        raise DeskInvalid(message="password: at least 8 characters", field="password")
    queues, skills = _names(body, "queues"), _names(body, "skills")
    return UserInput(login, name, tuple(dict.fromkeys(roles)), extension, queues, skills,
                     password, bool(body.get("active", True)))  # fmt: skip


def parse_token_request(body: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """``{"name": "…", "roles": [...]}`` for a new API token."""
    name = _text(body, "name", 80).strip()
    if not name:
        raise DeskInvalid(message="name: required", field="name")
    roles = _str_list(body, "roles")
    if not roles or any(r not in ROLES for r in roles):
        raise DeskInvalid(message=f"roles: one or more of {', '.join(ROLES)}", field="roles")
    return name, tuple(dict.fromkeys(roles))


def _names(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = _str_list(body, key)
    if any(not NAME_RE.match(v) for v in values):
        raise DeskInvalid(message=f"{key}: names of letters, digits . _ -", field=key)
    return tuple(dict.fromkeys(values))


def _str_list(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DeskInvalid(message=f"{key}: expected a list of strings", field=key)
    if len(value) > 50:
        raise DeskInvalid(message=f"{key}: at most 50 items", field=key)
    return value


def _text(body: Mapping[str, Any], key: str, limit: int) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DeskInvalid(message=f"{key}: expected a string", field=key)
    if len(value) > limit:
        raise DeskInvalid(message=f"{key}: at most {limit} characters", field=key)
    if limit <= 200 and any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise DeskInvalid(message=f"{key}: control characters are not allowed", field=key)
    return value
