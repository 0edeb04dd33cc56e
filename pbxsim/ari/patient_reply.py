"""An outbound patient answering the bot: keys and speech once the bot's prompt finished.

A trunk originate answered into Stasis (``pbxsim.patients``) may carry, in its channel
variables (the Originate's ``Variable:`` control hook, or the scenario's ``[originate]``):

* ``PBXSIM_DTMF`` — key groups separated by ``|`` (``"2"``, ``"4|#"``; not commas: AMI splits
  an Originate's ``Variable:`` at commas, as Asterisk does): each group is pressed
  (DTMFBegin/DTMFEnd ``Received`` on AMI → ``ChannelDtmfReceived`` on ARI, 280 ms a key,
  ``KEY_GAP_S`` apart) after the next prompt finished;
* ``PBXSIM_REPLY_AFTER=prompt`` — the ``PBXSIM_AUDIO`` WAV is not streamed from the moment the
  externalMedia channel is bridged but from the moment the first prompt finished (silence
  before); with DTMF too, the speech comes first, then the key groups, one per prompt;
* ``PBXSIM_REPLY_AFTER=keys`` — the other order: the key groups first (one per finished prompt),
  then the speech after the next prompt (a feedback call: a score key, then a spoken comment).

"The prompt finished": a playback on the Stasis channel ended (done or stopped) and none started
within ``QUIET_S`` (the bot plays its sentences back to back). Deterministic: no randomness, times
are scenario seconds; other channels and calls without these variables are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pbxsim.model import Channel
from pbxsim.rtp import RtpEndpoint

QUIET_S = 0.6
KEY_GAP_S = 0.25
KEY_MS = 280
KEYS = frozenset("0123456789*#ABCD")


@dataclass(eq=False)
class PatientReply:
    """The patient's remaining turns: ``"audio"`` or a key group."""

    turns: list[str]
    audio_after_prompt: bool
    audio: bytes = b""
    media: RtpEndpoint | None = None
    generation: int = 0
    """Playbacks started on the channel so far (a newer one cancels a pending turn)."""
    pressed: list[str] = field(default_factory=list)


def reply_of(ch: Channel) -> PatientReply | None:
    """The reply the channel's variables ask for, or None."""
    keys = ch.variables.get("PBXSIM_DTMF", "")
    mode = ch.variables.get("PBXSIM_REPLY_AFTER", "")
    after = mode in ("prompt", "keys")
    groups = [g for g in ("".join(k for k in g if k in KEYS) for g in keys.split("|")) if g]
    speech = ["audio"] if after and ch.variables.get("PBXSIM_AUDIO") else []
    turns = groups + speech if mode == "keys" else speech + groups
    return PatientReply(turns, after) if turns or after else None
