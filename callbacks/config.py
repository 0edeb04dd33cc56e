"""``[callbacks]`` config section (env: ``CALLSERVER_CALLBACKS_<KEY>``), validated here.

Times are seconds unless the name says otherwise; hours are ``HH:MM-HH:MM`` in the named zone;
days are ISO weekdays (1 = Monday) like ``1-5`` or ``1,2,3,4,5,6``.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callserver.errors import ConfigError

DIALING_MODES = ("agent_first", "patient_first")
"""``agent_first``: the operator's phone rings first, then the patient. ``patient_first``: the
patient first, a short IVR ("the clinic is calling you back, press 1"), then the operator the
scheduler picked (dialplan ``[callbacks-patient-first]``, see the README)."""


@dataclass(frozen=True)
class CallbacksConfig:
    """``[callbacks]``: missed-call detection, the callback scheduler and the web form."""

    timezone: str = "Europe/Moscow"
    """The clinic's zone: business hours and the default patient zone."""
    business_hours: str = "09:00-20:00"
    business_days: str = "1-6"
    patient_hours: str = "09:00-21:00"
    """Hours it is reasonable to call a patient, in the patient's own zone."""
    retry_delays_s: tuple[float, ...] = (300.0, 1800.0)
    """After the 1st, 2nd … failed attempt; past the list: the next working morning."""
    max_attempts: int = 4
    operator_retry_s: float = 5.0
    """Retry after the operator did not pick up (not counted as an attempt on the patient)."""
    poll_interval_s: float = 0.5
    """Scheduler tick when nothing wakes it (a free operator or a new job wakes it at once)."""
    lease_s: float = 30.0
    """An attempt's lease; renewed every third of it while dialling. A dead instance's attempt
    is reconciled once its lease expired."""
    reconcile_gap_s: float = 120.0
    """After a lost attempt (instance died, call gone), wait this long before dialling again."""
    claim_ttl_s: float = 900.0
    """A job an operator claimed by hand returns to the pool after this long without a result."""
    operator_ring_s: float = 20.0
    call_max_s: float = 3600.0
    dialing: str = "agent_first"
    dial_context: str = "callbacks-dial"
    """Dialplan context the operator's answered leg continues in: ``Dial`` to the patient."""
    patient_first_context: str = "callbacks-patient-first"
    """Patient-first: the context the patient's answered leg runs (IVR, then ``Dial`` to the
    operator in ``CALLBACK_AGENT``)."""
    trunk_channel: str = "PJSIP/{number}@trunk"
    """Patient-first: the channel dialled for a patient (``{number}``: digits without +)."""
    patient_ring_s: float = 30.0
    caller_id: str = ""
    """The clinic's number presented to the patient (``CALLBACK_CID`` for the dialplan)."""
    queues: tuple[str, ...] = ()
    """Queues whose free members take callbacks; empty: any queue's members."""
    paid_sources: tuple[str, ...] = ()
    """Ad sources (``AD_SOURCE``) that are paid: their misses are called back first."""
    short_call_s: float = 10.0
    busy_wait_s: float = 60.0
    """An answered call shorter than ``short_call_s`` after waiting at least this long is a miss."""
    ring_out_s: float = 45.0
    """Queue timeout of the dialplan: an abandon at ≥ this hold time is a ring-out."""
    ivr_min_s: float = 3.0
    """IVR hang-ups shorter than this are misdials, not misses."""
    ignore_modes: tuple[str, ...] = ("bot",)
    """``ROUTE_MODE`` values whose calls never reached a queue on purpose (the voice bot)."""
    form_token: str = ""
    """Scoped token for ``POST /api/callback-requests``; empty: the form path is open."""
    form_per_phone: int = 3
    form_per_phone_window_s: float = 3600.0
    form_per_client: int = 20
    form_per_client_window_s: float = 600.0
    form_max_days: int = 14
    """How far ahead a preferred time may be."""
    vhold_threshold_s: float = 120.0
    """Virtual hold: offer a callback when the caller's estimated wait exceeds this."""
    vhold_mean_handle_s: float = 180.0
    """Mean handle time per call used for the wait estimate."""
    vhold_slot_context: str = "callbacks-vhold-slot"
    """Virtual hold: the dialplan context of the placeholder ``Local/<digits>@…/n`` whose ``;2``
    half queues at the caller's place (``dialplan-snippet.conf``)."""
    vhold_max_wait_s: float = 3600.0
    """Virtual hold: how long the placeholder may wait in the queue (the Originate's Timeout);
    after it the callback is dialled agent-first by the scheduler."""


