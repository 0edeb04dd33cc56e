"""Value types of routing: what a decision takes in (``RouteRequest``, ``CallerProfile``,
``LiveSnapshot``) and what it gives out (``Decision``, ``Tracking``, ``RouteRecord``).

Pure: standard library and ``callserver.core`` only. Every string that ends up in a channel
variable is either from the validated rules file or checked against ``SAFE_TOKEN``/``SAFE_AGENT``
here, so nothing coming from a caller, a SIP header or the CRM can carry a line break or a quote
into Asterisk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from callserver.core.phone import try_normalize

Mode = Literal["queue", "bot", "callback", "voicemail"]
MODES: tuple[Mode, ...] = ("queue", "bot", "callback", "voicemail")
Origin = Literal["agi", "ari", "api"]
ProfileStatus = Literal["found", "unknown", "anonymous", "timeout", "error", "skipped"]
Scope = Literal["all", "queue", "skill", "campaign", "did"]
SCOPES: tuple[Scope, ...] = ("all", "queue", "skill", "campaign", "did")
"""Override scopes, least specific first: a more specific active override wins."""

SAFE_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
"""Names of queues, skills, campaigns, sources, languages and override ids."""
SAFE_AGENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./@:-]{0,79}")
"""An agent's dial string / queue member interface (``PJSIP/op101``, ``Local/101@agents``)."""
DIGITS = re.compile(r"[0-9]{1,20}")


def safe_token(value: str | None) -> str:
    """``value`` stripped if it is a safe token, else ``''`` (untrusted input is dropped)."""
    if not value:
        return ""
    value = value.strip()
    return value if SAFE_TOKEN.fullmatch(value) else ""


def did_digits(value: str | None) -> str:
    """The digits of a DID, in E.164 form when it reads as a phone number (``+7 (495) 123-45-67``,
    ``84951234567`` and ``4951234567`` → ``74951234567``), else as given (an extension ``100``),
    or ``''``: one number is one call-tracking key whatever form the carrier sends."""
    if not value:
        return ""
    e164 = try_normalize(value[:40])
    if e164 is not None:
        return e164[1:]
    digits = "".join(ch for ch in value if ch.isdigit())
    return digits if DIGITS.fullmatch(digits) else ""


def ivr_digits(value: str | None) -> str:
    """IVR digits (1-4 of 0-9) as given, else ``''``: no partial salvage of garbage."""
    value = (value or "").strip()
    return value if DIGITS.fullmatch(value) and len(value) <= 4 else ""


@dataclass(frozen=True, slots=True)
class CallerProfile:
    """What routing needs to know about a known patient (from the CRM, through a port).

    ``coordinator``/``last_operator`` are agent interfaces as the queues know them
    (``PJSIP/op101``); anything else is ignored by the policy.
    """

    patient_id: str
    coordinator: str = ""
    last_operator: str = ""
    vip: bool = False
    language: str = ""
    segment: str = ""
    prepayment_required: bool = False

    @property
    def known(self) -> bool:
        return bool(self.patient_id)


@dataclass(frozen=True, slots=True)
class QueueLive:
    """One queue right now: member interfaces logged in / free, estimated wait in seconds."""

    logged_in: frozenset[str] = frozenset()
    free: frozenset[str] = frozenset()
    est_wait_s: float | None = None


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    """Live state of every queue the rules mention; an unknown queue reads as empty."""

    queues: Mapping[str, QueueLive] = field(default_factory=dict)

    def queue(self, name: str) -> QueueLive:
        return self.queues.get(name) or QueueLive()

    def agent_logged_in(self, agent: str) -> bool:
        return any(agent in q.logged_in for q in self.queues.values())

    def agent_free(self, agent: str) -> bool:
        return any(agent in q.free for q in self.queues.values())


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """One call asking where to go. ``caller`` is E.164 or None (anonymous / unreadable).

    ``campaign_hint``/``source_hint`` come from the dialplan arguments or a SIP header variable,
    ``ivr_digits`` from an IVR menu; all are untrusted and sanitised by the constructors in
    ``agi_handler``/``ari``.
    """

    uniqueid: str
    linkedid: str = ""
    channel: str = ""
    caller: str | None = None
    did: str = ""
    campaign_hint: str = ""
    source_hint: str = ""
    ivr_digits: str = ""
    channel_language: str = ""
    origin: Origin = "agi"


