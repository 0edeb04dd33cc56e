"""The routing rules file (TOML): parsed and validated into an immutable ``RuleSet``.

Every error names the rule it is about (``skills.therapy.queue: unknown queue 'doctrs'``), and
unknown keys are errors, so a typo never silently falls back to a default. The file format is
documented in ``routing/README.md``; ``routing/rules.example.toml`` is a complete example.

``RuleSet.version`` is ``<declared version>@<first 8 hex of the file's SHA-256>``, so two different
files never share a version even if someone forgets to bump ``version``.

Pure: standard library only (``tomllib``, ``zoneinfo``).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from routing.errors import RulesError
from routing.hours import WEEKDAYS, BusinessHours, parse_date, parse_intervals, parse_timezone
from routing.models import DIGITS, MODES, SAFE_TOKEN, Mode, did_digits


@dataclass(frozen=True, slots=True)
class QueueRule:
    name: str
    priority: int = 0
    overflow_wait_s: float | None = None
    overflow_mode: Mode = "bot"
    empty_mode: Mode = "bot"


@dataclass(frozen=True, slots=True)
class SkillRule:
    name: str
    digits: str
    queue: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class CampaignRule:
    name: str
    source: str
    paid: bool


@dataclass(frozen=True, slots=True)
class DidRule:
    did: str
    campaign: str = ""
    source: str = ""
    paid: bool = False
    clinic: str = ""
    queue: str = ""


@dataclass(frozen=True, slots=True)
class ClinicRule:
    name: str
    hours: BusinessHours
    after_hours_mode: Mode = "voicemail"
    holiday_mode: Mode = "voicemail"


@dataclass(frozen=True, slots=True)
class PriorityRule:
    vip: int = 10
    paid: int = 5
    known: int = 0
    segments: Mapping[str, int] = field(default_factory=dict)
    vip_skips_overflow: bool = True


@dataclass(frozen=True, slots=True)
class StickyRule:
    coordinator_seconds: int = 20
    last_operator_seconds: int = 12
    require_free: bool = True
    skip_skills: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str
    default_queue: str
    default_language: str = "ru"
    languages: frozenset[str] = frozenset({"ru"})
    default_clinic: str = ""
    queues: Mapping[str, QueueRule] = field(default_factory=dict)
    skills: Mapping[str, SkillRule] = field(default_factory=dict)
    campaigns: Mapping[str, CampaignRule] = field(default_factory=dict)
    dids: Mapping[str, DidRule] = field(default_factory=dict)
    clinics: Mapping[str, ClinicRule] = field(default_factory=dict)
    priority: PriorityRule = field(default_factory=PriorityRule)
    sticky: StickyRule = field(default_factory=StickyRule)
    prepayment_skill: str = ""

    def skill_for_digits(self, digits: str) -> SkillRule | None:
        for skill in self.skills.values():
            if skill.digits == digits:
                return skill
        return None


class _Table:
    """A TOML table being read: typed getters whose errors name ``<path>.<key>``."""

    def __init__(self, raw: object, path: str) -> None:
        if not isinstance(raw, dict):
            raise RulesError(message=f"{path}: expected a table", rule=path)
        self.raw: dict[str, Any] = raw
        self.path = path

    def rule(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def allow(self, *keys: str) -> None:
        for key in self.raw:
            if key not in keys:
                raise RulesError(message=f"{self.rule(key)}: unknown key", rule=self.rule(key))

    def fail(self, key: str, expected: str) -> RulesError:
        value = self.raw.get(key)
        return RulesError(
            message=f"{self.rule(key)}: expected {expected}, got {value!r}", rule=self.rule(key)
        )

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw.get(key, default)
        if value is None:
            raise RulesError(message=f"{self.rule(key)}: required", rule=self.rule(key))
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def token(self, key: str, default: str | None = None) -> str:
        value = self.text(key, default)
        if value and not SAFE_TOKEN.fullmatch(value):
            raise self.fail(key, "a name of letters, digits, '_', '.', ':' or '-'")
        return value

    def integer(self, key: str, default: int, low: int = 0, high: int = 10_000) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"an integer {low}..{high}")
        return value

    def number(self, key: str) -> float | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(key, "a non-negative number")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def mode(self, key: str, default: Mode) -> Mode:
        value = self.raw.get(key, default)
        if value not in MODES:
            raise self.fail(key, "one of " + "|".join(MODES))
        return cast(Mode, value)

    def tokens(self, key: str) -> list[str]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, str) and SAFE_TOKEN.fullmatch(v) for v in value
        ):
            raise self.fail(key, "a list of names")
        return list(value)

    def sub(self, key: str) -> _Table:
        return _Table(self.raw.get(key, {}), self.rule(key))

    def named(self, key: str) -> dict[str, _Table]:
        """The sub-tables of ``[key.<name>]``, each name checked as a safe token."""
        tables = self.sub(key)
        out: dict[str, _Table] = {}
        for name in tables.raw:
            if not SAFE_TOKEN.fullmatch(name) and not DIGITS.fullmatch(name):
                raise RulesError(message=f"{tables.rule(name)}: bad name", rule=tables.rule(name))
            out[name] = tables.sub(name)
        return out


_TOP_KEYS = (
    "version", "defaults", "queues", "skills", "campaigns", "dids", "clinics",
    "priority", "sticky", "prepayment",
)  # fmt: skip


def parse_rules(text: str, *, source: str = "<rules>") -> RuleSet:
    """Parse and validate a rules file's text. Raises RulesError naming the bad rule."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(message=f"{source}: not valid TOML: {exc}", rule="<toml>") from exc
    top = _Table(raw, "")
    top.allow(*_TOP_KEYS)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    declared = top.token("version", "rules")
    defaults = top.sub("defaults")
    defaults.allow("queue", "language", "languages", "clinic")
    queues = {name: _queue(name, t) for name, t in top.named("queues").items()}
    default_queue = defaults.token("queue")
    _known(queues, default_queue, defaults.rule("queue"), "queue")
    language = defaults.token("language", "ru")
    languages = frozenset(defaults.tokens("languages") or [language]) | {language}
    clinics = {name: _clinic(name, t) for name, t in top.named("clinics").items()}
    default_clinic = defaults.token("clinic", "")
    if default_clinic:
        _known(clinics, default_clinic, defaults.rule("clinic"), "clinic")
    skills = _skills(top.named("skills"), queues)
    campaigns = {name: _campaign(name, t) for name, t in top.named("campaigns").items()}
    dids = _dids(top.named("dids"), campaigns, clinics, queues)
    return RuleSet(
        version=f"{declared}@{digest}",
        default_queue=default_queue,
        default_language=language,
        languages=languages,
        default_clinic=default_clinic,
        queues=queues,
        skills=skills,
        campaigns=campaigns,
        dids=dids,
        clinics=clinics,
        priority=_priority(top.sub("priority")),
        sticky=_sticky(top.sub("sticky"), skills),
        prepayment_skill=_prepayment(top.sub("prepayment"), skills),
    )


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate the rules file at ``path``. Raises RulesError (also when unreadable)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(message=f"rules file {path}: {exc}", rule="<file>") from exc
    return parse_rules(text, source=str(path))