def _hours(key: str, text: str) -> tuple[int, int]:
    try:
        start, end = text.split("-")
        a = [int(x) for x in start.strip().split(":")]
        b = [int(x) for x in end.strip().split(":")]
        lo, hi = a[0] * 60 + a[1], b[0] * 60 + b[1]
    except (ValueError, IndexError):
        raise ConfigError(message=f"{key}: expected HH:MM-HH:MM, got {text!r}", key=key) from None
    if not 0 <= lo < hi <= 24 * 60:
        raise ConfigError(message=f"{key}: start must be before end within a day", key=key)
    return lo, hi


def _days(key: str, text: str) -> frozenset[int]:
    days: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            days.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ConfigError(message=f"{key}: expected days like 1-5 or 1,3,5", key=key) from None
    if not days or not days <= set(range(1, 8)):
        raise ConfigError(message=f"{key}: days are 1 (Monday) … 7 (Sunday)", key=key)
    return frozenset(days)


def hours_of(cfg: CallbacksConfig) -> tuple[tuple[int, int], frozenset[int], tuple[int, int]]:
    """(business minutes, business days, patient minutes); raises ConfigError."""
    return (
        _hours("callbacks.business_hours", cfg.business_hours),
        _days("callbacks.business_days", cfg.business_days),
        _hours("callbacks.patient_hours", cfg.patient_hours),
    )


def validate_callbacks(cfg: CallbacksConfig) -> None:
    """Raise ConfigError naming the bad ``callbacks.*`` key."""
    try:
        ZoneInfo(cfg.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(message="callbacks.timezone: unknown time zone",
                          key="callbacks.timezone") from None  # fmt: skip
    hours_of(cfg)
    for key in ("poll_interval_s", "lease_s", "operator_ring_s", "call_max_s", "patient_ring_s",
                "form_per_phone_window_s", "form_per_client_window_s",
                "vhold_max_wait_s"):  # fmt: skip
        if getattr(cfg, key) <= 0:
            raise ConfigError(message=f"callbacks.{key}: must be > 0", key=f"callbacks.{key}")
    for key in ("max_attempts", "form_per_phone", "form_per_client", "form_max_days"):
        if getattr(cfg, key) < 1:
            raise ConfigError(message=f"callbacks.{key}: must be ≥ 1", key=f"callbacks.{key}")
    if any(d < 0 for d in cfg.retry_delays_s):
        raise ConfigError(message="callbacks.retry_delays_s: delays must be ≥ 0",
                          key="callbacks.retry_delays_s")  # fmt: skip
    if cfg.dialing not in DIALING_MODES:
        raise ConfigError(
            message=f"callbacks.dialing: {cfg.dialing!r} is not implemented (agent_first only)",
            key="callbacks.dialing",
        )
    if "{number}" not in cfg.trunk_channel or "/" not in cfg.trunk_channel:
        raise ConfigError(message="callbacks.trunk_channel: a channel with {number}, e.g. "
                          "PJSIP/{number}@trunk", key="callbacks.trunk_channel")  # fmt: skip
    if not cfg.dial_context:
        raise ConfigError(message="callbacks.dial_context: must not be empty",
                          key="callbacks.dial_context")  # fmt: skip
