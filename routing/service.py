"""RoutingService: gathers a call's inputs within budgets, applies the pure policy, records the
call tracking record, and owns the maintenance loop (rules hot reload, override expiry/refresh).

Failure behaviour (issue 5): a CRM lookup slower than ``lookup_budget_ms`` or failing → decide
without it (``crm_timeout``/``crm_error``, logged); a live-state port failing or slower than
``live_budget_ms`` → the fallback port (in-process model when Redis is down), else decide without
live state (``live_unknown``); any exception → ``safe_default`` (the default queue). ``route``
never raises except ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from callserver.core.phone import mask
from callserver.core.tasks import cancel_and_wait
from callserver.logs import escape_control
from routing.models import (
    CallerProfile,
    Decision,
    LiveSnapshot,
    ProfileStatus,
    RouteRecord,
    RouteRequest,
)
from routing.overrides import OverrideBook
from routing.policy import PolicyInputs, decide, safe_default
from routing.ports import DecisionLog, LiveState, PatientDirectory, RulesListener
from routing.reload import RulesHolder
from routing.rules import RuleSet

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    """Budgets in milliseconds, intervals in seconds (``[routing]`` in the config)."""

    lookup_budget_ms: float = 150.0
    live_budget_ms: float = 20.0
    reload_poll_s: float = 1.0
    override_refresh_s: float = 5.0
    recent_decisions: int = 20_000


@dataclass(frozen=True, slots=True)
class RoutingPorts:
    """The service's collaborators; ``live_fallback`` is used when ``live`` fails (Redis down)."""

    directory: PatientDirectory | None = None
    live: LiveState | None = None
    live_fallback: LiveState | None = None
    decisions: DecisionLog | None = None
    rules_listener: RulesListener | None = None


