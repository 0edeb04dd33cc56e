"""The order of an outbound patient's turns (``pbxsim.ari.patient_reply.reply_of``)."""

from __future__ import annotations

import pytest

from pbxsim.ari.patient_reply import reply_of
from pbxsim.model import Channel


def channel(**variables: str) -> Channel:
    return Channel("PJSIP/trunk-1", "1.1", "1.1", "from-trunk", "s", variables=variables)


@pytest.mark.parametrize(("after", "turns"), [
    ("prompt", ["audio", "5", "#"]),  # a reminder: speak, then keys
    ("keys", ["5", "#", "audio"]),  # a feedback call: the score key, then the comment
])  # fmt: skip
def test_reply_after_orders_speech_and_keys(after: str, turns: list[str]) -> None:
    reply = reply_of(channel(PBXSIM_AUDIO="/x.wav", PBXSIM_DTMF="5|#", PBXSIM_REPLY_AFTER=after))
    assert reply is not None and reply.turns == turns and reply.audio_after_prompt


def test_without_reply_variables_the_patient_is_left_alone() -> None:
    assert reply_of(channel(PBXSIM_AUDIO="/x.wav")) is None
