"""pbxsim for voice-bot runs with a different caller voice per call (a separate process).

pbxsim's CLI sends one ``--ari-audio`` WAV for every externalMedia stream (or the caller's
``PBXSIM_AUDIO`` variable, which only the dialplan could set before the bot bridges the call).
This harness runs pbxsim as a library — the same engine, AMI server and ARI server as
``python -m pbxsim`` — with the ARI audio picker keyed by the caller's number, and starts the
planned calls once callserver is logged in to AMI and subscribed to the ARI app. No pbxsim code
is changed.

    python -m tests.ivr_pbx --plan plan.json --ami 127.0.0.1:5038 --ari 127.0.0.1:8088

``plan.json``: ``{"scenario": "path.toml", "speed": 1.0, "calls": [{"caller": "7916…",
"wav": "/path.wav", "at": 0.5, "hold_s": 10, "dtmf": [[3.0, "1"]]}]}`` (``at``: wall seconds
after the app is subscribed; ``hold_s``: scenario seconds the caller stays in Stasis).
Prints ``ivr_pbx: ready AMI … ARI …`` when listening and ``ivr_pbx: calls started N`` after the
last call started.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from pathlib import Path

from pbxsim.app import Pbx, PbxOptions
from pbxsim.ari import AriConfig, start_ari
from pbxsim.ari.server import OPS
from pbxsim.dialplan import InboundCall
from pbxsim.model import Channel
from pbxsim.scenario import load


def _addr(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


async def run(plan: dict[str, object], ami: tuple[str, int], ari_addr: tuple[str, int]) -> None:
    scenario = dataclasses.replace(load(str(plan["scenario"])), calls=())
    calls = list(plan["calls"])  # type: ignore[call-overload]
    voices = {str(c["caller"]): Path(str(c["wav"])) for c in calls}
    pbx = Pbx(scenario, PbxOptions(ami_host=ami[0], ami_port=ami[1], agi_port=1,
                                   speed=float(plan.get("speed", 1.0)),  # type: ignore[arg-type]
                                   wait_for_ami=True))  # fmt: skip
    await pbx.start()
    ari = await start_ari(pbx.engine, AriConfig(ari_addr[0], ari_addr[1]))

    def pick(caller: Channel | None) -> Path | None:
        return voices.get(caller.cid_num) if caller is not None else None

    ari.app[OPS].audio = pick
    print(f"ivr_pbx: ready AMI {ami[0]}:{pbx.ami_port} ARI {ari_addr[0]}:{ari.port}", flush=True)
    runner = asyncio.create_task(pbx.run_scenario())
    try:
        await pbx.server.logged_in.wait()
        while not (app := ari.core.apps.get("callserver")) or not app.outboxes:  # noqa: ASYNC110 - pbxsim has no event for it
            await asyncio.sleep(0.05)
        t0 = time.monotonic()
        for c in sorted(calls, key=lambda c: float(c.get("at", 0.0))):
            await asyncio.sleep(max(0.0, t0 + float(c.get("at", 0.0)) - time.monotonic()))
            pbx.start_call(InboundCall(
                did=str(plan.get("did", "74959990000")), caller=str(c["caller"]),
                stasis_hold_s=float(c.get("hold_s", 30.0)),
                dtmf=tuple((float(t), str(d)) for t, d in c.get("dtmf", [])),
            ))  # fmt: skip
        print(f"ivr_pbx: calls started {len(calls)}", flush=True)
        await asyncio.Event().wait()
    finally:
        runner.cancel()
        await ari.aclose()
        await pbx.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plan", type=Path, required=True)
    ap.add_argument("--ami", type=_addr, default=("127.0.0.1", 0))
    ap.add_argument("--ari", type=_addr, default=("127.0.0.1", 0))
    args = ap.parse_args()
    asyncio.run(run(json.loads(args.plan.read_text()), args.ami, args.ari))


if __name__ == "__main__":
    main()
