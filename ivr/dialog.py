"""The voice-bot dialog as a pure state machine: ``Dialog.handle(input) -> list[Command]``.

No audio, no I/O, no clock: the ARI session turns what it observes into inputs
(``ivr.models``) and carries out the commands in order. States:

``main_menu`` → (book | reschedule | cancel) → ``confirm`` → yes: appointment request, goodbye
``main_menu`` → keypad 2 → ``change`` (reschedule or cancel) → ``confirm``
any state → operator: ``wait_operator`` (hold prompt; the caller may still ask for a callback)
any state → callback: callback job, goodbye; ``goodbye`` → prompt ends → hang up.

Rules:
* Barge-in: speech (or a key) during a prompt stops the prompt.
* Keypad always works, with or without speech (``models.DTMF_MENU``): 1 book, 2 reschedule or
  cancel, 3 callback, 0 operator, * repeat; in a yes/no question 1 yes, 2 no; in the change menu
  1 reschedule, 2 cancel. A spoken digit ("one") counts as the key.
* Silence: reprompt ``max_reprompts`` (2) times, then a callback job (``no_input``). The same
  for utterances not understood (``not_understood``). While waiting for an operator, silence
  replays the hold prompt; after ``max_reprompts`` holds the caller gets a callback job.
* An operator freeing up wins over the bot at any point before the dialog's outcome is fixed:
  the call goes back to its queue with raised priority (a person beats a bot).
* A hang-up before an outcome is a missed call: a callback job (``hangup``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ivr.models import (
    Answered,
    Command,
    Comment,
    CreateCallbackJob,
    DialogInput,
    DialogSettings,
    Dtmf,
    HangUp,
    Hangup,
    OperatorFreed,
    Outcome,
    PlayPrompts,
    PromptFinished,
    RecognitionLost,
    RequestKind,
    ReturnToQueue,
    SendAppointmentRequest,
    SilenceTimeout,
    SpeechStarted,
    StartRecognition,
    StartSilenceTimer,
    StopPlayback,
    StopRecognition,
    Utterance,
)

LISTENING = ("main_menu", "change", "confirm", "wait_operator")
GRAMMAR = {"main_menu": "main_menu", "change": "change", "confirm": "confirm",
           "wait_operator": "main_menu"}
"""The recognition grammar (``recognition.phrases.STATE_INTENTS`` key) of each listening state."""
MAX_WORDS = 20
REQUEST_KINDS: dict[str, RequestKind] = {"book": "book", "reschedule": "reschedule",
                                         "cancel": "cancel"}


class Dialog:
    """One call's dialog. ``outcome`` is set once the call's fate is fixed."""

    def __init__(self, settings: DialogSettings | None = None) -> None:
        self.settings = settings or DialogSettings()
        self.lang = self.settings.lang
        self.state = "idle"
        self.speech = True
        self.playing = False
        self.pending: RequestKind | None = None
        self.last_intent = "unknown"
        self.words: list[str] = []
        self.silences = 0
        self.misses = 0
        self.outcome: Outcome | None = None
        self._handlers: dict[type, Callable[[Any], list[Command]]] = {
            Answered: self._answered, PromptFinished: self._prompt_finished,
            SpeechStarted: self._speech_started, Utterance: self._utterance, Dtmf: self._dtmf,
            SilenceTimeout: self._silence, OperatorFreed: self._operator_freed,
            RecognitionLost: self._recognition_lost, Hangup: self._hangup,
            Comment: lambda _ev: [],  # inbound calls never ask for a comment
        }

    @property
    def grammar(self) -> str:
        """The grammar to listen with before the first prompt (callers may speak at once)."""
        return "main_menu"

    def handle(self, event: DialogInput) -> list[Command]:
        """Apply one input; return the commands to carry out, in order. Inputs that make no
        sense in the current state (a digit after the goodbye) return ``[]``."""
        return self._handlers[type(event)](event)

    # ---- prompts and state entry --------------------------------------------------------
    def _menu_prompts(self) -> tuple[str, ...]:
        kp = "" if self.speech else "_dtmf"
        if self.state == "confirm":
            return (f"confirm_{self.pending}", f"yes_no{kp}")
        if self.state == "change":
            return (f"change_menu{kp}",)
        if self.state == "wait_operator":
            return ("operator_wait",)
        return (f"main_menu{kp}",)

    def _enter(self, state: str, lead: tuple[str, ...] = ()) -> list[Command]:
        self.state = state
        cmds: list[Command] = [PlayPrompts(lead + self._menu_prompts(), self.lang)]
        self.playing = True
        if self.speech:
            cmds.append(StartRecognition(GRAMMAR[state], self.lang))
        return cmds

    def _finish(self, outcome: Outcome, lead: tuple[Command, ...], prompts: tuple[str, ...]
                ) -> list[Command]:
        self.outcome, self.state = outcome, "goodbye"
        cmds: list[Command] = [StopRecognition()] if self.speech else []
        self.playing = True
        return [*cmds, *lead, PlayPrompts((*prompts, "goodbye"), self.lang)]

    def _callback(self, reason: str) -> list[Command]:
        intent = self.pending or self.last_intent
        job = CreateCallbackJob(intent, tuple(self.words), reason)
        return self._finish("callback", (job,), ("callback_promise",))

    # ---- inputs -------------------------------------------------------------------------
    def _answered(self, ev: Answered) -> list[Command]:
        if self.state != "idle":
            return []
        self.speech = ev.speech
        return self._enter("main_menu", ("greeting",))

    def _prompt_finished(self, _ev: PromptFinished) -> list[Command]:
        self.playing = False
        if self.state == "goodbye":
            self.state = "done"
            return [HangUp()]
        if self.state in LISTENING:
            return [StartSilenceTimer(self.settings.silence_s)]
        return []

    def _speech_started(self, _ev: SpeechStarted) -> list[Command]:
        if self.state in LISTENING and self.playing:
            self.playing = False
            return [StopPlayback()]
        return []

    def _utterance(self, ev: Utterance) -> list[Command]:
        if self.state not in LISTENING:
            return []
        text = ev.text.strip()[:200]
        if text and len(self.words) < MAX_WORDS:
            self.words.append(text)
        intent = ev.intent if ev.score >= self.settings.min_score else "unknown"
        stop: list[Command] = [StopPlayback()] if self.playing else []  # barge-in event missed
        self.playing = False
        if intent == "digits" and ev.digits:
            return stop + self._key(ev.digits[0])
        return stop + self._intent(intent)

    def _dtmf(self, ev: Dtmf) -> list[Command]:
        if self.state not in LISTENING:
            return []
        cmds: list[Command] = [StopPlayback()] if self.playing else []
        self.playing = False
        return cmds + self._key(ev.digit[:1])

    def _key(self, digit: str) -> list[Command]:
        if self.state == "confirm" and digit in ("1", "2"):
            return self._intent("yes" if digit == "1" else "no")
        if self.state == "change" and digit in ("1", "2"):
            return self._intent("reschedule" if digit == "1" else "cancel")
        return self._intent(self.settings.dtmf.get(digit, "unknown"))

    def _intent(self, intent: str) -> list[Command]:
        if intent not in ("unknown", "repeat", "yes", "no", "digits"):
            self.last_intent = intent
        if intent == "callback":
            return self._callback("asked")
        if intent == "operator":
            self.silences = self.misses = 0
            return self._enter("wait_operator")
        if intent == "repeat":
            return self._enter(self.state)
        if self.state == "confirm" and intent in ("yes", "no"):
            return self._confirmed(intent == "yes")
        kind = REQUEST_KINDS.get(intent)
        if kind is not None:
            self.pending, self.silences, self.misses = kind, 0, 0
            return self._enter("confirm")
        if intent == "change" and self.state in ("main_menu", "wait_operator"):
            self.silences = self.misses = 0
            return self._enter("change")
        return self._not_understood()

    def _confirmed(self, yes: bool) -> list[Command]:
        if yes and self.pending is not None:
            req = SendAppointmentRequest(self.pending, tuple(self.words))
            return self._finish("appointment", (req,), ("request_accepted",))
        self.pending, self.silences, self.misses = None, 0, 0
        return self._enter("main_menu", ("lets_try_again",))

    def _not_understood(self) -> list[Command]:
        self.misses += 1
        if self.misses > self.settings.max_reprompts:
            return self._callback("not_understood")
        return self._enter(self.state, ("not_understood",))

    def _silence(self, _ev: SilenceTimeout) -> list[Command]:
        if self.state not in LISTENING or self.playing:
            return []
        self.silences += 1
        if self.silences > self.settings.max_reprompts:
            return self._callback("no_operator" if self.state == "wait_operator" else "no_input")
        lead = () if self.state == "wait_operator" else ("no_input",)
        return self._enter(self.state, lead)

    def _operator_freed(self, _ev: OperatorFreed) -> list[Command]:
        if self.state not in LISTENING:
            return []
        cmds: list[Command] = [StopPlayback()] if self.playing else []
        if self.speech:
            cmds.append(StopRecognition())
        self.state, self.outcome, self.playing = "done", "queue", False
        return [*cmds, ReturnToQueue(self.settings.priority_boost)]

    def _recognition_lost(self, _ev: RecognitionLost) -> list[Command]:
        if not self.speech or self.state not in LISTENING:
            self.speech = False
            return []
        self.speech = False
        cmds: list[Command] = [StopPlayback()] if self.playing else []
        return [StopRecognition(), *cmds, *self._enter(self.state)]

    def _hangup(self, _ev: Hangup) -> list[Command]:
        if self.outcome is not None or self.state == "idle":
            self.state = "done"
            return []
        self.state, self.outcome = "done", "hangup"
        intent = self.pending or self.last_intent
        return [CreateCallbackJob(intent, tuple(self.words), "hangup")]
