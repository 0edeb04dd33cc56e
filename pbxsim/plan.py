"""What an operator does during a connected call, as data (scenario ``[[calls]]`` keys,
the traffic model's draws); ``pbxsim.midcall`` and ``pbxsim.transfer`` carry it out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MidCall:
    """What the operator does during a connected queue call (scenario seconds after the
    answer). Scripted per call or drawn by the traffic model; AMI actions do the same."""

    hold_after_s: float | None = None
    """Put the caller on hold this long after the answer (None: never)."""
    hold_s: float = 0.0
    transfer: str = ""
    """``blind`` | ``attended`` | "" (none)."""
    transfer_to: str = ""
    """Extension in ``transfer_context`` (``102`` rings ``PJSIP/op102``)."""
    transfer_context: str = "operators"
    transfer_after_s: float = 0.0
    transferer_hangup_s: float = 3.0
    """Attended: the transferer hangs up this long after the target answered."""
