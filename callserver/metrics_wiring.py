"""What ``/metrics`` exposes: readers over the components' plain counters."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callserver.asterisk.agi_server import FastAgiServer
    from callserver.asterisk.ami_connection import AmiClient
    from callserver.asterisk.ami_translate import AmiTranslator
    from callserver.asterisk.ari_client import AriClient
    from callserver.asterisk.stasis import StasisDispatcher
    from callserver.core.bus import EventBus
    from callserver.core.model.live import LiveModel
    from callserver.metrics import Metrics
    from callserver.plugin_api import Metric
    from callserver.store.call_writer import CallWriter
    from callserver.store.live_state import RedisLiveState
    from callserver.web.live import LiveHub
    from callserver.web.middlewares import RequestDeadline

AMI_STATES = ("disconnected", "connecting", "connected", "auth_failed")

KNOWN_AMI_EVENTS = frozenset({
    "AGIExecEnd", "AGIExecStart", "AgentCalled", "AgentComplete", "AgentConnect", "AgentDump",
    "AgentRingNoAnswer", "AsyncAGIEnd", "AsyncAGIExec", "AsyncAGIStart", "AttendedTransfer",
    "BlindTransfer", "BridgeCreate", "BridgeDestroy", "BridgeEnter", "BridgeInfoChannel",
    "BridgeInfoComplete", "BridgeLeave", "BridgeMerge", "Cdr", "Cel", "ChanSpyStart",
    "ChanSpyStop", "ConfbridgeJoin", "ConfbridgeLeave", "CoreShowChannel",
    "CoreShowChannelsComplete", "DTMFBegin", "DTMFEnd", "DeviceStateChange", "DialBegin",
    "DialEnd", "DialState", "ExtensionStatus", "FullyBooted", "Hangup", "HangupHandlerPop",
    "HangupHandlerPush", "HangupHandlerRun", "HangupRequest", "Hold", "LocalBridge",
    "LocalOptimizationBegin", "LocalOptimizationEnd", "MixMonitorStart", "MixMonitorStop",
    "MusicOnHoldStart", "MusicOnHoldStop", "NewAccountCode", "NewCallerid", "NewConnectedLine",
    "Newchannel", "Newexten", "Newstate", "OriginateResponse", "PeerStatus", "QueueCallerAbandon",
    "QueueCallerJoin", "QueueCallerLeave", "QueueEntry", "QueueMember", "QueueMemberAdded",
    "QueueMemberPause", "QueueMemberPenalty", "QueueMemberRemoved", "QueueMemberRinginuse",
    "QueueMemberStatus", "QueueParams", "QueueStatusComplete", "RTCPReceived", "RTCPSent",
    "Registry", "Reload", "Rename", "Shutdown", "SoftHangupRequest", "Status", "StatusComplete",
    "SuccessfulAuth", "UserEvent", "Unhold", "VarSet",
})  # fmt: skip
"""AMI event names counted under their own label; every other name Asterisk (or whatever
answers on the AMI port) sends is counted as ``other``, so ``/metrics`` stays bounded."""


def ami_events_by_name(counts: Mapping[str, int]) -> dict[tuple[str, ...], int]:
    """``{(event,): n}`` with unknown event names summed under ``("other",)``."""
    out: dict[tuple[str, ...], int] = {}
    for name, n in list(counts.items()):
        key = (name if name in KNOWN_AMI_EVENTS else "other",)
        out[key] = out.get(key, 0) + n
    return out


@dataclass(frozen=True, slots=True)
class CoreCounters:
    """The core components whose plain counters ``/metrics`` reads at each scrape (the
    composition root hands them over)."""

    ami: AmiClient
    ami_events: Mapping[str, int]
    translator: AmiTranslator
    model: LiveModel
    bus: EventBus
    writer: CallWriter
    live_state: RedisLiveState
    agi: FastAgiServer
    ari: AriClient
    hub: LiveHub
    stasis: StasisDispatcher
    http_deadline: RequestDeadline
    http_connections: Callable[[], int]
    """HTTP connections open now."""


def register_metrics(m: Metrics, core: CoreCounters, plugin_metrics: Iterable[Metric]) -> None:
    """Register the core's metrics and the plugins' on ``m``."""
    ami, writer, agi = core.ami, core.writer, core.agi
    m.counter(
        "callserver_ami_events_total",
        "AMI events received, by event name",
        lambda: ami_events_by_name(core.ami_events),
        labels=("event",),
    )
    m.gauge(
        "callserver_ami_connection_state",
        "1 for the AMI connection's current state",
        lambda: {(s,): int(ami.state == s) for s in AMI_STATES},
        labels=("state",),
    )
    m.counter("callserver_ami_reconnects_total", "AMI reconnects", lambda: ami.reconnects)
    m.counter(
        "callserver_ami_connect_attempts_total",
        "AMI connection attempts (a silent or half-speaking peer shows here, never logged in)",
        lambda: ami.connect_attempts,
    )
    m.counter(
        "callserver_ami_bad_events_total",
        "AMI events dropped as malformed",
        lambda: core.translator.bad,
    )
    m.counter(
        "callserver_ami_agent_complete_without_caller_total",
        "AgentComplete events without the caller's fields (the call found from the agent)",
        lambda: core.translator.agent_complete_without_caller,
    )
    m.gauge(
        "callserver_live_calls",
        "live calls by state",
        lambda: {(k,): v for k, v in core.model.counts_by_state().items()},
        labels=("state",),
    )
    m.counter(
        "callserver_domain_events_total", "domain events published", lambda: core.bus.published
    )
    m.counter(
        "callserver_bus_subscriber_errors_total",
        "event subscribers that raised",
        lambda: core.bus.subscriber_errors,
    )
    m.gauge(
        "callserver_db_write_lag_seconds",
        "age of the oldest unwritten call event, else arrival to commit of the last batch",
        lambda: writer.write_lag,
    )
    m.gauge(
        "callserver_db_buffered_events",
        "call events waiting for PostgreSQL",
        lambda: writer.buffered,
    )
    m.gauge(
        "callserver_db_connected",
        "1 when the call writer reaches PostgreSQL",
        lambda: writer.connected,
    )
    m.counter(
        "callserver_db_written_events_total", "call events written", lambda: writer.written_events
    )
    m.counter(
        "callserver_db_dropped_events_total",
        "call events dropped (buffer full)",
        lambda: writer.dropped_events,
    )
    m.counter(
        "callserver_db_dropped_calls_total",
        "call records dropped after repeated rejection",
        lambda: writer.dropped_calls,
    )
    m.counter(
        "callserver_db_write_errors_total", "failed write batches", lambda: writer.write_errors
    )
    m.gauge(
        "callserver_redis_connected",
        "1 when live state reaches Redis",
        lambda: core.live_state.connected,
    )
    m.counter(
        "callserver_redis_published_total",
        "events published to Redis",
        lambda: core.live_state.published,
    )
    m.counter("callserver_agi_sessions_total", "FastAGI sessions", lambda: agi.sessions_total)
    m.gauge(
        "callserver_agi_sessions_active", "FastAGI sessions running", lambda: agi.sessions_active
    )
    m.counter("callserver_agi_errors_total", "FastAGI sessions that failed", lambda: agi.errors)
    m.gauge(
        "callserver_ari_connected",
        "1 when the ARI events WebSocket is up",
        lambda: core.ari.connected,
    )
    m.gauge(
        "callserver_live_ws_clients", "live board WebSocket clients", lambda: core.hub.clients
    )
    m.counter(
        "callserver_live_ws_dropped_total",
        "live WebSocket clients dropped: too slow to read (queue full or send timed out)",
        lambda: core.hub.dropped_clients,
    )
    m.gauge("callserver_http_connections", "HTTP connections open",
            core.http_connections)  # fmt: skip
    m.counter(
        "callserver_http_request_timeouts_total",
        "HTTP requests cut at the deadline: client (body too slow) or handler (too slow)",
        lambda: {("client",): core.http_deadline.client_timeouts,
                 ("handler",): core.http_deadline.handler_timeouts},
        labels=("side",),
    )  # fmt: skip
    m.gauge("callserver_ari_stasis_calls", "calls in the Stasis app", lambda: core.stasis.active)
    m.counter(
        "callserver_ari_stasis_refused_total",
        "calls sent back to the dialplan: the Stasis app was at ari.max_calls",
        lambda: core.stasis.calls_refused,
    )
    for metric in plugin_metrics:
        register = m.counter if metric.name.endswith("_total") else m.gauge
        register(metric.name, metric.help, metric.read, labels=metric.labels)
