"""RTP jitter buffer: reordering, loss concealment, 16-bit wrap-around (recognition.jitter)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from recognition.jitter import JitterBuffer

SIL = b"\xff" * 4


def frame(seq: int) -> bytes:
    return seq.to_bytes(4, "big")


def run(buf: JitterBuffer, seqs: list[int]) -> list[tuple[int, bytes, bool]]:
    out = []
    for s in seqs:
        out += [(f.seq & 0xFFFF, f.payload, f.concealed) for f in buf.push(s, frame(s))]
    return out


def test_in_order_frames_pass_straight_through() -> None:
    buf = JitterBuffer(silence=SIL)
    assert run(buf, [10, 11, 12]) == [(10, frame(10), False), (11, frame(11), False),
                                      (12, frame(12), False)]


def test_reordered_frames_come_out_in_sequence_without_concealment() -> None:
    buf = JitterBuffer(silence=SIL, depth=3)
    out = run(buf, [1, 3, 2, 5, 4, 6])
    assert [s for s, _, _ in out] == [1, 2, 3, 4, 5, 6]
    assert not any(c for _, _, c in out) and buf.stats.concealed == 0


def test_a_lost_frame_is_repeated_once_then_silence_after_depth_frames() -> None:
    buf = JitterBuffer(silence=SIL, depth=2, conceal="repeat")
    out = run(buf, [1, 4, 5])  # 2 and 3 lost
    assert out == [(1, frame(1), False), (2, frame(1), True), (3, SIL, True),
                   (4, frame(4), False), (5, frame(5), False)]
    assert buf.stats.concealed == 2


def test_silence_concealment_and_bounded_wait() -> None:
    buf = JitterBuffer(silence=SIL, depth=3, conceal="silence")
    assert run(buf, [1, 3, 4]) == [(1, frame(1), False)]  # still waiting for 2
    assert run(buf, [5]) == [(2, SIL, True), (3, frame(3), False), (4, frame(4), False),
                             (5, frame(5), False)]


def test_sequence_numbers_wrap_around_65535() -> None:
    buf = JitterBuffer(silence=SIL)
    out = run(buf, [65533, 65535, 65534, 0, 1])
    assert [s for s, _, _ in out] == [65533, 65534, 65535, 0, 1]
    assert out[-1][0] == 1 and buf.stats.concealed == 0


def test_late_and_duplicate_packets_are_dropped_and_counted() -> None:
    buf = JitterBuffer(silence=SIL, depth=3)
    assert [s for s, _, _ in run(buf, [1, 3])] == [1]
    assert run(buf, [3]) == [] and buf.stats.duplicate == 1  # held twice: dropped
    assert [s for s, _, _ in run(buf, [2])] == [2, 3]
    assert run(buf, [2]) == [] and run(buf, [1]) == []  # already released: late
    assert buf.stats.late == 2 and buf.stats.concealed == 0


def test_a_big_jump_resets_instead_of_concealing_thousands_of_frames() -> None:
    buf = JitterBuffer(silence=SIL, max_jump=100)
    run(buf, [1, 2])
    out = run(buf, [30000, 30001])
    assert [s for s, _, _ in out] == [30000, 30001] and buf.stats.resets == 1


def test_flush_releases_held_frames_filling_gaps() -> None:
    buf = JitterBuffer(silence=SIL, depth=5, conceal="silence")
    run(buf, [1, 3])
    assert [(f.seq, f.concealed) for f in buf.flush()] == [(2, True), (3, False)]


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 65535), n=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_any_reordering_within_depth_is_undone_exactly(start: int, n: int, seed: int) -> None:
    rng = random.Random(seed)
    seqs = [(start + i) & 0xFFFF for i in range(n)]
    for i in range(1, n - 1, 2):  # swap neighbours (displacement 1 < depth) after the first:
        # the stream starts at the first packet received, as RTP receivers do
        if rng.random() < 0.5:
            seqs[i], seqs[i + 1] = seqs[i + 1], seqs[i]
    buf = JitterBuffer(silence=SIL, depth=3)
    out = run(buf, seqs) + [(f.seq & 0xFFFF, f.payload, f.concealed) for f in buf.flush()]
    assert [s for s, _, _ in out] == [(start + i) & 0xFFFF for i in range(n)]
    assert buf.stats.concealed == 0
