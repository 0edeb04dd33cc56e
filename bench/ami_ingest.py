"""AMI ingest benchmark: bytes over loopback TCP → events (→ live model), ours vs panoramisk 1.4.

The stream: every event of the five call transcripts in tests/fixtures/asterisk/ (answered and
abandoned queue calls, originate, Local member with a Cyrillic caller name, the ARI call: 633
events, ~180 of them per queued call, mostly VarSet/Newexten), repeated with renumbered Uniqueid/
Linkedid, channel suffixes and shifted Timestamps until ≥ ``--events`` events (default 200,000,
about 85 MB, CRLF as Asterisk sends it). A server process (pinned to CPU 1) writes it to each
client connection; the consumer (this process, pinned to CPU 0, one asyncio loop) reads it with an
``asyncio.Protocol`` and feeds it to:

  codec       ``AmiCodec.feed`` → AmiMessage (kind and name peeked, headers split on first use:
              the codec as callserver runs it)
  codec-full  the same, every message's headers split into its ``fields`` dict (the work a
              parser that builds all headers eagerly, like panoramisk, does)
  model       the codec + ``AmiTranslator.handle`` into ``LiveModel`` + ``EventBus`` (one
              counting subscriber): the production ingest path minus the store
  panoramisk  panoramisk 1.4's ``AMIProtocol.data_received`` — the method its Manager's transport
              calls — with a counting ``dispatch`` (cheaper than Manager.dispatch's regex routing)

Each contender runs ``--repeat`` times, interleaved; the best run counts (throughput on a shared
machine: the best run is the least disturbed). Events/s = events ÷ (connection_made → EOF).

Usage: .venv/bin/python bench/ami_ingest.py [--events 200000] [--repeat 3]
Last line: ``ami_ingest model_eps=… panoramisk_eps=… ratio=…`` (ratio = our whole ingest path —
codec + translator + live model + bus — ÷ panoramisk's parse alone, in the same run); the lazy
codec and the codec-full figures are printed above it, named as such.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callserver.asterisk.ami_codec import AmiCodec
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.core.bus import EventBus
from callserver.core.events import DomainEvent
from callserver.core.model import LiveModel

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "asterisk"
TEMPLATES = (
    "ami-queue-answered-call.txt",
    "ami-queue-abandoned-call.txt",
    "ami-originate.txt",
    "ami-local-member-cyrillic.txt",
    "ami-during-ari-call.txt",
)
SKIP = ("Event: FullyBooted\r\n", "Event: SuccessfulAuth\r\n")
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
UNIQUEID = re.compile(r"\b(17\d{8})\.(\d{1,4})\b")  # Asterisk ids; Timestamps have 6 decimals
TIMESTAMP = re.compile(r"^Timestamp: (\d+\.\d+)\r$", re.M)
CHANNEL_SEQ = re.compile(r"-([0-9a-f]{8})(?=;|\r\n)")
COPY_SLOT = 600.0
TEMPLATE_SLOT = 120.0
BASE_TIME = 1_800_000_000.0


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


# ---------------------------------------------------------------------------- the stream


def template_events(name: str) -> str:
    """The events Asterisk sent in transcript ``name`` (marker lines and responses dropped,
    login events too), as wire text with CRLF, each ending with the blank line."""
    wire = []
    keep = False
    for line in (FIXTURES / name).read_bytes().decode("utf-8").splitlines(keepends=True):
        if line.startswith("### "):
            keep = "<<<" in line  # direction marker: asterisk -> client
        elif keep:
            wire.append(line)
    blocks = "".join(wire).split("\r\n\r\n")
    events = [b for b in blocks if b.startswith("Event: ") and not (b + "\r\n").startswith(SKIP)]
    return "".join(block + "\r\n\r\n" for block in events)


def renumber(template: str, copy: int, slot: int) -> str:
    """Template events as call copy ``copy``: new ids and channel suffixes, shifted times."""
    t0 = float(TIMESTAMP.search(template).group(1))  # type: ignore[union-attr]
    shift = BASE_TIME + copy * COPY_SLOT + slot * TEMPLATE_SLOT - t0

    def uid(m: re.Match[str]) -> str:
        return f"{m.group(1)}.{int(m.group(2)) + 100 * copy}"

    def ts(m: re.Match[str]) -> str:
        return f"Timestamp: {float(m.group(1)) + shift:.6f}\r"

    def chan(m: re.Match[str]) -> str:
        return f"-{int(m.group(1), 16) + 64 * copy:08x}"

    return CHANNEL_SEQ.sub(chan, TIMESTAMP.sub(ts, UNIQUEID.sub(uid, template)))


def build_stream(min_events: int) -> tuple[bytes, int, int]:
    """(stream bytes, events in it, calls in it)."""
    templates = [template_events(name) for name in TEMPLATES]
    per_copy = sum(t.count("\r\n\r\n") for t in templates)
    copies = -(-min_events // per_copy)
    parts = [BANNER.decode()]
    for copy in range(copies):
        parts.extend(renumber(t, copy, slot) for slot, t in enumerate(templates))
    return "".join(parts).encode("utf-8"), per_copy * copies, len(templates) * copies


def serve(stream: bytes, conn: Connection) -> None:
    """Server process: write the whole stream to every client, then close it."""
    _pin(1)
    with socket.create_server(("127.0.0.1", 0)) as srv:
        conn.send(srv.getsockname()[1])
        while True:
            client, _ = srv.accept()
            with client:
                client.sendall(stream)


# ---------------------------------------------------------------------------- consumers


class Probe(asyncio.Protocol):
    """Feeds every chunk to ``feed`` (which returns the number of events it took) and times the
    connection from connection_made to EOF."""

    def __init__(self, feed: Callable[[bytes], int], done: asyncio.Future[float]) -> None:
        self.feed = feed
        self.done = done
        self.events = 0
        self.t0 = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t0 = time.perf_counter()

    def data_received(self, data: bytes) -> None:
        self.events += self.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(time.perf_counter() - self.t0)


def codec_feed() -> Callable[[bytes], int]:
    codec = AmiCodec()

    def feed(data: bytes) -> int:
        return sum(1 for m in codec.feed(data) if m.kind == "event")

    return feed


def codec_full_feed() -> Callable[[bytes], int]:
    codec = AmiCodec()

    def feed(data: bytes) -> int:
        n = 0
        for m in codec.feed(data):
            if m.fields and m.kind == "event":
                n += 1
        return n

    return feed


class ModelSink:
    """Codec → AmiTranslator → LiveModel → EventBus, as the composition root wires them."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.domain: dict[str, int] = {}
        self.bus.subscribe(self._count)
        self.model = LiveModel(self.bus)
        self.translator = AmiTranslator(self.model)
        self.codec = AmiCodec()

    def _count(self, event: DomainEvent) -> None:
        self.domain[event.type] = self.domain.get(event.type, 0) + 1

    def feed(self, data: bytes) -> int:
        handle = self.translator.handle
        n = 0
        for msg in self.codec.feed(data):
            if msg.kind == "event":
                handle(msg)
                n += 1
        return n


