"""Inputs and outputs of the voice-bot dialog (``ivr.dialog``): plain frozen dataclasses.

Inputs are what the ARI session observes (the call answered, a prompt finished, the VAD heard
speech, the recogniser's result, a DTMF digit, a timer, an operator freed, the caller hung up).
Outputs are commands the session carries out in order (play, stop, listen, start a timer, create
a callback job, send an appointment request, return the call to the queue, hang up).

Prompt ids are language-neutral (``greeting``, ``main_menu`` …); the session plays
``{lang}/{prompt_id}`` (see ``ivr.prompts`` for the texts in Russian and English).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Lang = Literal["ru", "en"]
Outcome = Literal["callback", "appointment", "queue", "goodbye", "hangup"]
RequestKind = Literal["book", "reschedule", "cancel"]


# ---- inputs -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Answered:
    """The bot answered the call. ``speech`` is False when recognition is unavailable
    (missing model, failing backend): the dialog then offers a keypad-only menu."""

    speech: bool = True


@dataclass(frozen=True, slots=True)
class PromptFinished:
    """The last prompt sequence played to its end (not when it was stopped)."""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The VAD heard the caller start speaking (barge-in while a prompt plays)."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """A final recognition: the caller's ``text``, the ``intent`` found in it, its ``score``
    (0..1) and, for the ``digits`` intent, the ``digits``."""

    text: str
    intent: str
    score: float = 1.0
    digits: str = ""


@dataclass(frozen=True, slots=True)
class Dtmf:
    """One keypad digit (``0-9``, ``*``, ``#``)."""

    digit: str


@dataclass(frozen=True, slots=True)
class SilenceTimeout:
    """The silence timer the dialog asked for ran out with no speech and no key."""


@dataclass(frozen=True, slots=True)
class OperatorFreed:
    """An operator of the call's queue became free."""


@dataclass(frozen=True, slots=True)
class RecognitionLost:
    """The recogniser failed mid-call: continue keypad-only."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """The caller hung up."""


@dataclass(frozen=True, slots=True)
class Comment:
    """A recorded free-form comment (after ``ListenComment``): its transcript ``text`` (``""``
    when nothing was recognised or nothing transcribes), the WAV ``recording`` (``""``: not
    kept), ``duration_s`` and ``status`` (``transcribed``, ``nothing recognised``,
    ``not transcribed: no model``)."""

    text: str
    recording: str
    duration_s: float
    status: str


DialogInput = (
    Answered | PromptFinished | SpeechStarted | Utterance | Dtmf | SilenceTimeout | OperatorFreed
    | RecognitionLost | Hangup | Comment
)


# ---- outputs ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlayPrompts:
    """Play these prompt ids in order, in ``lang``; ``PromptFinished`` follows when they end."""

    prompts: tuple[str, ...]
    lang: Lang


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Stop the prompt now (barge-in or a key press)."""


@dataclass(frozen=True, slots=True)
class StartRecognition:
    """Listen with the grammar of dialog state ``grammar`` (``recognition.intents.grammar_for``)."""

    grammar: str
    lang: Lang


@dataclass(frozen=True, slots=True)
class StopRecognition:
    """Stop listening (the dialog is finishing)."""


@dataclass(frozen=True, slots=True)
class ListenComment:
    """Record and transcribe the caller's next utterance as free speech (a feedback comment);
    ``name`` (our own id) names the WAV file. Its end comes back as a ``Comment``."""

    name: str


@dataclass(frozen=True, slots=True)
class EndComment:
    """The caller pressed ``#``: end the comment being spoken now (a ``Comment`` follows)."""


@dataclass(frozen=True, slots=True)
class StartSilenceTimer:
    """(Re)start the no-input timer; ``SilenceTimeout`` after ``seconds`` unless speech or a
    key comes first (the session cancels it on either)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class CreateCallbackJob:
    """A callback job: the caller's ``intent`` (or ``unknown``), their recognised ``words`` in
    order, and why (``asked``, ``no_input``, ``not_understood``, ``hangup``)."""

    intent: str
    words: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class SendAppointmentRequest:
    """An appointment request for the CRM (``kind``: book | reschedule | cancel) with the
    caller's words."""

    kind: RequestKind
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReturnToQueue:
    """Put the call back into its queue with the priority raised by ``priority_boost``."""

    priority_boost: int


@dataclass(frozen=True, slots=True)
class HangUp:
    """Hang up the call (after the goodbye prompt has played)."""


Command = (
    PlayPrompts | StopPlayback | StartRecognition | StopRecognition | StartSilenceTimer
    | CreateCallbackJob | SendAppointmentRequest | ReturnToQueue | HangUp | ListenComment
    | EndComment
)


@dataclass(frozen=True, slots=True)
class DialogSettings:
    """Dialog tuning: ``silence_s`` (no-input timeout after a prompt ends), ``max_reprompts``
    (reprompts on silence or non-understanding before a callback job: 2),
    ``min_score`` (an intent match below it counts as not understood), ``priority_boost``."""

    lang: Lang = "ru"
    silence_s: float = 5.0
    max_reprompts: int = 2
    min_score: float = 0.72
    priority_boost: int = 10
    dtmf: dict[str, str] = field(default_factory=lambda: dict(DTMF_MENU))


DTMF_MENU: dict[str, str] = {"1": "book", "2": "change", "3": "callback", "0": "operator",
                             "*": "repeat"}
"""The keypad menu, accepted in every state: 1 book, 2 reschedule or cancel (then 1 reschedule,
2 cancel), 3 callback, 0 operator, * repeat. In a yes/no question 1 is yes and 2 is no."""
