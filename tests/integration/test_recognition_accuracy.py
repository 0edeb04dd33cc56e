"""The English test set end to end: RTP µ-law frames (reordered) → jitter buffer → G.711 decode
→ 8→16 kHz → webrtcvad → pocketsphinx (grammar of the dialog state) → intent.

Each espeak-ng voice is one caller: its utterances go through one call leg (one recogniser
stream, one listener, one jitter buffer), as the ARI session will use them — the stream starts
from the telephone cepstral mean and adapts to the caller over the call.

The ≥ 60 utterances are made once per machine by ``tests/fixtures/speech/make_utterances.py``
(espeak-ng, 7 voices, 5 speeds, 8 kHz telephone band, white noise at 20–35 dB SNR, µ-law) and
cached in pytest's cache directory. No fake recogniser anywhere on this path.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from recognition.audio import SILENCE_BYTE, decode, pcm16_samples, ulaw_encode
from recognition.backends import RecognitionConfig, load_backend
from recognition.jitter import JitterBuffer
from recognition.pipeline import Listener, Recognised
from tests.fixtures.speech.make_utterances import ensure_utterances

pytestmark = pytest.mark.integration
FRAME = 160  # 20 ms of 8 kHz µ-law


@pytest.fixture(scope="session")
def utterances(request: pytest.FixtureRequest) -> tuple[Path, list[dict[str, object]]]:
    outdir = Path(request.config.cache.mkdir("speech-utterances"))
    return outdir, ensure_utterances(outdir)


def rtp_frames(samples: np.ndarray, rng: random.Random, sent: int) -> list[tuple[int, bytes]]:
    """µ-law RTP payloads numbered on from ``sent`` frames (starting near the 16-bit wrap), 5%
    of neighbours swapped."""
    payload = ulaw_encode(samples)
    start = 65500 + sent
    frames = [((start + i) & 0xFFFF, payload[o:o + FRAME])
              for i, o in enumerate(range(0, len(payload) - FRAME + 1, FRAME))]
    for i in range(1, len(frames) - 1):
        if rng.random() < 0.05:
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
    return frames


def one_utterance(outdir: Path, item: dict[str, object], listener: Listener,
                  jitter: JitterBuffer, rng: random.Random) -> list[Recognised]:
    """Play one utterance file into a call leg as RTP; the final results it produced."""
    samples = pcm16_samples((outdir / str(item["file"])).read_bytes())
    listener.listen(str(item["state"]))
    events = []
    for seq, payload in rtp_frames(samples, rng, jitter.stats.received):
        for frame in jitter.push(seq, payload):
            events += listener.feed(decode("ulaw", frame.payload))
    return [e for e in events if isinstance(e, Recognised)]


def test_english_intent_accuracy_is_at_least_90_percent(
        utterances: tuple[Path, list[dict[str, object]]]) -> None:
    outdir, labels = utterances
    assert len(labels) >= 60
    backend = load_backend(RecognitionConfig(backend="pocketsphinx", language="en"))
    rng = random.Random(12)
    calls: dict[str, list[dict[str, object]]] = {}
    for item in labels:
        calls.setdefault(str(item["voice"]), []).append(item)
    correct, misses, decode_ms = 0, Counter[str](), []
    for items in calls.values():
        stream = backend.new_stream()
        listener = Listener(stream, in_rate=8000, lang="en")
        jitter = JitterBuffer(silence=bytes([SILENCE_BYTE["ulaw"]]) * FRAME)
        for item in items:
            finals = one_utterance(outdir, item, listener, jitter, rng)
            assert finals, f"no utterance detected in {item['file']} ({item['text']})"
            decode_ms += [e.decode_ms for e in finals]
            got = finals[0].intent.intent
            correct += got == item["intent"]
            if got != item["intent"]:
                misses[f"{item['intent']}→{got}"] += 1
        stream.close()
    accuracy = correct / len(labels)
    print(f"\nintent accuracy {correct}/{len(labels)} = {accuracy:.1%}; misses {dict(misses)}; "
          f"decode p50 {np.percentile(decode_ms, 50):.1f} ms p99 "
          f"{np.percentile(decode_ms, 99):.1f} ms")
    assert accuracy >= 0.90
