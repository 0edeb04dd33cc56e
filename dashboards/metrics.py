"""Prometheus families for queues and operators, read at scrape time from the board's latest
tick. Label sets are bounded: at most ``MAX_QUEUES`` queues and ``MAX_OPERATORS`` operators
(the rest are left out, never an unbounded series set), operator states are a fixed list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callserver.plugin_api import Metric

MAX_QUEUES = 50
MAX_OPERATORS = 300
STATES = ("free", "ringing", "talking", "wrapup", "paused", "offline")

Board = Callable[[], dict[str, Any]]


def _per_queue(board: Board, pick: Callable[[dict[str, Any]], Any]) -> Callable[[], Any]:
    def read() -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for q in board().get("queues", [])[:MAX_QUEUES]:
            value = pick(q)
            if value is not None:
                out[(q["name"],)] = float(value)
        return out

    return read


QUEUE_FIGURES: list[tuple[str, str, Callable[[dict[str, Any]], Any]]] = [
    ("waiting", "callers waiting now", lambda r: r["waiting"]),
    ("longest_wait_seconds", "longest current wait", lambda r: r["longest_wait"]),
    ("estimated_wait_seconds", "estimated wait for a new caller",
     lambda r: r["estimated_wait"]),
    ("service_level_today", "answered within the SL time / offered, today",
     lambda r: r["today"]["service_level"]),
    ("service_level_15m", "service level over the last 15 minutes",
     lambda r: r["last15"]["service_level"]),
    ("abandon_rate_15m", "abandoned / offered, last 15 minutes",
     lambda r: r["last15"]["abandon_rate"]),
    ("asa_today_seconds", "average speed of answer today", lambda r: r["today"]["asa"]),
    ("aht_today_seconds", "average handle time today", lambda r: r["today"]["aht"]),
    ("offered_today", "calls offered today", lambda r: r["today"]["offered"]),
    ("overloaded", "1 while the overload alarm is raised",
     lambda r: 1 if r["overload"] == "overloaded" else 0),
]  # fmt: skip


def board_metrics(board: Board, webhook_sent: Callable[[], int],
                  webhook_failed: Callable[[], int]) -> list[Metric]:  # fmt: skip
    metrics = [Metric(f"callserver_dashboards_queue_{name}", help, _per_queue(board, pick),
                      ("queue",)) for name, help, pick in QUEUE_FIGURES]  # fmt: skip

    def by_state() -> dict[tuple[str, ...], float]:
        counts = dict.fromkeys(STATES, 0.0)
        for o in board().get("operators", []):
            counts[o["state"]] = counts.get(o["state"], 0.0) + 1
        return {(s,): counts[s] for s in STATES}

    def calls_today() -> dict[tuple[str, ...], float]:
        return {(o["interface"],): float(o["calls_today"])
                for o in board().get("operators", [])[:MAX_OPERATORS]}  # fmt: skip

    return [
        *metrics,
        Metric("callserver_dashboards_operators", "operators by state", by_state, ("state",)),
        Metric("callserver_dashboards_operator_calls_today", "calls answered today",
               calls_today, ("operator",)),
        Metric("callserver_dashboards_missed_not_called_back", "missed calls awaiting a callback",
               lambda: board().get("missed_total", 0)),
        Metric("callserver_dashboards_alarms", "live alarms on the board",
               lambda: len(board().get("alarms", []))),
        Metric("callserver_dashboards_overload_webhooks_total", "overload webhooks delivered",
               webhook_sent),
        Metric("callserver_dashboards_overload_webhook_failures_total",
               "overload webhooks that failed", webhook_failed),
    ]
