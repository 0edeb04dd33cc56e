"""How many calls/s and AMI events/s pbxsim sustains on one core while a reader drains them.

pbxsim (scenario ``load``, real time) runs in this process on one event loop; a plain socket
reader in a separate process logs in and counts the events it actually reads, time-stamped, so
events/s is what a client received in the measuring window (not what pbxsim says it sent). A
FastAGI server in a third process answers every call's ``route`` request like callserver's
script (GET VARIABLE, SET VARIABLE: ~170 events/call plus the AGI round trips); ``--no-agi``
leaves FastAGI unanswered (the AGISTATUS=FAILURE path, ~157 events/call). The offered arrival
rate is set above the budget; what pbxsim completes in the measuring window is the figure.

    python bench/pbxsim_rate.py [--rate 300] [--seconds 20]

Last line: ``pbxsim_rate calls_per_s=… events_per_s=…`` (events as read by the client;
budget: ≥ 200 calls/s, ~36,000 events/s).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbxsim.app import Pbx, PbxOptions
from pbxsim.scenario import load

Samples = list[tuple[float, int]]


def reader(port: int, seconds: float, out: multiprocessing.Queue[Samples]) -> None:
    """Plain blocking reader: login, then count ``Event: `` occurrences until EOF/time; puts
    ``(time.monotonic(), events read so far)`` samples (CLOCK_MONOTONIC is system-wide)."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, os.sched_getaffinity(0) - {min(os.sched_getaffinity(0))})
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\nEvents: on\r\n\r\n")
    events = 0
    tail = b""
    samples: Samples = [(time.monotonic(), 0)]
    deadline = time.monotonic() + seconds + 60
    while time.monotonic() < deadline:
        try:
            data = s.recv(1 << 20)
        except TimeoutError:
            break
        if not data:
            break
        buf = tail + data
        events += buf.count(b"Event: ") - tail.count(b"Event: ")
        tail = buf[-8:]
        now = time.monotonic()
        if now - samples[-1][0] >= 0.05:
            samples.append((now, events))
    samples.append((time.monotonic(), events))
    out.put(samples)


def read_between(samples: Samples, t0: float, t1: float) -> int:
    """Events the reader had read by ``t1`` minus those by ``t0`` (nearest samples)."""

    def at(t: float) -> int:
        return min(samples, key=lambda s: abs(s[0] - t))[1]

    return at(t1) - at(t0)


def agi_responder(port: int) -> None:
    """A minimal FastAGI server (own process) answering like callserver's route script."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\n", b""):
                pass
            for cmd in (b"GET VARIABLE AD_SOURCE\n", b"SET VARIABLE ROUTE_QUEUE reception\n"):
                writer.write(cmd)
                await reader.readline()
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(rate: float, seconds: float, with_agi: bool) -> tuple[float, float]:
    sc = load("load")
    assert sc.traffic is not None
    # enough operators that calls never wait for one (each is busy ~3 s per call)
    agents = dataclasses.replace(sc.agents, count=max(sc.agents.count, int(rate * 4.5)))
    sc = dataclasses.replace(
        sc,
        agents=agents,
        traffic=dataclasses.replace(sc.traffic, calls_per_s=rate, duration_s=seconds),
    )
    agi_port = _free_port()
    if with_agi:
        agi = multiprocessing.Process(target=agi_responder, args=(agi_port,), daemon=True)
        agi.start()
        await asyncio.sleep(1.0)
    opts = PbxOptions(
        ami_port=0, agi_port=agi_port, speed=1.0, wait_for_ami=True, agi_timeout_s=2.0
    )
    pbx = Pbx(sc, opts)
    await pbx.start()
    q: multiprocessing.Queue[Samples] = multiprocessing.Queue()
    proc = multiprocessing.Process(target=reader, args=(pbx.ami_port, seconds, q), daemon=True)
    proc.start()
    if hasattr(os, "sched_setaffinity"):  # pbxsim on one core, the reader on the others
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    await asyncio.wait_for(pbx.server.logged_in.wait(), 30)
    eng = pbx.engine
    task = asyncio.ensure_future(pbx.run_scenario())
    warmup = min(10.0, seconds / 3)  # a load call lasts ~7 s: wait for steady state
    await asyncio.sleep(warmup)
    c0, e0, t0 = eng.calls_finished, eng.events_emitted, time.monotonic()
    cpu0 = time.process_time()
    await asyncio.sleep(seconds - warmup - 1.0)
    c1, e1, t1 = eng.calls_finished, eng.events_emitted, time.monotonic()
    cpu = time.process_time() - cpu0
    await task
    await pbx.aclose()
    samples = q.get(timeout=120)
    proc.join(10)
    events_read = samples[-1][1]
    dt = t1 - t0
    window_read = read_between(samples, t0, t1)
    print(f"offered {rate:.0f} calls/s for {seconds:.0f} s; window {dt:.1f} s", end="")
    print(f", pbxsim cpu {cpu / dt:.0%} of one core")
    print(f"calls started {eng.calls_started}, finished {eng.calls_finished}", end="")
    print(f"; events emitted {eng.events_emitted}, read by the client {events_read}")
    print(f"events per finished call {eng.events_emitted / max(1, eng.calls_finished):.0f}")
    print(f"in the window: pbxsim emitted {(e1 - e0) / dt:.0f} events/s, the client read "
          f"{window_read / dt:.0f} events/s")  # fmt: skip
    return (c1 - c0) / dt, window_read / dt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=400.0, help="offered calls/s")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--no-agi", action="store_true", help="leave FastAGI unanswered")
    args = p.parse_args()
    calls, events = asyncio.run(run(args.rate, args.seconds, not args.no_agi))
    print(f"pbxsim_rate calls_per_s={calls:.0f} events_per_s={events:.0f}")


if __name__ == "__main__":
    main()
