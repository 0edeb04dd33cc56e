"""Patients answering outbound calls (AMI ``Originate`` of ``PJSIP/<number>@trunk``).

The scenario's ``[originate]`` mix decides per call: the patient answers after a ring time
(``answer``), never answers (``noanswer``), is ``busy``, the network is congested, or an
**answering machine** picks up (``machine``: answered like a patient on the signalling
level, it "speaks" its greeting for ``machine_s`` and hangs up). ``numbers`` pins an outcome
per number.

When the originate's application is ``Stasis(<app>,…)`` (a voice-bot campaign), the answered
channel enters the Stasis hook; an ARI client bridging it with an externalMedia channel then
receives the patient's "speech": the WAV named by the channel variable ``PBXSIM_AUDIO``. It
is set from the Originate's own ``Variable: PBXSIM_AUDIO=/path.wav`` (the per-call control
hook) or else from ``[originate] audio`` (number → list of WAV paths, the n-th call to that
number gets the n-th file, cycling; ``"*"`` for any number) or ``machine_audio`` for a
machine. ``PBXSIM_DTMF`` / ``[originate] dtmf`` (keys) and ``PBXSIM_REPLY_AFTER=prompt|keys``
/ ``[originate] reply_after`` make the patient answer the bot's prompts: keys and speech after
the prompt finished (``keys``: the keys first; ``pbxsim.ari.patient_reply``). Times are
scenario seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pbxsim.engine import Call, Engine
from pbxsim.stasis_run import run_stasis

if TYPE_CHECKING:
    from pbxsim.originate_spec import OriginatePolicy


REPLY_VARIABLES = ("PBXSIM_AUDIO", "PBXSIM_DTMF", "PBXSIM_REPLY_AFTER")


def pick_reply(eng: Engine, policy: OriginatePolicy, number: str, machine: bool) -> dict[str, str]:
    """The channel variables of what this answered call "says" and presses (the n-th call to
    ``number`` takes the n-th entry of its lists, cycling); counts calls per number."""
    n = eng.dialled.get(number, 0)
    eng.dialled[number] = n + 1
    audio, dtmf = policy.audio, policy.dtmf
    files = policy.machine_audio if machine else audio.get(number) or audio.get("*", ())
    keys = () if machine else dtmf.get(number) or dtmf.get("*", ())
    out = {"PBXSIM_AUDIO": files[n % len(files)] if files else "",
           "PBXSIM_DTMF": keys[n % len(keys)] if keys else "",
           "PBXSIM_REPLY_AFTER": policy.reply_after
           if policy.reply_after in ("prompt", "keys") and not machine else ""}  # fmt: skip
    return {k: v for k, v in out.items() if v}


async def stasis_patient(eng: Engine, call: Call, data: str, talk_s: float) -> bool:
    """Run ``Stasis(data)`` on the answered channel if ``data`` names pbxsim's Stasis app;
    the patient (or machine) hangs up after ``talk_s``. False: not a Stasis originate."""
    app, *args = data.split(",")
    if app != eng.config.stasis_app:
        return False
    eng.exten(call.channel, 1, "Stasis", data)
    await run_stasis(eng, call, args, (), talk_s)
    return True


def outbound_record(call: Call, number: str, outcome: str, started: float) -> dict[str, Any]:
    """The ledger line of one trunk originate (see README "Ledger")."""
    ch = call.channel
    answered = outcome in ("answer", "machine")
    talk = ch.ended - (call.answered_at or ch.ended) if answered else 0.0
    return {
        "direction": "outbound",
        "uniqueid": ch.uniqueid,
        "linkedid": ch.linkedid,
        "number": number,
        "outcome": outcome,
        "start": round(started, 3),
        "answer": round(call.answered_at, 3) if call.answered_at is not None else None,
        "end": round(ch.ended, 3),
        "talk_s": round(talk, 3),
        "hangup_cause": ch.cause,
        "audio": ch.variables.get("PBXSIM_AUDIO", ""),
    }
