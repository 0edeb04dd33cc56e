"""What an AMI ``Originate`` asks for (``OriginateRequest``) and the scenario's outcome mix for
trunk calls (``OriginatePolicy``): plain data, below every module that places or answers the
call (``originate``, ``outbound``, ``patients``, ``vhold_plan``)."""

from __future__ import annotations

from dataclasses import dataclass, field

OUTCOMES = {
    "answer": (4, "ANSWER", 16, "ANSWERED"),
    "machine": (4, "ANSWER", 16, "ANSWERED"),
    "noanswer": (3, "NOANSWER", 19, "NO ANSWER"),
    "busy": (5, "BUSY", 17, "BUSY"),
    "congestion": (8, "CONGESTION", 34, "FAILED"),
}


@dataclass
class OriginatePolicy:
    """Outcome mix for trunk originates; ``numbers`` pins an outcome per dialled number."""

    answer: float = 0.7
    noanswer: float = 0.2
    busy: float = 0.07
    congestion: float = 0.03
    ring_s: tuple[float, float] = (3.0, 12.0)
    talk_s: tuple[float, float] = (30.0, 120.0)
    numbers: dict[str, str] = field(default_factory=dict)
    machine: float = 0.0
    """Weight of an answering machine picking up (see ``pbxsim.patients``)."""
    machine_s: tuple[float, float] = (8.0, 20.0)
    """How long the machine's greeting lasts before it hangs up."""
    audio: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Number (or ``*``) → WAV files the patient "says" on successive answered calls."""
    machine_audio: tuple[str, ...] = ()
    dtmf: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Number (or ``*``) → the keys (``PBXSIM_DTMF``) the patient presses on successive
    answered calls (see ``pbxsim.ari.patient_reply``)."""
    reply_after: str = "bridge"
    """``prompt``: patients speak their WAV after the bot's first prompt, not at bridging;
    ``keys``: after the prompt that follows their key groups."""
    press: dict[str, str] = field(default_factory=dict)
    """Number (or ``*``) → digits the patient presses in ``[callbacks-patient-first]``."""


@dataclass(frozen=True)
class OriginateRequest:
    channel: str
    action_id: str = ""
    application: str = ""
    data: str = ""
    context: str = ""
    exten: str = ""
    priority: int = 1
    timeout_s: float = 30.0
    callerid: tuple[str, str] = ("<unknown>", "<unknown>")
    variables: tuple[tuple[str, str], ...] = ()

    def target(self) -> tuple[tuple[str, str], ...]:
        if self.application:
            return (
                ("Channel", self.channel),
                ("Application", self.application),
                ("Data", self.data),
            )
        return (("Channel", self.channel), ("Context", self.context), ("Exten", self.exten))
