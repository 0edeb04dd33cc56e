"""Voice-bot benchmark: N concurrent bot calls from pbxsim sending real speech over RTP.

Each step runs pbxsim (``tests/ivr_pbx.py``, its own process: AMI, ARI, externalMedia RTP, a
voice per caller) and callserver with every plugin (in this process; recognition in its
pocketsphinx worker processes). N callers arrive within ``--ramp`` seconds (5 s: every call is
in the bot at the same time, their phrases are not in lock-step; ``--ramp 0`` is the worst case of
N people starting to speak at the same moment); each says three
phrases of the English test set (``tests/fixtures/speech/make_utterances.py``: espeak-ng, 7
voices, telephone band, noise, µ-law) with ``--gap`` seconds between them, and the bot answers
each (a reprompt counts as a reply; call-back phrases, which end the call, are left out).
Measured per step:

* reply latency: the VAD's end of utterance → the bot's reply prompt requested and accepted by
  ARI (``reply_ms`` of each call's transcript), p50/p99. The caller's last voiced frame comes
  ``trailing_pause_ms`` (400 ms) before the VAD's end: printed separately as "from last voice";
* recogniser RTF: CPU seconds of the worker processes / seconds of speech they decoded;
* accuracy: the first phrase of each call (heard in the main menu) → the right intent.

``max_concurrent`` is the largest N whose reply p99 ≤ 300 ms (and no call missed or refused).
The machine's other load counts: run it on a quiet box (2 cores shared with pbxsim here).

Usage: .venv/bin/python bench/voice_bot.py [--steps 10,20,30,40,50] [--gap 2.5]
Last line: ``voice_bot rtf=… reply_p99_ms=… max_concurrent=… accuracy=…``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callserver.app import CallServer  # noqa: E402
from callserver.config import load_config  # noqa: E402
from callserver.plugins import load_plugins, order  # noqa: E402
from devtools.services import Services, ensure_services, free_port, port_open  # noqa: E402
from recognition.audio import pcm16_samples  # noqa: E402
from tests.fixtures.speech.make_utterances import ensure_utterances  # noqa: E402

RULES = 'version = "bench"\n[defaults]\nqueue = "reception"\nlanguage = "en"\n' \
        'languages = ["en"]\n[queues.reception]\nempty_mode = "bot"\n'
BUDGET_MS = 300.0
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Step:
    n: int
    reply_ms: list[float] = field(default_factory=list)
    right: int = 0
    scored: int = 0
    rtf: float = 0.0
    audio_s: float = 0.0
    missed: int = 0
    """Calls in which the bot heard nothing (the first phrase lost)."""
    refused: int = 0
    decode_ms: list[float] = field(default_factory=list)
    """VAD end of utterance → final recognition result (inside reply_ms)."""

    def p(self, q: float) -> float:
        return _pct(self.reply_ms, q)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.astype("<i2").tobytes())


def plan(n: int, items: list[dict[str, Any]], udir: Path, tmp: Path, gap: float,
         ramp: float) -> tuple[dict[str, Any], dict[int, str]]:  # fmt: skip
    """N calls, each three main-menu phrases; returns the plan and each call's first intent."""
    # a call-back request ends the call: the other main-menu phrases keep the caller talking
    menu = [it for it in items if it["state"] == "main_menu" and it["intent"] != "callback"]
    calls, first = [], {}
    silence = np.zeros(int(8000 * gap), dtype=np.int16)
    for i in range(n):
        picks = [menu[(i * 3 + k) % len(menu)] for k in range(3)]
        parts = []
        for it in picks:
            parts += [pcm16_samples((udir / str(it["file"])).read_bytes()), silence]
        wav = tmp / f"call{i:03d}.wav"
        write_wav(wav, np.concatenate(parts))
        first[i] = str(picks[0]["intent"])
        calls.append({"caller": f"7916100{i:04d}", "wav": str(wav), "at": ramp * i / n,
                      "hold_s": 4 * gap + 12})  # fmt: skip
    scen = ROOT / "tests" / "fixtures" / "ivr" / "bot-line.toml"
    return {"scenario": str(scen), "speed": 1.0, "calls": calls}, first


def worker_cpu() -> float:
    """CPU seconds of this process's multiprocessing children (the recognition workers)."""
    total = 0
    for child in multiprocessing.active_children():
        try:
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / TICK


async def api(port: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"http://127.0.0.1:{port}/api/ivr/calls",
                              headers={"Authorization": "Bearer bench"})
        data: dict[str, Any] = await resp.json()
        return data


