"""An outbound campaign call as the bot's dialog: ``CampaignDialog.handle(input) -> [commands]``.

The campaign's own dialog (``campaigns.dialog``, reached through the ``campaign_calls`` port as
a session of plain dicts) decides what is said and what an answer means; this adapter gives it
the inbound dialog's face (``ivr.models`` inputs and commands), so ``ivr.session.BotSession``
carries it out with the same media path, playback queue, barge-in and silence timer.

* Prompts are the texts the campaign says (``step["say"]``); the session's sound resolver
  turns each into a sound file (``ivr.spoken``).
* Listening: the grammar follows ``step["expects"]`` (``recognition.phrases``
  ``campaign_choice`` / ``campaign_offer`` / ``campaign_score``); a recognised intent is fed to
  the campaign as a canonical word it understands («да», «не звоните», "three" …), anything
  else as the recognised text.
* A comment (feedback, ``expects == "comment"``): ``ListenComment`` records the next utterance
  and transcribes it free-form (``ivr.media``); it ends at the VAD's pause, ``#`` (while
  speaking: ``EndComment``, the transcript follows) or the comment's maximum length, and goes
  to the campaign as ``text`` with the recording's path, length and status as details. ``#``
  or silence before any speech: no comment.
* Keys go to the campaign as they are; silence after a prompt is ``silence`` (the campaign
  reprompts, then gives up); the patient hanging up is ``hangup``.
* The final step's goodbye plays, then the bot hangs up (``HangUp``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ivr.models import (
    Answered,
    Command,
    Comment,
    DialogInput,
    Dtmf,
    EndComment,
    HangUp,
    Hangup,
    Lang,
    ListenComment,
    PlayPrompts,
    PromptFinished,
    RecognitionLost,
    SilenceTimeout,
    SpeechStarted,
    StartRecognition,
    StartSilenceTimer,
    StopPlayback,
    StopRecognition,
    Utterance,
)

GRAMMARS = {"yes_no_reschedule": "campaign_choice", "yes_no": "campaign_offer",
            "score": "campaign_score"}  # fmt: skip
"""``campaigns.dialog.Dialog.expects`` → ``recognition.phrases.STATE_INTENTS`` key."""
CANONICAL: dict[str, tuple[str, str]] = {
    "yes": ("да", "yes"), "no": ("нет", "no"), "reschedule": ("перенести", "reschedule"),
    "operator": ("оператор", "operator"), "opt_out": ("не звоните", "do not call"),
}  # fmt: skip
"""A recognised intent as words the campaign's dialog understands (ru, en)."""
MAX_SAY = 2000


class CampaignSessionPort(Protocol):
    """``campaigns.dialer.CampaignSession`` as the bot uses it."""

    lang: str

    def start(self) -> dict[str, object]: ...
    def feed(self, kind: str, value: str = "",
             details: Mapping[str, str] | None = None) -> dict[str, object]: ...  # fmt: skip
    def release(self) -> None: ...


class CampaignCallsPort(Protocol):
    """The ``campaign_calls`` port (``campaigns.dialer.IvrSessions``)."""

    async def take(self, dial_id: int, *, within: float,
                   hangs_up: bool = False) -> CampaignSessionPort | None: ...  # fmt: skip


def _says(step: Mapping[str, object]) -> tuple[str, ...]:
    say = step.get("say")
    items = say if isinstance(say, list) else []
    return tuple(str(s)[:MAX_SAY] for s in items if str(s).strip())