def _known(table: Mapping[str, object], name: str, rule: str, what: str) -> None:
    if name not in table:
        plural = "queues" if what == "queue" else what + "s"
        raise RulesError(
            message=f"{rule}: unknown {what} {name!r} (declare it under [{plural}])", rule=rule
        )


def _queue(name: str, t: _Table) -> QueueRule:
    t.allow("priority", "overflow_wait_s", "overflow_mode", "empty_mode")
    return QueueRule(
        name=name,
        priority=t.integer("priority", 0),
        overflow_wait_s=t.number("overflow_wait_s"),
        overflow_mode=t.mode("overflow_mode", "bot"),
        empty_mode=t.mode("empty_mode", "bot"),
    )


def _skills(tables: dict[str, _Table], queues: Mapping[str, QueueRule]) -> dict[str, SkillRule]:
    skills: dict[str, SkillRule] = {}
    seen: dict[str, str] = {}
    for name, t in tables.items():
        t.allow("digits", "queue", "priority")
        digits = t.text("digits")
        if not DIGITS.fullmatch(digits) or len(digits) > 4:
            raise t.fail("digits", "1-4 IVR digits")
        if digits in seen:
            raise RulesError(
                message=f"{t.rule('digits')}: digits {digits!r} already used by skill "
                f"{seen[digits]!r}",
                rule=t.rule("digits"),
            )
        seen[digits] = name
        queue = t.token("queue")
        _known(queues, queue, t.rule("queue"), "queue")
        skills[name] = SkillRule(name, digits, queue, t.integer("priority", 0))
    return skills


def _campaign(name: str, t: _Table) -> CampaignRule:
    t.allow("source", "paid")
    return CampaignRule(name=name, source=t.token("source"), paid=t.flag("paid", False))


