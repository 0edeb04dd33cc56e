"""A built-in Stasis app that does what the lab's ARI client did in ``ari-stasis-call.jsonl``.

Used by the ``stasis-dtmf`` scenario when no ARI client drives the call (``stasis_builtin``
in the scenario), so the AMI side of a Stasis call can be produced and contract-checked
without the ARI server. Times are scenario seconds.
"""

from __future__ import annotations

import asyncio

from pbxsim.stasis_session import StasisSession


class LabDtmfApp:
    """answer → hello-world → mixing bridge → externalMedia → tt-monkeys → 2 digits → hang up."""

    def __init__(self, digits: int = 2, wait_s: float = 10.0, linger_s: float = 2.7) -> None:
        self.digits = digits
        self.wait_s = wait_s
        self.linger_s = linger_s
        self.received: list[str] = []

    async def run(self, session: StasisSession) -> None:
        session.answer()
        await session.play("sound:hello-world")
        br = session.create_bridge("lab-bridge")
        session.add_to_bridge(br, session.channel)
        rtp = session.external_media("127.0.0.1:40000", "alaw")
        session.add_to_bridge(br, rtp)
        session.play_to_bridge(br, "sound:tt-monkeys")
        clock = session.engine.clock
        deadline = clock.now() + self.wait_s
        while len(self.received) < self.digits:
            try:
                async with asyncio.timeout(max(0.0, deadline - clock.now()) / clock.speed):
                    event = await session.events.get()
            except TimeoutError:
                break
            if event.kind == "hangup":
                return
            self.received.append(event.digit)
        await clock.sleep(self.linger_s)
        session.hangup_extra(rtp)
        session.hangup()
