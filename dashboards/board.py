"""The supervisor board's state: per-queue figures for today and the last 15 minutes, the
operator grid, missed calls not yet called back, live alarms and the overload signal.

``LiveBoard.on_event`` is a bus subscriber (synchronous, O(1) per event); ``snapshot(now)``
builds the JSON-ready board the publisher pushes to every connected supervisor. Counts are kept
per queue and minute (``kpi.Bucket``), so "today" and "last 15 minutes" are sums of at most
1,440 small records however many calls arrive. Times are POSIX seconds; "today" starts at
midnight in the clinic's time zone.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from callserver.core.events import (
    AgentRingNoAnswer,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallSnapshot,
    DomainEvent,
)
from callserver.core.phone import try_normalize
from callserver.plugin_api import LiveView
from dashboards.config import DashboardsConfig
from dashboards.kpi import Bucket, SlPolicy, figures, record_abandon, record_answer, record_talk
from dashboards.kpi import total as sum_buckets
from dashboards.overload import OverloadDetector, Transition, estimated_wait

WINDOW_MINUTES = 15
MISSED_CAP = 1000
MISSED_SHOWN = 200
"""Rows of the missed list sent to the boards (oldest first); ``missed_total`` counts all."""
WAITING_CAP = 200
OFFLINE = frozenset({"unavailable", "invalid"})
RINGING = frozenset({"ringing", "ringinuse"})
TALKING = frozenset({"inuse", "busy", "onhold"})


@dataclass(slots=True)
class Missed:
    call_id: str
    caller: str
    phone: str
    """Normalised (E.164) when readable, else the raw caller ID: the key callbacks match on."""
    queue: str
    ad_source: str
    missed_at: float
    attempts: int = 0
    """Outbound calls to this number seen since (answered ones remove the entry)."""


@dataclass(slots=True)
class AgentDay:
    day: str = ""
    calls_today: int = 0
    missed_in_row: int = 0
    last_end: float = 0.0


@dataclass
class BoardSettings:
    policy: SlPolicy
    tz: ZoneInfo
    wrapup_seconds: float
    missed_in_row_alarm: int
    waiting_alarm_seconds: float
    callback_alarm_seconds: float
    callback_window_seconds: float
    names: Callable[[str], str] = field(default=lambda interface: "")

    @classmethod
    def from_config(cls, cfg: DashboardsConfig, names: Callable[[str], str] | None = None
                    ) -> BoardSettings:  # fmt: skip
        return cls(
            cfg.sl_policy(), ZoneInfo(cfg.timezone), cfg.wrapup_seconds, cfg.missed_in_row_alarm,
            cfg.waiting_alarm_seconds, cfg.callback_alarm_minutes * 60,
            cfg.callback_window_hours * 3600, names or (lambda interface: ""),
        )  # fmt: skip


class LiveBoard:
    """Board state fed by domain events; see the module docstring."""

    def __init__(self, live: LiveView, settings: BoardSettings,
                 detector: Callable[[str], OverloadDetector]) -> None:  # fmt: skip
        self._live = live
        self.s = settings
        self._detector = detector
        self._buckets: dict[str, dict[int, Bucket]] = defaultdict(dict)
        self._agents: dict[str, AgentDay] = defaultdict(AgentDay)
        self._missed: OrderedDict[str, Missed] = OrderedDict()
        self._overload: dict[str, OverloadDetector] = {}
        self.ignore_before = 0.0
        """Events older than this were already counted by the database seed."""
        self.events = 0
        """Domain events applied so far (the publisher's lag measure)."""
        self.called_back = 0

    # ---- events -------------------------------------------------------------------------

    def on_event(self, event: DomainEvent) -> None:
        """Bus subscriber: apply one domain event (never raises for odd input)."""
        self.events += 1
        if event.at < self.ignore_before:
            return
        if isinstance(event, CallAnswered):
            self._answered(event)
        elif isinstance(event, AgentRingNoAnswer):
            self._agent(event.agent, event.at).missed_in_row += 1
        elif isinstance(event, CallAbandoned):
            wait = event.at - (event.call.queued_at or event.at)
            record_abandon(self._bucket(event.queue or event.call.queue, event.at), wait,
                           self.s.policy)  # fmt: skip
        elif isinstance(event, CallEnded):
            self._ended(event)

    def _answered(self, event: CallAnswered) -> None:
        call = event.call
        queue = event.queue or call.queue
        if queue:
            record_answer(self._bucket(queue, event.at), event.wait_seconds, self.s.policy)
        agent = event.agent or call.agent
        if agent:
            day = self._agent(agent, event.at)
            day.calls_today += 1
            day.missed_in_row = 0
        self.reached(call)

    def _ended(self, event: CallEnded) -> None:
        call = event.call
        if call.answered_at is not None:
            if call.queue:
                record_talk(self._bucket(call.queue, event.at), call.talk_seconds or 0.0)
            if call.agent:
                self._agent(call.agent, event.at).last_end = event.at
        if call.direction == "outbound":
            self._callback_attempt(call)
        elif call.answered_at is None and call.direction == "inbound" and call.caller:
            self.add_missed(call, event.at)

    def _callback_attempt(self, call: CallSnapshot) -> None:
        """An outbound call to a number on the missed list: one more attempt; answered →
        the patient was reached and leaves the list."""
        keys = _keys(call.caller, call.did)
        for m in self._missed.values():
            if m.phone in keys:
                m.attempts += 1
        if call.answered_at is not None:
            self.reached(call)

    def reached(self, call: CallSnapshot) -> None:
        """An answered call with a number on the missed list: that patient was reached."""
        keys = _keys(call.caller, call.did) if call.direction == "outbound" else _keys(call.caller)
        gone = [cid for cid, m in self._missed.items() if m.phone in keys]
        for cid in gone:
            del self._missed[cid]
            self.called_back += 1

    def add_missed(self, call: CallSnapshot, at: float) -> None:
        """A call nobody answered (also used by the database seed)."""
        phone = try_normalize(call.caller) or call.caller
        self._missed[call.id] = Missed(call.id, call.caller, phone, call.queue, call.ad_source, at)
        while len(self._missed) > MISSED_CAP:
            self._missed.popitem(last=False)

    def seed_bucket(self, queue: str, at: float) -> Bucket:
        """The bucket a database row of ``at`` belongs to (the seed fills it directly)."""
        return self._bucket(queue, at)

    def seed_agent(self, agent: str, at: float) -> AgentDay:
        return self._agent(agent, at)

    def _bucket(self, queue: str, at: float) -> Bucket:
        minute = int(at // 60)
        per = self._buckets[queue]
        b = per.get(minute)
        if b is None:
            b = per[minute] = Bucket()
            if len(per) > 1500:  # keep ~25 hours
                for old in [m for m in per if m < minute - 1500]:
                    del per[old]
        return b

    def _agent(self, interface: str, at: float) -> AgentDay:
        day = self._agents[interface]
        key = self._day_key(at)
        if day.day != key:
            day.day, day.calls_today = key, 0
        return day

    def _day_key(self, at: float) -> str:
        return datetime.fromtimestamp(at, self.s.tz).date().isoformat()

    def midnight(self, now: float) -> float:
        """POSIX time of today's midnight in the clinic's time zone."""
        local = datetime.fromtimestamp(now, self.s.tz)
        start = datetime(local.year, local.month, local.day, tzinfo=self.s.tz)
        return start.timestamp()

    # ---- snapshot -------------------------------------------------------------------------

    def queue_figures(self, queue: str, now: float) -> tuple[Bucket, Bucket]:
        """(today, last 15 minutes) counts for one queue."""
        per = self._buckets.get(queue, {})
        first_today = int(self.midnight(now) // 60)
        first_recent = int(now // 60) - WINDOW_MINUTES + 1
        today = sum_buckets(b for m, b in per.items() if m >= first_today)
        recent = sum_buckets(b for m, b in per.items() if m >= first_recent)
        return today, recent

    def observe_queues(self, now: float) -> list[Transition]:
        """Feed the overload detectors at ``now`` without building the board."""
        return self._queues(now)[1]

    def tick(self, now: float) -> tuple[dict[str, Any], list[Transition]]:
        """The board at ``now`` and the overload transitions this reading caused."""
        queues, transitions = self._queues(now)
        calls = self._live.calls()
        operators = self._operators(now, calls)
        missed = self._missed_rows(now)
        alarms = self._alarms(queues, operators, missed)
        board = {"generated_at": now, "events": self.events, "queues": queues,
                 "waiting": _waiting(calls, now), "operators": operators,
                 "missed": missed[:MISSED_SHOWN], "missed_total": len(missed), "alarms": alarms,
                 "policy": {"sl_seconds": self.s.policy.sl_seconds,
                            "sl_target": self.s.policy.sl_target,
                            "short_abandon_seconds": self.s.policy.short_abandon_seconds,
                            "exclude_short_abandons": self.s.policy.exclude_short_abandons}}
        return board, transitions

    def _queues(self, now: float) -> tuple[list[dict[str, Any]], list[Transition]]:
        live = self._live.queues(now)
        rows, transitions = [], []
        for name in sorted(set(live) | set(self._buckets)):
            q = live.get(name)
            today, recent = self.queue_figures(name, now)
            f15 = figures(recent, self.s.policy)
            waiting = len(q.waiting) if q else 0
            longest = q.longest_wait if q else 0.0
            agents = q.logged_in_agents if q else 0
            ewt = estimated_wait(longest, waiting, f15.aht or figures(today, self.s.policy).aht,
                                 agents)  # fmt: skip
            det = self._overload.get(name) or self._overload.setdefault(name, self._detector(name))
            change = det.observe(now, ewt, f15.abandon_rate or 0.0)
            if change is not None:
                transitions.append(change)
            rows.append({
                "name": name, "waiting": waiting, "longest_wait": round(longest, 1),
                "free": q.free_agents if q else 0, "logged_in": agents,
                "estimated_wait": None if math.isinf(ewt) else round(ewt, 1),
                "today": figures(today, self.s.policy).to_dict(), "last15": f15.to_dict(),
                "overload": det.state,
            })  # fmt: skip
        return rows, transitions

    def _operators(self, now: float, calls: list[CallSnapshot]) -> list[dict[str, Any]]:
        rows = []
        today = self._day_key(now)
        talking = {c.agent: c for c in calls if c.state == "answered" and c.agent}
        for a in sorted(self._live.agents(), key=lambda a: a.interface):
            day = self._agents.get(a.interface, AgentDay())
            call = talking.get(a.interface)
            rows.append({
                "interface": a.interface,
                "name": self.s.names(a.interface) or a.name or a.interface,
                "state": self._agent_state(a.status, a.paused, a.in_call, day, now),
                "reason": a.paused_reason if a.paused else "",
                "queues": list(a.queues),
                "calls_today": day.calls_today if day.day == today else 0,
                "missed_in_row": day.missed_in_row,
                "caller": call.caller if call else "",
                "talk": round(now - call.answered_at, 1) if call and call.answered_at else None,
            })  # fmt: skip
        return rows

    def _agent_state(self, status: str, paused: bool, in_call: bool, day: AgentDay,
                     now: float) -> str:  # fmt: skip
        if status in OFFLINE:
            return "offline"
        if status in RINGING:
            return "ringing"
        if in_call or status in TALKING:
            return "talking"
        if paused:
            return "paused"
        if day.last_end and now - day.last_end < self.s.wrapup_seconds:
            return "wrapup"
        return "free"

    def _missed_rows(self, now: float) -> list[dict[str, Any]]:
        horizon = now - self.s.callback_window_seconds
        for cid in [cid for cid, m in self._missed.items() if m.missed_at < horizon]:
            del self._missed[cid]
        return [
            {"call_id": m.call_id, "caller": m.caller, "queue": m.queue,
             "ad_source": m.ad_source, "missed_at": m.missed_at, "attempts": m.attempts,
             "age": round(now - m.missed_at, 1)}
            for m in sorted(self._missed.values(), key=lambda m: m.missed_at)
        ]  # fmt: skip

    def _alarms(self, queues: list[dict[str, Any]], operators: list[dict[str, Any]],
                missed: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
        alarms: list[dict[str, Any]] = []
        for q in queues:
            if q["overload"] == "overloaded":
                alarms.append({"kind": "overload", "queue": q["name"],
                               "value": q["estimated_wait"]})  # fmt: skip
            if q["longest_wait"] >= self.s.waiting_alarm_seconds:
                alarms.append({"kind": "long_wait", "queue": q["name"],
                               "value": q["longest_wait"]})  # fmt: skip
            sl = q["today"]["service_level"]
            if sl is not None and sl < self.s.policy.sl_target:
                alarms.append({"kind": "low_service_level", "queue": q["name"], "value": sl})
        for o in operators:
            if o["missed_in_row"] >= self.s.missed_in_row_alarm:
                alarms.append({"kind": "missed_in_row", "operator": o["name"],
                               "value": o["missed_in_row"]})  # fmt: skip
        late = [m for m in missed if m["age"] >= self.s.callback_alarm_seconds]
        if late:
            alarms.append({"kind": "callbacks_late", "value": len(late)})
        return alarms



def _waiting(calls: list[CallSnapshot], now: float) -> list[dict[str, Any]]:
    """Callers waiting in queues, longest first (at most ``WAITING_CAP``)."""
    waiting = [c for c in calls if c.state in ("queued", "agent_ringing")]
    waiting.sort(key=lambda c: c.queued_at or c.started_at)
    return [
        {"call_id": c.id, "caller": c.caller, "caller_name": c.caller_name, "queue": c.queue,
         "ad_source": c.ad_source, "wait": round(now - (c.queued_at or c.started_at), 1)}
        for c in waiting[:WAITING_CAP]
    ]  # fmt: skip


def _keys(*numbers: str) -> set[str]:
    """Numbers as the missed list keys them (E.164 when readable)."""
    return {try_normalize(n) or n for n in numbers if n}