def _dids(
    tables: dict[str, _Table],
    campaigns: Mapping[str, CampaignRule],
    clinics: Mapping[str, ClinicRule],
    queues: Mapping[str, QueueRule],
) -> dict[str, DidRule]:
    """DID rules keyed by ``did_digits`` (8XXXXXXXXXX and 7XXXXXXXXXX are one DID)."""
    dids: dict[str, DidRule] = {}
    for key, t in tables.items():
        rule = _did(key, t, campaigns, clinics, queues)
        if rule.did in dids:
            path = f"dids.{rule.did}"
            raise RulesError(message=f"{t.path}: the same number as {path}", rule=path)
        dids[rule.did] = rule
    return dids


def _did(
    did: str,
    t: _Table,
    campaigns: Mapping[str, CampaignRule],
    clinics: Mapping[str, ClinicRule],
    queues: Mapping[str, QueueRule],
) -> DidRule:
    if not DIGITS.fullmatch(did):
        raise RulesError(message=f"{t.path}: a DID is digits only", rule=t.path)
    t.allow("campaign", "source", "paid", "clinic", "queue")
    campaign = t.token("campaign", "")
    if campaign:
        _known(campaigns, campaign, t.rule("campaign"), "campaign")
        if "source" in t.raw or "paid" in t.raw:
            raise RulesError(
                message=f"{t.path}: give either campaign or source/paid, not both", rule=t.path
            )
    clinic = t.token("clinic", "")
    if clinic:
        _known(clinics, clinic, t.rule("clinic"), "clinic")
    queue = t.token("queue", "")
    if queue:
        _known(queues, queue, t.rule("queue"), "queue")
    c = campaigns.get(campaign)
    return DidRule(
        did=did_digits(did),
        campaign=campaign,
        source=c.source if c else t.token("source", ""),
        paid=c.paid if c else t.flag("paid", False),
        clinic=clinic,
        queue=queue,
    )


def _clinic(name: str, t: _Table) -> ClinicRule:
    t.allow("timezone", "hours", "holidays", "dates", "after_hours_mode", "holiday_mode")
    hours_t = t.sub("hours")
    hours_t.allow(*WEEKDAYS)
    weekly = tuple(
        parse_intervals(hours_t.raw.get(day, "closed"), hours_t.rule(day)) for day in WEEKDAYS
    )
    holidays_raw = t.raw.get("holidays", [])
    if not isinstance(holidays_raw, list):
        raise t.fail("holidays", "a list of dates")
    holidays = frozenset(parse_date(d, t.rule("holidays")) for d in holidays_raw)
    dates_t = t.sub("dates")
    dates = {
        parse_date(k, dates_t.rule(k)): parse_intervals(v, dates_t.rule(k))
        for k, v in dates_t.raw.items()
    }
    after = t.mode("after_hours_mode", "voicemail")
    hours = BusinessHours(parse_timezone(t.raw.get("timezone"), t.rule("timezone")), weekly,
                          holidays, dates)  # fmt: skip
    return ClinicRule(name, hours, after, t.mode("holiday_mode", after))


def _priority(t: _Table) -> PriorityRule:
    t.allow("vip", "paid", "known", "segments", "vip_skips_overflow")
    seg_t = t.sub("segments")
    segments = {name: seg_t.integer(name, 0) for name in seg_t.raw}
    for name in segments:
        if not SAFE_TOKEN.fullmatch(name):
            raise RulesError(message=f"{seg_t.rule(name)}: bad name", rule=seg_t.rule(name))
    return PriorityRule(
        vip=t.integer("vip", 10),
        paid=t.integer("paid", 5),
        known=t.integer("known", 0),
        segments=segments,
        vip_skips_overflow=t.flag("vip_skips_overflow", True),
    )


def _sticky(t: _Table, skills: Mapping[str, SkillRule]) -> StickyRule:
    t.allow("coordinator_seconds", "last_operator_seconds", "require_free", "skip_skills")
    skip = t.tokens("skip_skills")
    for name in skip:
        _known(skills, name, t.rule("skip_skills"), "skill")
    return StickyRule(
        coordinator_seconds=t.integer("coordinator_seconds", 20, 0, 120),
        last_operator_seconds=t.integer("last_operator_seconds", 12, 0, 120),
        require_free=t.flag("require_free", True),
        skip_skills=frozenset(skip),
    )


def _prepayment(t: _Table, skills: Mapping[str, SkillRule]) -> str:
    t.allow("skill")
    skill = t.token("skill", "")
    if skill:
        _known(skills, skill, t.rule("skill"), "skill")
    return skill


def minimal_rules(queue: str = "reception") -> RuleSet:
    """A rule set that sends everything to ``queue``: used until a rules file loads."""
    return RuleSet(version="builtin", default_queue=queue, queues={queue: QueueRule(queue)})
