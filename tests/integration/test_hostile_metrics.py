"""``/metrics`` stays bounded whatever names Asterisk sends: thousands of unknown AMI event names
and queue names go through the real codec, translator and live model; the number of series
stays under a cap (unknown events counted as ``other``; any labelled family capped at
``MAX_SERIES`` with the rest under ``other``)."""

from __future__ import annotations

import asyncio
import random
import string

import aiohttp

from callserver.app import CallServer
from callserver.asterisk.ami_codec import AmiCodec
from callserver.config import load_config
from callserver.metrics import MAX_SERIES
from callserver.plugin_api import Contribution, Metric, PluginDeps
from callserver.plugins import LoadedPlugin, load_plugins, order
from devtools.services import free_port

SERIES_CAP = 600
"""All families together: a few hundred fixed series plus at most MAX_SERIES per labelled one."""


class QueueGauge:
    """A clinic plugin exporting waiting callers per queue: its labels come from Asterisk."""

    name = "queue_gauge"
    config_type = None
    migrations = None
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        def read() -> dict[tuple[str, ...], int]:
            return {(q,): len(s.waiting) for q, s in deps.live.queues().items()}

        metric = Metric("clinic_queue_waiting", "callers waiting by queue", read, ("queue",))
        return Contribution(metrics=[metric])


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + "Яё_-") for _ in range(rng.randint(1, 24)))


def _frames(rng: random.Random, n: int) -> bytes:
    out = []
    for i in range(n):
        out.append(f"Event: {_word(rng)}{i}\r\nPrivilege: call,all\r\nX: {i}\r\n\r\n")
        out.append(
            f"Event: QueueCallerJoin\r\nChannel: PJSIP/t-{i}\r\nUniqueid: 17{i}.1\r\n"
            f"Linkedid: 17{i}.1\r\nQueue: {_word(rng)}{i}\r\nPosition: 1\r\n"
            f"CallerIDNum: 7916{i:07d}\r\n\r\n"
        )
    return "".join(out).encode()


def _series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


async def test_random_event_and_queue_names_keep_metrics_series_bounded(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    config = load_config(None, env={
        "CALLSERVER_DATABASE_DSN": fresh_pg_dsn, "CALLSERVER_REDIS_URL": redis_url,
        "CALLSERVER_REDIS_PREFIX": redis_prefix, "CALLSERVER_HTTP_PORT": str(free_port()),
        "CALLSERVER_AMI_ENABLED": "false", "CALLSERVER_AGI_ENABLED": "false",
        "CALLSERVER_ARI_ENABLED": "false",
    })  # fmt: skip
    plugins = order([*load_plugins(config), LoadedPlugin(QueueGauge(), None)])
    server = await CallServer.create(config, plugins)
    await server.start()
    try:
        await asyncio.wait_for(server.database.ready.wait(), 30)
        codec = AmiCodec()
        frames = b"Asterisk Call Manager/9.0.0\r\n" + _frames(random.Random(9), 3000)
        for message in codec.feed(frames):
            if message.kind != "event":
                continue  # the banner: AmiClient hands on events only
            server._on_ami_event(message)
        assert len(server.model.queues()) >= 3000  # the names did reach the model
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{config.http.port}/metrics"
            async with http.get(url) as resp:
                text = await resp.text()
        series = _series(text)
        assert len(series) < SERIES_CAP, len(series)
        events = [s for s in series if s.startswith("callserver_ami_events_total{")]
        assert 'callserver_ami_events_total{event="other"} 3000.0' in events
        assert 'callserver_ami_events_total{event="QueueCallerJoin"} 3000.0' in events
        assert len(events) == 2
        queues = [s for s in series if s.startswith("clinic_queue_waiting{")]
        assert len(queues) == MAX_SERIES
        assert sum(float(s.rsplit(" ", 1)[1]) for s in queues) == 3000.0  # nothing lost
        assert any('queue="other"' in s for s in queues)
        assert len(server.ami_events) == 2  # memory bounded too, not just the output
    finally:
        await server.aclose()
