"""The callbacks plugin: missed calls and explicit requests become callback jobs, dialled
agent-first by a scheduler over PostgreSQL (see ``callbacks/README.md``).

Provides ``dialer`` (agent-first calls for desk's click-to-call and campaigns) and
``callback_jobs`` (the voice bot's callback intent). Uses, when enabled: ``route_decisions``
(routing: calls sent to voicemail/callback), ``crm_requests`` (the CRM also gets after-hours
requests), ``patient_lookup`` (names, VIPs); ``operator_notify`` and ``operator_directory``
(desk) are *late* ports — desk uses our ``dialer``, so neither may wait for the other's build.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from callbacks.after_hours import AfterHoursCallbacks, CallbackSink, Decisions
from callbacks.config import CallbacksConfig, hours_of, validate_callbacks
from callbacks.detect import MissDetector
from callbacks.dial_port import DialerPort
from callbacks.dialer import AgentFirstDialer, CallEnds, DialSettings, PatientFirstDialer
from callbacks.figures import Figures
from callbacks.http import FORM_PATH, CallbacksApi, callbacks_routes
from callbacks.notify import Notifier
from callbacks.policy import MissRules, RetryPolicy, Window
from callbacks.ports import OperatorDirectory, OperatorNotify, PatientLookup
from callbacks.scheduler import Dialer, Scheduler, SchedulerSettings
from callbacks.service import CallbackService, ServiceParts
from callbacks.store import CallbackStore
from callbacks.vhold_agi import VholdSettings, VirtualHold
from callbacks.vhold_slot import SlotPlacer, SlotSettings
from callbacks.webform import FormSettings, RateLimiter
from callserver.plugin_api import Contribution, Metric, PluginDeps


def retry_policy(cfg: CallbacksConfig) -> RetryPolicy:
    (b_start, b_end), days, (p_start, p_end) = hours_of(cfg)
    business = Window(ZoneInfo(cfg.timezone), b_start, b_end, days)
    return RetryPolicy(business, p_start, p_end, cfg.retry_delays_s, cfg.max_attempts,
                       cfg.operator_retry_s)  # fmt: skip


class CallbacksPlugin:
    name = "callbacks"
    config_type: type[Any] | None = CallbacksConfig
    migrations: Path | None = Path(__file__).parent / "migrations"
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ("route_decisions", "crm_requests", "patient_lookup")
    late: tuple[str, ...] = ("operator_notify", "operator_directory")
    provides: tuple[str, ...] = ("dialer", "callback_jobs")

    def validate(self, config: CallbacksConfig) -> None:
        validate_callbacks(config)

    def build(self, config: CallbacksConfig, deps: PluginDeps) -> Contribution:
        cfg, store = config, CallbackStore(deps.pool)
        notifier = Notifier(deps.ports.late("operator_notify", OperatorNotify))
        directory = deps.ports.late("operator_directory", OperatorDirectory)
        service = CallbackService(ServiceParts(
            store, retry_policy(cfg), deps.clock, notifier,
            deps.ports.maybe("patient_lookup", PatientLookup), frozenset(cfg.paid_sources),
            cfg.claim_ttl_s, ready=deps.database_ready, directory=directory,
        ))  # fmt: skip
        ends = CallEnds()
        settings = DialSettings(cfg.dial_context, cfg.operator_ring_s, cfg.call_max_s)
        dialer = AgentFirstDialer(deps.ami, ends, settings)
        scheduler = _scheduler(cfg, deps, store, _job_dialer(cfg, deps, ends, dialer), notifier)
        service.wake_with(scheduler.wake)
        scheduler.publish_job = service.publish
        placer = SlotPlacer(store, scheduler, dialer, deps.clock, SlotSettings(
            cfg.vhold_slot_context, cfg.vhold_max_wait_s, deps.server.instance_id, cfg.lease_s))
        vhold = VirtualHold(service, deps.live,
                            VholdSettings(cfg.vhold_threshold_s, cfg.vhold_mean_handle_s),
                            placer.place)
        detector = MissDetector(service, MissRules(
            cfg.short_call_s, cfg.busy_wait_s, cfg.ivr_min_s, frozenset(cfg.ignore_modes)),
            cfg.ring_out_s, skip=vhold.accepted_call)  # fmt: skip
        after_hours = _after_hours(deps, service)
        listeners: list[Any] = [detector, scheduler, vhold, *([after_hours] if after_hours else [])]
        figures = Figures(store, deps.clock)
        limiter = RateLimiter(deps.redis, deps.server.redis_prefix)
        api = CallbacksApi(service, limiter, _form_settings(cfg), deps.clock)
        return Contribution(
            routes=callbacks_routes(api),
            public_paths=[FORM_PATH],
            agi_handlers={"vhold_offer": vhold.offer, "vhold_accept": vhold.accept},
            subscribers=[ends.submit, *(x.submit for x in listeners)],
            components=[notifier],
            after_database=[*listeners, figures],
            metrics=[*_metrics(service, detector, scheduler, figures, after_hours),
                     *_form_metrics(limiter), *_vhold_metrics(vhold)],
            ports={
                "callback_jobs": service,
                "dialer": DialerPort(dialer, store, deps.clock, deps.server.instance_id,
                                     cfg.lease_s, cfg.caller_id),
            },
        )  # fmt: skip


def _job_dialer(cfg: CallbacksConfig, deps: PluginDeps, ends: CallEnds,
                agent_first: AgentFirstDialer) -> Dialer:  # fmt: skip
    """The scheduler's dialer by ``dialing`` (the ``dialer`` port is always agent-first)."""
    if cfg.dialing != "patient_first":
        return agent_first
    return PatientFirstDialer(deps.ami, ends, DialSettings(
        cfg.dial_context, cfg.operator_ring_s, cfg.call_max_s), cfg.patient_first_context,
        cfg.trunk_channel, cfg.patient_ring_s)  # fmt: skip


