"""What happened in one bot call, kept for ``/api/ivr/calls`` and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

from callserver.core.phone import mask


@dataclass
class Transcript:
    """What happened in one bot call (kept for ``/api/ivr/calls`` and the benchmark)."""

    channel_id: str
    caller: str
    lang: str
    started: float
    speech: bool = False
    outcome: str = ""
    ended: float = 0.0
    heard: list[dict[str, object]] = field(default_factory=list)
    keys: str = ""
    prompts_stopped: int = 0
    """Prompts cut short by the caller (barge-in by voice or key)."""
    reply_ms: list[float] = field(default_factory=list)
    """VAD end of utterance → the reply prompt's play request answered, per utterance."""

    def to_dict(self) -> dict[str, object]:
        return {"channel_id": self.channel_id, "caller": mask(self.caller), "lang": self.lang,
                "started": self.started, "ended": self.ended, "speech": self.speech,
                "outcome": self.outcome, "heard": self.heard, "keys": self.keys,
                "prompts_stopped": self.prompts_stopped,
                "reply_ms": [round(x, 1) for x in self.reply_ms]}  # fmt: skip