@dataclass(frozen=True, slots=True)
class Tracking:
    """Call tracking: where the call came from (for marketers' attribution)."""

    did: str = ""
    source: str = ""
    campaign: str = ""
    paid: bool = False
    clinic: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a call goes. ``reasons`` are short machine-readable codes, most important first."""

    queue: str
    mode: Mode = "queue"
    priority: int = 0
    preferred_agent: str = ""
    sticky_seconds: int = 0
    language: str = ""
    skill: str = ""
    reasons: tuple[str, ...] = ()
    rule_version: str = ""
    tracking: Tracking = field(default_factory=Tracking)

    @property
    def reason(self) -> str:
        """The reasons as one channel-variable-safe string (``ivr:therapy,vip,paid``)."""
        return ",".join(self.reasons)

    def channel_variables(self) -> list[tuple[str, str]]:
        """The ``ROUTE_*`` channel variables the dialplan reads, in the order they are set."""
        return [
            ("ROUTE_QUEUE", self.queue),
            ("ROUTE_PRIORITY", str(self.priority)),
            ("ROUTE_AGENT", self.preferred_agent),
            ("ROUTE_STICKY", str(self.sticky_seconds)),
            ("ROUTE_LANG", self.language),
            ("ROUTE_MODE", self.mode),
            ("ROUTE_REASON", self.reason),
            ("ROUTE_CAMPAIGN", self.tracking.campaign),
            ("ROUTE_RULES_VERSION", self.rule_version),
        ]


@dataclass(frozen=True, slots=True)
class RouteRecord:
    """The call tracking record of one call: persisted by the ``DecisionLog`` port."""

    uniqueid: str
    linkedid: str
    origin: Origin
    decision: Decision
    decided_at: datetime
    profile_status: ProfileStatus
    patient_id: str = ""
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (the HTTP API and the store use it)."""
        d = self.decision
        t = d.tracking
        return {
            "uniqueid": self.uniqueid,
            "linkedid": self.linkedid,
            "origin": self.origin,
            "did": t.did,
            "ad_source": t.source,
            "campaign": t.campaign,
            "paid": t.paid,
            "clinic": t.clinic,
            "queue": d.queue,
            "mode": d.mode,
            "priority": d.priority,
            "preferred_agent": d.preferred_agent,
            "sticky_seconds": d.sticky_seconds,
            "language": d.language,
            "skill": d.skill,
            "reasons": list(d.reasons),
            "rule_version": d.rule_version,
            "profile_status": self.profile_status,
            "patient_id": self.patient_id,
            "decided_at": self.decided_at.isoformat(),
            "elapsed_ms": round(self.elapsed_ms, 3),
        }


@dataclass(frozen=True, slots=True)
class Override:
    """A supervisor's run-time rule override, e.g. all ``reception`` calls → bot for 30 minutes.

    ``scope``/``value`` select calls (``value`` is empty for ``all``); ``mode``, ``queue`` and
    ``priority`` replace the decision's fields when given. Times are aware datetimes.
    """

    id: str
    scope: Scope
    value: str
    created_at: datetime
    expires_at: datetime
    created_by: str
    mode: Mode | None = None
    queue: str | None = None
    priority: int | None = None
    note: str = ""

    def active(self, now: datetime) -> bool:
        return self.created_at <= now < self.expires_at

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "scope": self.scope,
            "value": self.value,
            "mode": self.mode,
            "queue": self.queue,
            "priority": self.priority,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "created_by": self.created_by,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change to the overrides: ``action`` is ``create``, ``delete`` or ``expire``."""

    at: datetime
    action: Literal["create", "delete", "expire"]
    actor: str
    override: Override

    def to_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "action": self.action,
            "actor": self.actor,
            "override": self.override.to_dict(),
        }
