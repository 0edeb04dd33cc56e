"""What ``/metrics`` exposes: readers over the components' plain counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callserver.app import CallServer
    from callserver.plugin_api import Metric

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


def register_metrics(server: CallServer, plugin_metrics: Iterable[Metric]) -> None:
    m = server.metrics
    ami, writer, agi = server.ami, server.writer, server.agi
    m.counter(
        "callserver_ami_events_total",
        "AMI events received, by event name",
        lambda: ami_events_by_name(server.ami_events),
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
        lambda: server.translator.bad,
    )
    m.counter(
        "callserver_ami_agent_complete_without_caller_total",
        "AgentComplete events without the caller's fields (the call found from the agent)",
        lambda: server.translator.agent_complete_without_caller,
    )
    m.gauge(
        "callserver_live_calls",
        "live calls by state",
        lambda: {(k,): v for k, v in server.model.counts_by_state().items()},
        labels=("state",),
    )
    m.counter(
        "callserver_domain_events_total", "domain events published", lambda: server.bus.published
    )
    m.counter(
        "callserver_bus_subscriber_errors_total",
        "event subscribers that raised",
        lambda: server.bus.subscriber_errors,
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
        lambda: server.live_state.connected,
    )
    m.counter(
        "callserver_redis_published_total",
        "events published to Redis",
        lambda: server.live_state.published,
    )
    m.counter("callserver_agi_sessions_total", "FastAGI sessions", lambda: agi.sessions_total)
    m.gauge(
        "callserver_agi_sessions_active", "FastAGI sessions running", lambda: agi.sessions_active
    )
    m.counter("callserver_agi_errors_total", "FastAGI sessions that failed", lambda: agi.errors)
    m.gauge(
        "callserver_ari_connected",
        "1 when the ARI events WebSocket is up",
        lambda: server.ari.connected,
    )
    m.gauge(
        "callserver_live_ws_clients", "live board WebSocket clients", lambda: server.hub.clients
    )
    m.counter(
        "callserver_live_ws_dropped_total",
        "live WebSocket clients dropped: too slow to read (queue full or send timed out)",
        lambda: server.hub.dropped_clients,
    )
    m.gauge("callserver_http_connections", "HTTP connections open",
            lambda: server.http_connections)  # fmt: skip
    m.counter(
        "callserver_http_request_timeouts_total",
        "HTTP requests cut at the deadline: client (body too slow) or handler (too slow)",
        lambda: {("client",): server.http_deadline.client_timeouts,
                 ("handler",): server.http_deadline.handler_timeouts},
        labels=("side",),
    )  # fmt: skip
    m.gauge("callserver_ari_stasis_calls", "calls in the Stasis app", lambda: server.stasis.active)
    m.counter(
        "callserver_ari_stasis_refused_total",
        "calls sent back to the dialplan: the Stasis app was at ari.max_calls",
        lambda: server.stasis.calls_refused,
    )
    for metric in plugin_metrics:
        register = m.counter if metric.name.endswith("_total") else m.gauge
        register(metric.name, metric.help, metric.read, labels=metric.labels)
