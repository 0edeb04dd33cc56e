"""The routing policy: one pure, deterministic function from inputs (+ ``now``) to a ``Decision``.

Pipeline and precedence (each step may add a reason code, in this order):

1. **Tracking** — a campaign named by the dialplan/SIP header (``campaign_hint``) that the rules
   know wins over the DID's campaign; otherwise the DID's campaign/source/paid; an unknown DID
   keeps the hinted source. The clinic is the DID's, else ``defaults.clinic``.
2. **Target** — IVR digits → skill (``ivr:<skill>``) > prepayment-required patient → the
   prepayment skill (``prepayment``) > the DID's queue (``did_queue``) > ``defaults.queue``.
3. **Priority** — queue + skill priority, + ``vip``, + ``paid``, + ``known_patient``,
   + ``segment:<name>``.
4. **Language** — the patient's language > the channel's > ``defaults.language`` (only languages
   listed in ``defaults.languages``).
5. **Sticky** — a known patient's coordinator, else last operator, when free (or only logged in,
   with ``require_free = false``; when live state is unknown the agent is tried anyway if it is a
   plain phone endpoint (``PJSIP/op101``, no ``@``): a logged-out phone fails the Dial at once
   and the call goes on to the queue).
6. **Hours** — holiday → ``holiday_mode`` (``holiday``), closed → ``after_hours_mode``
   (``after_hours``).
7. **Overflow** — nobody logged in to the queue → ``empty_mode`` (``no_agents``); estimated wait
   above ``overflow_wait_s`` → ``overflow_mode`` (``overflow_wait``) unless a VIP and
   ``vip_skips_overflow`` (``overflow_skipped_vip``). Unknown live state skips this
   (``live_unknown``).
8. **Override** — the most specific active supervisor override (did > campaign > skill > queue >
   all; newest first on a tie) replaces mode/queue/priority (``override:<id>``). It wins over
   hours and overflow: a supervisor opening an emergency shift means it. Overflow (step 7) is
   judged on the override's queue when it names one: that is where the call goes.

A mode other than ``queue`` clears the preferred agent. Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from routing.models import (
    SAFE_AGENT,
    SCOPES,
    CallerProfile,
    Decision,
    LiveSnapshot,
    Mode,
    Override,
    ProfileStatus,
    RouteRequest,
    Tracking,
)
from routing.rules import RuleSet, SkillRule

_STATUS_REASON: dict[ProfileStatus, str] = {
    "timeout": "crm_timeout",
    "error": "crm_error",
    "anonymous": "anonymous",
}


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """Everything a decision depends on. ``live=None`` means the live state is unknown."""

    request: RouteRequest
    now: datetime
    profile: CallerProfile | None = None
    profile_status: ProfileStatus = "unknown"
    live: LiveSnapshot | None = None
    overrides: Sequence[Override] = ()


def decide(rules: RuleSet, inputs: PolicyInputs) -> Decision:
    """The decision for one call. Deterministic given ``rules`` and ``inputs``; never raises
    for any input the models allow (the service still guards it with ``safe_default``)."""
    reasons: list[str] = []
    profile = inputs.profile if inputs.profile and inputs.profile.known else None
    tracking = track(rules, inputs.request)
    skill, queue = _target(rules, inputs.request, profile, tracking, reasons)
    priority = _priority(rules, queue, skill, tracking, profile, reasons)
    agent, seconds = _sticky(rules, skill, profile, inputs.live, reasons)
    decision = Decision(
        queue=queue,
        priority=priority,
        preferred_agent=agent,
        sticky_seconds=seconds,
        language=_language(rules, inputs.request, profile),
        skill=skill.name if skill else "",
        rule_version=rules.version,
        tracking=tracking,
    )
    mode = _hours(rules, tracking, inputs.now, reasons)
    if mode == "queue":  # overflow is judged on the queue the call really goes to
        mode = _overflow(rules, _final_queue(rules, decision, inputs), profile, inputs.live,
                         reasons)  # fmt: skip
    decision = replace(decision, mode=mode)
    decision = _apply_override(rules, decision, inputs, reasons)
    if inputs.profile_status in _STATUS_REASON:
        reasons.append(_STATUS_REASON[inputs.profile_status])
    if decision.mode != "queue":
        decision = replace(decision, preferred_agent="", sticky_seconds=0)
    return replace(decision, reasons=tuple(reasons))


def safe_default(rules: RuleSet, why: str = "error") -> Decision:
    """The decision used when anything goes wrong: the default queue, nothing clever."""
    return Decision(
        queue=rules.default_queue,
        mode="queue",
        language=rules.default_language,
        reasons=("safe_default", why),
        rule_version=rules.version,
    )


def track(rules: RuleSet, request: RouteRequest) -> Tracking:
    """Call tracking for a request: DID → campaign → source/paid, and the clinic."""
    did_rule = rules.dids.get(request.did)
    clinic = did_rule.clinic if did_rule and did_rule.clinic else rules.default_clinic
    hinted = rules.campaigns.get(request.campaign_hint) if request.campaign_hint else None
    if hinted is not None:
        return Tracking(request.did, hinted.source, hinted.name, hinted.paid, clinic)
    if did_rule is not None:
        source = did_rule.source or request.source_hint
        return Tracking(request.did, source, did_rule.campaign, did_rule.paid, clinic)
    return Tracking(request.did, request.source_hint, request.campaign_hint, False, clinic)


def _target(
    rules: RuleSet,
    request: RouteRequest,
    profile: CallerProfile | None,
    tracking: Tracking,
    reasons: list[str],
) -> tuple[SkillRule | None, str]:
    skill: SkillRule | None = None
    if request.ivr_digits:
        skill = rules.skill_for_digits(request.ivr_digits)
        reasons.append(f"ivr:{skill.name}" if skill else "ivr_unknown")
    if skill is None and profile and profile.prepayment_required and rules.prepayment_skill:
        skill = rules.skills[rules.prepayment_skill]
        reasons.append("prepayment")
    if skill is not None:
        return skill, skill.queue
    did_rule = rules.dids.get(tracking.did)
    if did_rule is not None and did_rule.queue:
        reasons.append("did_queue")
        return None, did_rule.queue
    reasons.append("default_queue")
    return None, rules.default_queue


def _priority(
    rules: RuleSet,
    queue: str,
    skill: SkillRule | None,
    tracking: Tracking,
    profile: CallerProfile | None,
    reasons: list[str],
) -> int:
    p = rules.priority
    queue_rule = rules.queues.get(queue)
    total = (queue_rule.priority if queue_rule else 0) + (skill.priority if skill else 0)
    if profile and profile.vip:
        total += p.vip
        reasons.append("vip")
    if tracking.paid:
        total += p.paid
        reasons.append("paid")
    if profile:
        total += p.known
        reasons.append("known_patient")
        if profile.segment in p.segments:
            total += p.segments[profile.segment]
            reasons.append(f"segment:{profile.segment}")
    return total


def _language(rules: RuleSet, request: RouteRequest, profile: CallerProfile | None) -> str:
    for candidate in (profile.language if profile else "", request.channel_language):
        if candidate and candidate in rules.languages:
            return candidate
    return rules.default_language


PLAIN_ENDPOINT = re.compile(r"(?:PJSIP|SIP|IAX2)/[A-Za-z0-9_.-]{1,64}")


def _sticky(
    rules: RuleSet,
    skill: SkillRule | None,
    profile: CallerProfile | None,
    live: LiveSnapshot | None,
    reasons: list[str],
) -> tuple[str, int]:
    sticky = rules.sticky
    if profile is None:
        return "", 0
    if skill is not None and skill.name in sticky.skip_skills:
        reasons.append("sticky_skipped_skill")
        return "", 0
    candidates = (
        ("coordinator", profile.coordinator, sticky.coordinator_seconds),
        ("last_operator", profile.last_operator, sticky.last_operator_seconds),
    )
    for role, agent, seconds in candidates:
        if not agent or seconds <= 0 or not SAFE_AGENT.fullmatch(agent):
            continue
        if live is not None:
            ok = live.agent_free(agent) if sticky.require_free else live.agent_logged_in(agent)
            if not ok:
                reasons.append(f"{role}_unavailable")
                continue
        elif not PLAIN_ENDPOINT.fullmatch(agent):
            # unverified CRM data must never make the dialplan Dial() through a trunk
            # (PJSIP/79990000000@trunk): untested agents are plain phone endpoints only
            reasons.append(f"{role}_unverified")
            continue
        reasons.append(f"sticky:{role}")
        return agent, seconds
    return "", 0


def _hours(rules: RuleSet, tracking: Tracking, now: datetime, reasons: list[str]) -> Mode:
    clinic = rules.clinics.get(tracking.clinic)
    if clinic is None:
        return "queue"
    state = clinic.hours.state(now)
    if state == "holiday":
        reasons.append("holiday")
        return clinic.holiday_mode
    if state == "closed":
        reasons.append("after_hours")
        return clinic.after_hours_mode
    return "queue"


def _overflow(
    rules: RuleSet,
    queue: str,
    profile: CallerProfile | None,
    live: LiveSnapshot | None,
    reasons: list[str],
) -> Mode:
    if live is None:
        reasons.append("live_unknown")
        return "queue"
    rule = rules.queues.get(queue)
    state = live.queue(queue)
    if not state.logged_in:
        reasons.append("no_agents")
        return rule.empty_mode if rule else "bot"
    if rule is None or rule.overflow_wait_s is None or state.est_wait_s is None:
        return "queue"
    if state.est_wait_s <= rule.overflow_wait_s:
        return "queue"
    if profile and profile.vip and rules.priority.vip_skips_overflow:
        reasons.append("overflow_skipped_vip")
        return "queue"
    reasons.append("overflow_wait")
    return rule.overflow_mode


def matching_override(
    overrides: Sequence[Override], decision: Decision, now: datetime
) -> Override | None:
    """The most specific active override for ``decision`` (did > campaign > skill > queue > all;
    the newest on a tie), or None."""
    keys = {
        "all": "",
        "queue": decision.queue,
        "skill": decision.skill,
        "campaign": decision.tracking.campaign,
        "did": decision.tracking.did,
    }
    best: Override | None = None
    for o in overrides:
        if not o.active(now) or keys[o.scope] != o.value or (o.scope != "all" and not o.value):
            continue
        rank = (SCOPES.index(o.scope), o.created_at, o.id)
        if best is None or rank > (SCOPES.index(best.scope), best.created_at, best.id):
            best = o
    return best


def _final_queue(rules: RuleSet, decision: Decision, inputs: PolicyInputs) -> str:
    o = matching_override(inputs.overrides, decision, inputs.now)
    if o is None or o.queue is None or o.queue not in rules.queues:
        return decision.queue
    return o.queue


def _apply_override(
    rules: RuleSet, decision: Decision, inputs: PolicyInputs, reasons: list[str]
) -> Decision:
    o = matching_override(inputs.overrides, decision, inputs.now)
    if o is None:
        return decision
    if o.queue is not None and o.queue not in rules.queues:
        reasons.append(f"override_ignored:{o.id}")
        return decision
    reasons.append(f"override:{o.id}")
    return replace(
        decision,
        queue=o.queue if o.queue is not None else decision.queue,
        mode=o.mode if o.mode is not None else decision.mode,
        priority=o.priority if o.priority is not None else decision.priority,
    )