class _PanoSink:
    """The few attributes AMIProtocol reads from its Manager (``factory``)."""

    save_stream = None
    forgetable_actions: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.awaiting_actions: list[Any] = []
        self.events = 0
        self.on_lost: Callable[[], None] = lambda: None

    def dispatch(self, message: Any) -> None:
        self.events += 1

    def connection_lost(self, exc: Any) -> None:
        self.on_lost()


def panoramisk_protocol(done: asyncio.Future[float]) -> tuple[asyncio.Protocol, _PanoSink]:
    from panoramisk.ami_protocol import AMIProtocol

    sink = _PanoSink()

    class Timed(AMIProtocol):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self.factory = sink
            self.encoding = "utf8"  # Manager's default
            t0 = time.perf_counter()

            def lost() -> None:
                if not done.done():
                    done.set_result(time.perf_counter() - t0)

            sink.on_lost = lost

    return Timed(), sink


async def run_one(kind: str, port: int) -> tuple[int, float, str]:
    """One contender over one connection: (events, seconds, note)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()
    note = ""
    if kind == "panoramisk":
        proto, sink = panoramisk_protocol(done)
        await loop.create_connection(lambda: proto, "127.0.0.1", port)
        seconds = await asyncio.wait_for(done, 600)
        return sink.events, seconds, note
    if kind == "model":
        model_sink = ModelSink()
        probe = Probe(model_sink.feed, done)
    else:
        probe = Probe(codec_feed() if kind == "codec" else codec_full_feed(), done)
    await loop.create_connection(lambda: probe, "127.0.0.1", port)
    seconds = await asyncio.wait_for(done, 600)
    if kind == "model":
        d = model_sink.domain
        note = f"domain events {sum(d.values())}, CallEnded {d.get('CallEnded', 0)}"
    return probe.events, seconds, note


async def measure(port: int, kinds: list[str], repeat: int, expect: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for round_no in range(repeat):
        for kind in kinds:
            events, seconds, note = await run_one(kind, port)
            if events != expect:
                raise SystemExit(f"{kind}: {events} events, expected {expect}")
            eps = events / seconds
            best[kind] = max(best.get(kind, 0.0), eps)
            print(
                f"  run {round_no + 1} {kind:11s} {eps:12,.0f} events/s  {seconds:6.3f} s  {note}"
            )
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    t = time.perf_counter()
    stream, events, calls = build_stream(args.events)
    print(
        f"stream: {events:,} events, {calls:,} calls, {len(stream) / 1e6:.1f} MB "
        f"(built in {time.perf_counter() - t:.1f} s)"
    )
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=serve, args=(stream, child), daemon=True)
    server.start()
    try:
        port = parent.recv()
        _pin(0)
        kinds = ["codec", "codec-full", "model", "panoramisk"]
        best = asyncio.run(measure(port, kinds, args.repeat, events))
    finally:
        server.terminate()
        server.join(5)
    report(best)


def report(best: dict[str, float]) -> None:
    pano = best["panoramisk"]
    codec, full, model = best["codec"], best["codec-full"], best["model"]
    print(f"lazy codec alone (headers split on first use): codec_eps={codec:.0f} "
          f"ratio_codec={codec / pano:.2f}")  # fmt: skip
    print(f"codec with every header split: codec_full_eps={full:.0f} "
          f"ratio_full={full / pano:.2f}")  # fmt: skip
    print(f"budgets: whole ingest (codec + translator + live model + bus) ≥ 3× panoramisk's "
          f"parse ({model / pano:.2f}×) and ≥ 150,000 events/s ({model:,.0f})")  # fmt: skip
    print(f"ami_ingest model_eps={model:.0f} panoramisk_eps={pano:.0f} ratio={model / pano:.2f}")


if __name__ == "__main__":
    main()
