"""A campaign runner in its own process, for the kill -9 test:
``python -m tests.integration.campaigns_worker DSN AMI_PORT INSTANCE CLOCK_TS CHANNELS``.
Answers every call with «1» after 30 s of thinking, so its calls are mid-dialog when killed."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

import asyncpg

from campaigns.dialog import Input
from campaigns.scripted import ScriptedConversation
from tests.integration.campaigns_support import Clock, Dials, make_runner


class _Port:
    def __init__(self, port: int) -> None:
        self.ami_port = port


async def main(dsn: str, ami_port: int, instance: str, clock_ts: float, channels: int) -> None:
    from tests.integration.campaigns_support import ami_client

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    ami = await ami_client(_Port(ami_port), Dials())  # type: ignore[arg-type]
    clock = Clock(datetime.fromtimestamp(clock_ts, tz=UTC))
    conversation = ScriptedConversation({}, default=[Input("dtmf", "1")], think_s=30.0)

    class _Hook:
        async def send(self, event: dict[str, object]) -> None:
            return None

    runner, _ = make_runner(pool, ami, conversation, clock, instance=instance,
                            channels=channels, webhook=_Hook())  # fmt: skip
    await runner.start()
    print("worker started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    dsn, port, inst, ts, ch = sys.argv[1:6]
    asyncio.run(main(dsn, int(port), inst, float(ts), int(ch)))