class CampaignDialog:
    """The adapter (see the module doc). ``outcome`` is the campaign's outcome once done."""

    def __init__(self, session: CampaignSessionPort, *, lang: Lang, silence_s: float,
                 min_score: float = 0.72, comment_name: str = "comment") -> None:  # fmt: skip
        self.session, self.lang = session, lang
        self.comment_name = comment_name
        """Names the comment's recording (our own id: ``dial-<dial id>``)."""
        self.commenting = False
        """The caller started speaking their comment (``#`` then ends it, not skips it)."""
        self.silence_s, self.min_score = silence_s, min_score
        self.state = "idle"
        """idle → listening (or ``comment``) → goodbye → done."""
        self.playing = False
        self.speech = True
        self.expects = ""
        self.outcome: str | None = None

    @property
    def grammar(self) -> str:
        return GRAMMARS.get(self.expects, "campaign_choice")

    def handle(self, event: DialogInput) -> list[Command]:
        if isinstance(event, Answered):
            if self.state != "idle":
                return []
            self.speech = event.speech
            return self._step(self.session.start())
        if isinstance(event, PromptFinished):
            return self._prompt_finished()
        if isinstance(event, SpeechStarted):
            self.commenting = self.commenting or (self.state == "comment" and self.speech)
            return self._stop() if self._listening() else []
        if isinstance(event, Utterance):
            return self._utterance(event)
        if isinstance(event, Comment):
            return self._comment(event)
        if isinstance(event, Dtmf):
            if self.commenting and self.state == "comment":
                return [*self._stop(), EndComment()]  # the comment so far, transcribed
            return self._feed("dtmf", event.digit[:1]) if self._listening() else []
        if isinstance(event, SilenceTimeout):
            if self.playing or not self._listening() or self.commenting:
                return []
            return self._feed("silence")
        if isinstance(event, RecognitionLost):
            was, self.speech, self.commenting = self.speech, False, False
            return [StopRecognition()] if was else []
        if isinstance(event, Hangup):
            return self._hangup()
        return []  # OperatorFreed: a campaign call has no queue to go back to

    def _listening(self) -> bool:
        return self.state in ("listening", "comment")

    def _stop(self) -> list[Command]:
        if not self.playing:
            return []
        self.playing = False
        return [StopPlayback()]

    def _prompt_finished(self) -> list[Command]:
        self.playing = False
        if self.state == "goodbye":
            self.state = "done"
            self.session.release()
            return [HangUp()]
        return [StartSilenceTimer(self.silence_s)] if self._listening() else []

    def _utterance(self, ev: Utterance) -> list[Command]:
        if self.state != "listening":
            return []
        if ev.score >= self.min_score and ev.intent in CANONICAL:
            ru, en = CANONICAL[ev.intent]
            return self._feed("text", en if self.lang == "en" else ru)
        text = ev.text.strip()  # a score word, or words the campaign may still understand
        return self._feed("text", text) if text else [StartSilenceTimer(self.silence_s)]

    def _comment(self, ev: Comment) -> list[Command]:
        if self.state != "comment":
            return []
        details = {"recording": ev.recording, "duration_s": f"{ev.duration_s:.2f}",
                   "status": ev.status}  # fmt: skip
        return self._feed("text", ev.text, details)

    def _feed(self, kind: str, value: str = "",
              details: Mapping[str, str] | None = None) -> list[Command]:  # fmt: skip
        return self._stop() + self._step(self.session.feed(kind, value, details))

    def _step(self, step: Mapping[str, object]) -> list[Command]:
        say = _says(step)
        if step.get("done"):
            self.outcome = str(step.get("outcome") or "") or "done"
            self.state = "goodbye" if say else "done"
            cmds: list[Command] = [StopRecognition()] if self.speech else []
            if not say:
                self.session.release()
                return [*cmds, HangUp()]
            self.playing = True
            return [*cmds, PlayPrompts(say, self.lang)]
        self.expects = str(step.get("expects") or "")
        self.state = "comment" if self.expects == "comment" else "listening"
        cmds = [PlayPrompts(say, self.lang)] if say else [StartSilenceTimer(self.silence_s)]
        self.playing = bool(say)
        if self.speech:
            listen = self.state == "listening"
            cmds.insert(0, StartRecognition(self.grammar, self.lang) if listen
                        else ListenComment(self.comment_name))  # fmt: skip
        return cmds

    def _hangup(self) -> list[Command]:
        if self.state in ("idle", "goodbye", "done"):
            self.state = "done"
            self.session.release()
            return []
        self.session.feed("hangup")
        self.state, self.outcome = "done", "hung_up"
        self.session.release()
        return []