class RoutingService:
    """Decides calls (``route``), answers "why did this call go there" (``record_for``), and runs
    the maintenance loop between ``start()`` and ``aclose()``.

    Counters (plain ints, for metrics): ``decisions``, ``safe_defaults``, ``crm_timeouts``,
    ``crm_errors``, ``live_failures``.
    """

    def __init__(
        self,
        rules: RulesHolder,
        overrides: OverrideBook,
        ports: RoutingPorts,
        settings: RoutingSettings | None = None,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.rules = rules
        self.overrides = overrides
        self._ports = ports
        self._settings = settings or RoutingSettings()
        self._clock = clock
        self._recent: OrderedDict[str, RouteRecord] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._sighup = False
        self.decisions = self.safe_defaults = self.crm_timeouts = 0
        self.crm_errors = self.live_failures = 0

    def now(self) -> datetime:
        return self._clock()

    async def route(self, request: RouteRequest) -> Decision:
        """The decision for ``request``; never raises (except CancelledError). Worst-case time is
        about ``lookup_budget_ms + 2 × live_budget_ms`` plus the (sub-millisecond) policy."""
        started = time.perf_counter()
        rules = self.rules.current
        status: ProfileStatus = "skipped"
        patient = ""
        try:
            profile, status = await self._lookup(request)
            patient = profile.patient_id if profile else ""
            live = await self._live(rules)
            now = self._clock()
            inputs = PolicyInputs(request, now, profile, status, live, self.overrides.active(now))
            decision = decide(rules, inputs)
        except Exception as exc:
            self.safe_defaults += 1
            log.error("routing failed, safe default: %r; %s", exc, _context(request))
            decision = safe_default(rules, "error")
        self.decisions += 1
        elapsed = (time.perf_counter() - started) * 1000
        self._remember(RouteRecord(request.uniqueid, request.linkedid or request.uniqueid,
                                   request.origin, decision, self._clock(), status, patient,
                                   elapsed))  # fmt: skip
        return decision

    async def decision_written(self, uniqueid: str, within: float) -> bool:
        """Wait at most ``within`` seconds until the decision of ``uniqueid`` is in the decision
        log's store (True), when the log can tell; never raises."""
        written = getattr(self._ports.decisions, "wait_written", None)
        if written is None:
            return True
        try:
            return bool(await written(uniqueid, within))
        except Exception as exc:
            log.warning("decision log wait failed: %r", exc)
            return False

    async def record_for(self, call_id: str) -> RouteRecord | None:
        """The tracking record of a call (uniqueid or linkedid): recent ones from memory, older
        ones from the DecisionLog port. Raises what the port raises."""
        record = self._recent.get(call_id)
        if record is not None:
            return record
        for r in reversed(self._recent.values()):
            if r.linkedid == call_id:
                return r
        if self._ports.decisions is None:
            return None
        return await self._ports.decisions.get(call_id)

    async def _lookup(self, request: RouteRequest) -> tuple[CallerProfile | None, ProfileStatus]:
        directory = self._ports.directory
        if request.caller is None:
            return None, "anonymous"
        if directory is None:
            return None, "skipped"
        budget = self._settings.lookup_budget_ms / 1000
        try:
            async with asyncio.timeout(budget):
                profile = await directory.lookup(request.caller)
        except TimeoutError:
            self.crm_timeouts += 1
            log.warning("CRM lookup over its %.0f ms budget, routed without it; %s",
                        budget * 1000, _context(request))  # fmt: skip
            return None, "timeout"
        except Exception as exc:
            self.crm_errors += 1
            log.warning("CRM lookup failed (%r), routed without it; %s", exc, _context(request))
            return None, "error"
        return profile, ("found" if profile is not None else "unknown")

    async def _live(self, rules: RuleSet) -> LiveSnapshot | None:
        for port in (self._ports.live, self._ports.live_fallback):
            if port is None:
                continue
            try:
                async with asyncio.timeout(self._settings.live_budget_ms / 1000):
                    return await port.snapshot(rules.queues.keys())
            except Exception as exc:
                self.live_failures += 1
                log.warning("live state from %s failed: %r", type(port).__name__, exc)
        return None

    def _remember(self, record: RouteRecord) -> None:
        self._recent[record.uniqueid] = record
        self._recent.move_to_end(record.uniqueid)
        while len(self._recent) > self._settings.recent_decisions:
            self._recent.popitem(last=False)
        if self._ports.decisions is not None:
            try:
                self._ports.decisions.record(record)
            except Exception as exc:
                log.error("call tracking record not queued: %r; uniqueid=%s", exc,
                          escape_control(record.uniqueid))  # fmt: skip

    # ---------------------------------------------------------------- lifecycle

    async def start(self, *, install_sighup: bool = True) -> None:
        """Load the rules (raises RulesError on a bad file), load overrides, start maintenance.
        With ``install_sighup`` SIGHUP triggers a reload (main thread, Unix only)."""
        await self._announce(self.rules.load_initial())
        await self.overrides.refresh(self._clock())
        if install_sighup:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_reload)
        self._task = asyncio.create_task(self._maintain(), name="routing-maintenance")

    def request_reload(self) -> None:
        """Reload the rules file soon (what SIGHUP does); safe to call from the loop thread."""
        self._sighup = True
        self._wake.set()

    async def aclose(self) -> None:
        """Stop the maintenance loop (and the SIGHUP handler)."""
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _maintain(self) -> None:
        last_refresh = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.reload_poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._tick(last_refresh)
            except Exception as exc:
                log.error("routing maintenance step failed: %r", exc)
            if time.monotonic() - last_refresh >= self._settings.override_refresh_s:
                last_refresh = time.monotonic()

    async def _tick(self, last_refresh: float) -> None:
        if self._sighup:
            self._sighup = False
            changed = self.rules.reload()
        else:
            changed = self.rules.check()
        if changed:
            await self._announce(self.rules.current)
        now = self._clock()
        if time.monotonic() - last_refresh >= self._settings.override_refresh_s:
            await self.overrides.refresh(now)
        await self.overrides.sweep(now)

    async def _announce(self, rules: RuleSet) -> None:
        listener = self._ports.rules_listener
        if listener is None:
            return
        try:
            async with asyncio.timeout(10.0):
                await listener.rules_loaded(rules)
        except Exception as exc:
            log.error("rules listener failed for %s: %r", rules.version, exc)


def _context(request: RouteRequest) -> str:
    return (
        f"uniqueid={escape_control(request.uniqueid)} did={escape_control(request.did)}"
        f" caller={mask(request.caller)}"
    )
