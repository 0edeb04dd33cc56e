"""``python -m pbxsim --scenario NAME --speed N --ami HOST:PORT --agi HOST:PORT …``"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
from pathlib import Path

from pbxsim.app import Pbx, PbxOptions
from pbxsim.ari import AriConfig, start_ari
from pbxsim.ledger import LedgerError
from pbxsim.scenario import ScenarioError, load

log = logging.getLogger("pbxsim")


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pbxsim", description="Protocol-faithful Asterisk simulator")
    p.add_argument(
        "--scenario", default="single-answered", help="name in pbxsim/scenarios/ or a .toml path"
    )
    p.add_argument("--speed", type=float, default=1.0, help="scenario seconds per wall second")
    p.add_argument("--ami", type=_hostport, default=("127.0.0.1", 5038), help="listen HOST:PORT")
    p.add_argument(
        "--ari",
        type=_hostport,
        default=("127.0.0.1", 8088),
        help="ARI (HTTP + events websocket) listen HOST:PORT",
    )
    p.add_argument(
        "--agi", type=_hostport, default=("127.0.0.1", 4573), help="FastAGI server to call"
    )
    p.add_argument("--ami-user", default="callserver")
    p.add_argument("--ami-secret", default="callserver")
    p.add_argument("--ari-user", default="callserver")
    p.add_argument("--ari-password", default="callserver")
    p.add_argument("--ari-audio", type=Path, help="WAV sent as the caller's voice on externalMedia")
    p.add_argument(
        "--wait-for-ami", action="store_true", help="start calls once an AMI client logged in"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, help="override traffic calls/s (load scenario)")
    p.add_argument(
        "--burst", type=_burst, action="append", default=[],
        help="START:SECONDS:RATE extra calls/s on top of the traffic (repeatable)",
    )  # fmt: skip
    p.add_argument("--duration", type=float, help="override traffic duration (scenario seconds)")
    p.add_argument(
        "--keep-running", action="store_true", help="stay up after the scenario's calls ended"
    )
    p.add_argument(
        "--ledger", default="", metavar="PATH", help="append a JSON line per ended call here"
    )
    p.add_argument(
        "--cdr-dsn", default="", metavar="DSN",
        help="write Asterisk's cdr and queue_log rows into this PostgreSQL database",
    )  # fmt: skip
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def _run(args: argparse.Namespace) -> int:
    try:
        scenario = load(args.scenario)
    except ScenarioError as exc:
        print(f"pbxsim: {exc.message}", file=sys.stderr)
        return 2
    if scenario.traffic is not None and (args.rate or args.duration or args.burst):
        traffic = scenario.traffic
        if args.rate:
            traffic = dataclasses.replace(traffic, calls_per_s=args.rate)
        if args.duration:
            traffic = dataclasses.replace(traffic, duration_s=args.duration)
        if args.burst:
            traffic = dataclasses.replace(traffic, bursts=(*traffic.bursts, *args.burst))
        scenario = dataclasses.replace(scenario, traffic=traffic)
    opts = PbxOptions(
        ami_host=args.ami[0],
        ami_port=args.ami[1],
        agi_host=args.agi[0],
        agi_port=args.agi[1],
        ami_user=args.ami_user,
        ami_secret=args.ami_secret,
        speed=args.speed,
        seed=args.seed,
        wait_for_ami=args.wait_for_ami,
        ledger_path=args.ledger,
        cdr_dsn=args.cdr_dsn,
    )
    try:
        pbx = Pbx(scenario, opts)
    except LedgerError as exc:
        print(f"pbxsim: {exc.message}", file=sys.stderr)
        return 2
    await pbx.start()
    try:
        ari_cfg = AriConfig(
            args.ari[0], args.ari[1], args.ari_user, args.ari_password, audio=args.ari_audio
        )
        ari = await start_ari(pbx.engine, ari_cfg)
    except BaseException:
        await pbx.aclose()
        raise
    print(
        f"pbxsim: scenario {scenario.name} speed {args.speed} AMI {opts.ami_host}:{pbx.ami_port}"
        f" ARI {ari_cfg.host}:{ari.port}",
        flush=True,
    )
    try:
        await pbx.run_scenario()
        eng = pbx.engine
        print(f"pbxsim: done calls={eng.calls_started} events={eng.events_emitted}", flush=True)
        if args.keep_running:
            await asyncio.Event().wait()
    finally:
        await ari.aclose()
        await pbx.aclose()
    return 0


def _burst(text: str) -> tuple[float, float, float]:
    try:
        start, seconds, rate = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:SECONDS:RATE, got {text!r}") from None
    return start, seconds, rate


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_run(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
