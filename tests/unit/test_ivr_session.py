"""BotSession against a small fake of our own ARI port: silence, barge-in, keypad, hang-up, an
operator freeing up (through OperatorWatch and the bus event), and the outcome adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from callserver.core.events import AgentSnapshot, AgentStatusChanged
from ivr.media import CallMedia, Heard, MediaEvent
from ivr.models import CreateCallbackJob, DialogSettings, Dtmf, SendAppointmentRequest
from ivr.outcomes import PortOutcomes, comment
from ivr.runtime import EventRouter, OperatorWatch
from ivr.session import BotSession, CallGone, CallInfo, PlaybackDone, SessionSettings
from recognition.backends import Grammar, Result
from recognition.intents import match_intent
from recognition.phrases import STATE_INTENTS
from recognition.pipeline import Recognised
from recognition.pipeline import SpeechStarted as VadStarted


class FakeAri:
    """Records every request; playbacks finish only when the test says so."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.variables: dict[str, str] = {}

    def _rec(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [a for n, a in self.calls if n == name]

    async def answer(self, channel_id: str) -> None:
        self._rec("answer", channel_id)

    async def get_variable(self, channel_id: str, name: str) -> str:
        return self.variables.get(name, "")

    async def play(self, channel_id: str, media: str, playback_id: str | None = None, *,
                   lang: str | None = None) -> Any:  # fmt: skip
        self._rec("play", media, playback_id, lang)
        return {"id": playback_id}

    async def stop_playback(self, playback_id: str) -> None:
        self._rec("stop_playback", playback_id)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self._rec("set_variable", name, value)

    async def continue_in_dialplan(self, channel_id: str) -> None:
        self._rec("continue", channel_id)

    async def hangup(self, channel_id: str, reason: str | None = "normal") -> None:
        self._rec("hangup", channel_id)

    async def create_bridge(self, type: str = "mixing", bridge_id: str | None = None, *,
                            name: str | None = None) -> Any:  # fmt: skip
        self._rec("create_bridge", type)
        return {"id": "br-1"}

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        self._rec("add_channel", bridge_id, channel_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._rec("destroy_bridge", bridge_id)

    async def external_media(self, app: str, external_host: str, format: str, *,
                             encapsulation: str = "rtp", transport: str = "udp",
                             direction: str = "both", channel_id: str | None = None
                             ) -> Any:  # fmt: skip
        self._rec("external_media", external_host, format, channel_id)
        return {"id": channel_id}


class FakeOutcomes:
    def __init__(self) -> None:
        self.callbacks: list[CreateCallbackJob] = []
        self.appointments: list[SendAppointmentRequest] = []

    async def callback(self, call: CallInfo, job: CreateCallbackJob) -> None:
        self.callbacks.append(job)

    async def appointment(self, call: CallInfo, request: SendAppointmentRequest) -> None:
        self.appointments.append(request)


class FakeStream:
    """A recogniser stream that 'hears' ``text`` in every utterance."""

    sample_rate = 16000

    def __init__(self, text: str = "book an appointment") -> None:
        self.text, self.audio, self.started = text, 0, 0

    async def start(self, grammar: Grammar | None) -> None:
        self.started += 1

    async def accept(self, pcm: bytes) -> Result | None:
        self.audio += len(pcm)
        return None

    async def finish(self) -> Result:
        return Result(self.text, 1.0, True)

    async def aclose(self) -> None:
        return None


CALL = CallInfo("chan-1", "79161234567", "reception", 3, "en")


def keypad(_lang: str, _emit: Callable[[MediaEvent], None]) -> Any:
    async def none() -> CallMedia | None:
        return None

    return none()


def make(ari: FakeAri, outcomes: FakeOutcomes, *, speech: bool = False,
         silence_s: float = 5.0) -> BotSession:  # fmt: skip
    async def media(lang: str, emit: Callable[[MediaEvent], None]) -> CallMedia | None:
        if not speech:
            return None
        from recognition.vad import VadSettings

        return CallMedia("ulaw", FakeStream(), lang=lang, vad=VadSettings(), emit=emit)

    settings = SessionSettings(app="callserver", dialog=DialogSettings(lang="en",
                                                                       silence_s=silence_s))
    return BotSession(CALL, ari, outcomes, settings, media, lambda: list(range(46000, 46100)))


async def finish_playbacks(session: BotSession, n: int = 10) -> None:
    """Let the current prompt sequence play to its end."""
    for _ in range(n):
        await asyncio.sleep(0.01)
        if not session.playing:
            return
        session.put(PlaybackDone(session.playing))
    await asyncio.sleep(0.01)


def heard(text: str, state: str = "main_menu") -> Heard:
    intent = match_intent(text, "en", STATE_INTENTS[state])
    return Heard(Recognised(text, 1.0, intent, 0, "pause", 5.0), 0.0)


async def test_silence_reprompts_twice_then_a_callback_job() -> None:
    ari, out = FakeAri(), FakeOutcomes()
    session = make(ari, out, silence_s=0.05)
    task = asyncio.create_task(session.run())
    for _ in range(4):  # greeting, two reprompts, the goodbye
        await finish_playbacks(session)
        await asyncio.sleep(0.08)
    await asyncio.wait_for(task, 2)
    media = [a[0].rsplit("/", 1)[-1] for a in ari.named("play")]
    assert media.count("no_input") == 2
    assert media[-2:] == ["callback_promise", "goodbye"]
    assert [(j.reason, j.intent) for j in out.callbacks] == [("no_input", "unknown")]
    assert ari.named("hangup") == [("chan-1",)]
    assert session.transcript.outcome == "callback"


async def test_keypad_booking_and_a_key_stops_the_prompt() -> None:
    ari, out = FakeAri(), FakeOutcomes()
    session = make(ari, out)
    task = asyncio.create_task(session.run())
    await asyncio.sleep(0.02)
    playing = session.playing
    session.put(Dtmf("1"))  # during the greeting: barge-in by key
    await asyncio.sleep(0.02)
    assert ari.named("stop_playback") == [(playing,)]
    await finish_playbacks(session)
    session.put(Dtmf("1"))  # yes
    await asyncio.sleep(0.02)
    await finish_playbacks(session)
    await asyncio.wait_for(task, 2)
    assert [r.kind for r in out.appointments] == ["book"]
    assert session.transcript.keys == "11"
    assert all(a[2] == "en" for a in ari.named("play"))
    assert ari.named("play")[0][0] == "sound:callserver/greeting"


async def test_speech_during_a_prompt_stops_it_and_the_utterance_is_understood() -> None:
    ari, out = FakeAri(), FakeOutcomes()
    session = make(ari, out, speech=True)
    task = asyncio.create_task(session.run())
    await asyncio.sleep(0.05)
    assert ari.named("external_media")[0][2] == "chan-1-ivr"
    assert [a[1] for a in ari.named("add_channel")] == ["chan-1", "chan-1-ivr"]
    playing = session.playing
    session.put(VadStarted(100))
    await asyncio.sleep(0.02)
    assert ari.named("stop_playback") == [(playing,)]
    session.put(heard("i want to book an appointment"))
    await asyncio.sleep(0.02)
    assert session.dialog.state == "confirm"
    session.put(heard("yes", "confirm"))
    await asyncio.sleep(0.02)
    await finish_playbacks(session)
    await asyncio.wait_for(task, 2)
    assert out.appointments[0].words == ("i want to book an appointment", "yes")
    assert len(session.transcript.reply_ms) == 2  # end of utterance → reply, measured
    assert ("destroy_bridge", ("br-1",)) in ari.calls
    assert ari.named("hangup")[-1] == ("chan-1-ivr",)


async def test_caller_hanging_up_in_the_bot_is_a_callback_job() -> None:
    ari, out = FakeAri(), FakeOutcomes()
    session = make(ari, out)
    task = asyncio.create_task(session.run())
    await asyncio.sleep(0.02)
    session.put(Dtmf("2"))  # change menu: the caller said something before leaving
    await asyncio.sleep(0.02)
    session.put(CallGone())
    await asyncio.wait_for(task, 2)
    assert [(j.reason, j.intent) for j in out.callbacks] == [("hangup", "change")]
    assert ari.named("hangup") == []  # gone already: no DELETE of the caller


def agent(status: str = "not_inuse", paused: bool = False,
          queues: tuple[str, ...] = ("reception",)) -> AgentStatusChanged:  # fmt: skip
    snap = AgentSnapshot("PJSIP/op101", "Op", queues, status, paused, "", False, 0, 0.0)
    return AgentStatusChanged(at=0.0, agent=snap)


async def test_an_operator_freeing_up_returns_the_oldest_bot_call_with_raised_priority() -> None:
    ari, out = FakeAri(), FakeOutcomes()
    router = EventRouter()
    watch = OperatorWatch(router)
    session = make(ari, out)
    router.add(session)
    task = asyncio.create_task(session.run())
    await asyncio.sleep(0.02)
    watch(agent(paused=True))  # logged in but paused: not free
    watch(agent(queues=("doctors",)))  # free, another queue
    await asyncio.sleep(0.02)
    assert session.dialog.state == "main_menu"
    watch(agent("inuse"))
    watch(agent())  # turns free in our queue
    await asyncio.wait_for(task, 2)
    sets = dict(ari.named("set_variable"))
    assert sets == {"ROUTE_QUEUE": "reception", "ROUTE_PRIORITY": "13", "ROUTE_MODE": "queue",
                    "IVR_OUTCOME": "queue"}  # fmt: skip
    assert ari.named("continue") == [("chan-1",)]
    assert out.callbacks == [] and out.appointments == []
    assert watch.freed_total == 1


async def test_event_router_routes_by_channel_and_playback_and_drops_bad_digits() -> None:
    ari, out = FakeAri(), FakeOutcomes()
    router = EventRouter()
    session = make(ari, out)
    router.add(session)
    session.own_playback("pb-1")
    router({"type": "PlaybackFinished", "playback": {"id": "pb-1"}})
    router({"type": "ChannelDtmfReceived", "channel": {"id": "chan-1"}, "digit": "5"})
    router({"type": "ChannelDtmfReceived", "channel": {"id": "chan-1"}, "digit": "5; rm"})
    router({"type": "ChannelDtmfReceived", "channel": {"id": "other"}, "digit": "1"})
    router({"type": "StasisEnd", "channel": {"id": "chan-1"}})
    router({"type": "PlaybackFinished", "playback": "garbage"})
    got = [session.inbox.get_nowait() for _ in range(session.inbox.qsize())]
    assert got == [PlaybackDone("pb-1"), Dtmf("5"), CallGone(left=True)]
    router.remove(session)
    assert router.sessions == {} and router.playbacks == {}


class FakeCrm:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    async def request_callback(self, **kw: Any) -> None:
        self.seen.append(("callback", kw))

    async def request_appointment(self, **kw: Any) -> None:
        self.seen.append(("appointment", kw))


async def test_outcomes_go_to_the_crm_ports_and_anonymous_callers_get_none() -> None:
    crm = FakeCrm()
    out = PortOutcomes(crm)
    await out.callback(CALL, CreateCallbackJob("book", ("i want to book",), "no_input"))
    await out.appointment(CALL, SendAppointmentRequest("cancel", ("cancel",)))
    anon = CallInfo("chan-2", "anonymous", "reception", 0, "ru")
    await out.callback(anon, CreateCallbackJob("unknown", (), "hangup"))
    assert [k for k, _ in crm.seen] == ["callback", "appointment"]
    cb = crm.seen[0][1]
    assert cb["phone"] == "+79161234567" and cb["reason"] == "bot_no_input"
    assert cb["request_id"] == "ivr-chan-1"
    assert 'intent=book; said: "i want to book"' in cb["comment"]
    assert out.created == {"callback": 1, "appointment": 1, "skipped": 1}
    assert len(comment("x", ("w" * 100,) * 20)) == 600


@pytest.mark.parametrize("digits", ["", "1"])
async def test_session_gives_up_after_max_call_s(digits: str) -> None:
    ari, out = FakeAri(), FakeOutcomes()
    settings = SessionSettings(app="callserver", max_call_s=0.1,
                               dialog=DialogSettings(lang="en"))  # fmt: skip
    session = BotSession(CALL, ari, out, settings, keypad, lambda: [46200])
    task = asyncio.create_task(session.run())
    if digits:
        await asyncio.sleep(0.02)
        session.put(Dtmf(digits))
    await asyncio.wait_for(task, 2)
    assert ari.named("hangup") == [("chan-1",)]
    assert [j.reason for j in out.callbacks] == ["hangup"]