def _scheduler(cfg: CallbacksConfig, deps: PluginDeps, store: CallbackStore,
               dialer: Dialer, notifier: Notifier) -> Scheduler:  # fmt: skip
    settings = SchedulerSettings(deps.server.instance_id, cfg.lease_s, cfg.poll_interval_s,
                                 cfg.reconcile_gap_s, cfg.caller_id, frozenset(cfg.queues),
                                 cfg.timezone)  # fmt: skip
    scheduler = Scheduler(store, dialer, deps.live, retry_policy(cfg), deps.clock, notifier,
                          settings)  # fmt: skip
    # reconcile only with a live AMI view: after a restart the resync shows calls to adopt
    scheduler.ami_ready = lambda: getattr(deps.ami, "state", "connected") == "connected"
    return scheduler


def _after_hours(deps: PluginDeps, service: CallbackService) -> AfterHoursCallbacks | None:
    """Calls routing sent to voicemail/callback (needs routing's decision log)."""
    decisions = deps.ports.maybe("route_decisions", Decisions)
    if decisions is None:
        return None
    return AfterHoursCallbacks(decisions, deps.ports.maybe("crm_requests", CallbackSink), service)


def _form_metrics(limiter: RateLimiter) -> list[Metric]:
    p = "callserver_callbacks_form_"
    return [
        Metric(p + "rate_limited_total", "web form requests refused with 429",
               lambda: limiter.limited),
        Metric(p + "unlimited_total", "web form requests let through unchecked (Redis down)",
               lambda: limiter.unlimited),
    ]  # fmt: skip


def _vhold_metrics(vhold: VirtualHold) -> list[Metric]:
    p = "callserver_callbacks_vhold_"
    return [
        Metric(p + "accepted_total", "callers who accepted virtual hold", lambda: vhold.accepted),
        Metric(p + "placed_total", "placeholders queued at an accepted caller's place",
               lambda: vhold.placed),
    ]  # fmt: skip


def _form_settings(cfg: CallbacksConfig) -> FormSettings:
    return FormSettings(cfg.form_token, cfg.form_per_phone, cfg.form_per_phone_window_s,
                        cfg.form_per_client, cfg.form_per_client_window_s, cfg.form_max_days,
                        ZoneInfo(cfg.timezone))  # fmt: skip


def _quantile(values: Callable[[], list[float]], q: float) -> Callable[[], float]:
    def read() -> float:
        data = sorted(values())
        if not data:
            return 0.0
        if len(data) == 1:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[int(q * 100) - 1]

    return read


Labelled = Callable[[], dict[tuple[str, ...], float]]


def _labelled(counts: Callable[[], Mapping[str, int]]) -> Labelled:
    return lambda: {(k,): float(v) for k, v in counts().items()}


def _metrics(
    service: CallbackService, detector: MissDetector, scheduler: Scheduler, figures: Figures,
    after_hours: AfterHoursCallbacks | None,
) -> list[Metric]:
    delays = lambda: list(scheduler.first_delays)  # noqa: E731
    p = "callserver_callbacks_"
    metrics = [
        Metric(p + "jobs_created_total", "callback jobs created", lambda: service.created),
        Metric(p + "jobs_merged_total", "misses merged into an open job", lambda: service.merged),
        Metric(p + "misses_total", "missed calls by reason", _labelled(lambda: detector.misses),
               ("reason",)),
        Metric(p + "attempts_total", "attempts finished here, by result",
               _labelled(lambda: scheduler.results), ("result",)),
        Metric(p + "first_attempt_delay_p50_seconds", "miss → first attempt (this instance, "
               "last 1000)", _quantile(delays, 0.5)),
        Metric(p + "first_attempt_delay_p99_seconds", "miss → first attempt (this instance, "
               "last 1000)", _quantile(delays, 0.99)),
        Metric(p + "attempts_per_job", "attempts per finished job (7 days)",
               lambda: figures.get("attempts_avg")),
        Metric(p + "reached_rate", "finished jobs that reached the patient (7 days)",
               lambda: figures.rate("reached")),
        Metric(p + "booked_rate", "finished jobs that ended in a booking (7 days)",
               lambda: figures.rate("booked")),
        Metric(p + "jobs", "jobs by state (7 days)", lambda: {
            (s,): figures.get(s) for s in ("open", "active", "done")}, ("state",)),
        Metric(p + "reconciled_total", "dead instances' attempts adopted or interrupted",
               lambda: scheduler.adopted + scheduler.interrupted),
    ]  # fmt: skip
    if after_hours is not None:
        metrics.append(Metric("callserver_callback_jobs_created_total",
                              "callback requests created for calls sent to voicemail/callback",
                              lambda: after_hours.created))  # fmt: skip
    return metrics


plugin = CallbacksPlugin()