async def run_step(n: int, svc: Services, dsn: str, items: list[dict[str, Any]], udir: Path,
                   args: argparse.Namespace) -> Step:  # fmt: skip
    step = Step(n)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        (tmp / "rules.toml").write_text(RULES)
        p, first = plan(n, items, udir, tmp, args.gap, args.ramp)
        (tmp / "plan.json").write_text(json.dumps(p))
        ami, ari, rtp, http = free_port(), free_port(), min(free_port(), 64000), free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.ivr_pbx", "--plan", str(tmp / "plan.json"),
            "--ami", f"127.0.0.1:{ami}", "--ari", f"127.0.0.1:{ari}", cwd=str(ROOT),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
        try:
            while not port_open("127.0.0.1", ari, 0.05):  # noqa: ASYNC110 - a port, no event
                await asyncio.sleep(0.05)
            config = load_config(None, env={
                "CALLSERVER_AMI_PORT": str(ami), "CALLSERVER_AMI_SECRET": "callserver",
                "CALLSERVER_ARI_URL": f"http://127.0.0.1:{ari}/ari",
                "CALLSERVER_ARI_PASSWORD": "callserver", "CALLSERVER_AGI_PORT": str(free_port()),
                "CALLSERVER_DATABASE_DSN": dsn, "CALLSERVER_REDIS_URL": svc.redis_url,
                "CALLSERVER_REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}:",
                "CALLSERVER_HTTP_PORT": str(http), "CALLSERVER_HTTP_API_TOKEN": "bench",
                "CALLSERVER_ROUTING_RULES_FILE": str(tmp / "rules.toml"),
                "CALLSERVER_IVR_LANGUAGE": "en", "CALLSERVER_IVR_SILENCE_S": "20",
                "CALLSERVER_IVR_MAX_CALLS": str(max(40, n)), "CALLSERVER_IVR_LOAD_AT_START": "true",
                "CALLSERVER_IVR_PREWARM": str(-(-max(40, n) // 2)),  # max_calls / workers
                "CALLSERVER_IVR_RTP_PORT_MIN": str(rtp),
                "CALLSERVER_IVR_RTP_PORT_MAX": str(rtp + 2 * max(40, n) + 10),
            })  # fmt: skip
            server = await CallServer.create(config, order(load_plugins(config)))
            await server.start()
            try:
                await measure(step, http, first, args)
            finally:
                await server.aclose()
        finally:
            proc.terminate()
            await proc.wait()
    return step


async def measure(step: Step, http: int, first: dict[int, str],
                  args: argparse.Namespace) -> None:  # fmt: skip
    while (await api(http))["calls_total"] < 1:  # noqa: ASYNC110 - polls an HTTP API
        await asyncio.sleep(0.1)
    cpu0, audio0 = worker_cpu(), (await api(http))["recognition"]["audio_s"]
    deadline = time.monotonic() + args.ramp + 4 * args.gap + 20
    while time.monotonic() < deadline:
        data = await api(http)
        calls = data["active_calls"] + data["calls"]
        if len(calls) >= step.n and all(len([h for h in c["heard"] if h["text"]]) >= 3
                                        for c in calls):  # fmt: skip
            break
        await asyncio.sleep(0.25)
    data = await api(http)
    step.audio_s = data["recognition"]["audio_s"] - audio0
    step.rtf = (worker_cpu() - cpu0) / step.audio_s if step.audio_s else float("nan")
    step.refused = data["refused"]
    calls = data["active_calls"] + data["calls"]
    for c in calls:
        step.reply_ms += c["reply_ms"]
        heard = [h for h in c["heard"] if h["text"]]
        i = int(str(c["caller"])[-4:])
        step.scored += 1
        step.right += bool(heard) and heard[0]["intent"] == first.get(i)
        step.missed += not heard
        step.decode_ms += [float(h["decode_ms"]) for h in heard]
    step.missed += step.n - len(calls)


async def main_async(args: argparse.Namespace) -> None:
    svc = ensure_services()
    db = f"voice_bot_bench_{os.getpid()}"
    conn = await asyncpg.connect(svc.pg_dsn)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    dsn = svc.pg_dsn.rpartition("/")[0] + "/" + db
    udir = Path(args.dir)
    items = ensure_utterances(udir)
    steps: list[Step] = []
    try:
        for n in [int(x) for x in args.steps.split(",")]:
            s = await run_step(n, svc, dsn, items, udir, args)
            steps.append(s)
            print(f"N={n:3d} (ramp {args.ramp:g} s)  replies={len(s.reply_ms):3d}  "
                  f"reply p50={s.p(50):6.1f} ms  "
                  f"p99={s.p(99):6.1f} ms  (from last voice +{args.pause} ms)  "
                  f"decode p50={_pct(s.decode_ms, 50):.1f} p99={_pct(s.decode_ms, 99):.1f} ms  "
                  f"rtf={s.rtf:.3f} over {s.audio_s:.0f} s of speech  "
                  f"first-phrase accuracy={s.right}/{s.scored}  missed={s.missed} "
                  f"refused={s.refused}", flush=True)  # fmt: skip
    finally:
        conn = await asyncpg.connect(svc.pg_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await conn.close()
        svc.stop()
    ok = [s for s in steps if s.p(99) <= BUDGET_MS and not s.missed and not s.refused]
    best = max(ok, key=lambda s: s.n) if ok else None
    head = best or steps[-1]
    right, scored = sum(s.right for s in steps), sum(s.scored for s in steps)
    rtfs = [s.rtf for s in steps if s.audio_s]
    print(f"voice_bot rtf={np.mean(rtfs):.3f} reply_p99_ms={head.p(99):.0f} "
          f"max_concurrent={best.n if best else 0} accuracy={right / max(scored, 1):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", default="10,20,30,40,50", help="concurrent calls per step")
    ap.add_argument("--gap", type=float, default=2.5, help="seconds between a caller's phrases")
    ap.add_argument("--ramp", type=float, default=5.0,
                    help="seconds over which callers arrive (all N are in the bot together; "
                         "their phrases do not start in lock-step)")
    ap.add_argument("--pause", type=int, default=400, help="VAD trailing pause (ms), printed")
    ap.add_argument("--dir", default="/tmp/callserver-asr", help="utterance cache")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
