"""The simulated PBX core: channels, dialplan steps and the AMI events they produce.

The engine owns every channel and bridge, renders each state change as the AMI events a
real Asterisk 22 sends (through ``pbxsim.ami_events``) and hands the bytes to ``sink``
(normally ``AmiServer.broadcast``). Call flows (``dialplan``, ``queue_call``,
``originate``) drive it step by step; the Stasis hook lets an ARI front end take over a
channel (see ``pbxsim.stasis`` and README "Stasis hook").
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from pbxsim import ami_events as ev
from pbxsim.agents import Agent
from pbxsim.clock import Clock
from pbxsim.model import Bridge, Channel, Ids
from pbxsim.plan import MidCall
from pbxsim.queues import Queue
from pbxsim.stasis import StasisRegistry

log = logging.getLogger("pbxsim.engine")

RTP_QOS_VARS = (
    "RTPAUDIOQOS",
    "RTPAUDIOQOSJITTER",
    "RTPAUDIOQOSLOSS",
    "RTPAUDIOQOSRTT",
    "RTPAUDIOQOSMES",
)
_Z = "000.000000"
_QOS_VALUES = (
    "ssrc={s};themssrc={t};lp=0;rxjitter=0.000000;rxcount={n};txjitter=0.000375;txcount={n};"
    "rlp=0;rtt=0.000000;rxmes=0.000000;txmes=88.087887",
    f"minrxjitter={_Z};maxrxjitter=000.000750;avgrxjitter=000.000305;stdevrxjitter=000.000154;"
    f"mintxjitter={_Z};maxtxjitter={_Z};avgtxjitter={_Z};stdevtxjitter={_Z};",
    f"  minrxlost={_Z};  maxrxlost={_Z};  avgrxlost={_Z};  stdevrxlost={_Z};"
    f"  mintxlost={_Z};  maxtxlost={_Z};  avgtxlost={_Z};  stdevtxlost={_Z};",
    f"     minrtt={_Z};     maxrtt={_Z};     avgrtt={_Z};     stdevrtt={_Z};",
    f"   minrxmes=088.087887;   maxrxmes=088.087887;   avgrxmes=088.087887;   stdevrxmes={_Z};"
    f"   mintxmes={_Z};   maxtxmes={_Z};   avgtxmes={_Z};   stdevtxmes={_Z};",
)


class CallLog(Protocol):
    """Sink of ledger records (``pbxsim.ledger.Ledger`` writes JSON lines)."""

    def write(self, record: dict[str, Any]) -> None: ...


class DurableRecords(Protocol):
    """Sink of Asterisk's durable records (``pbxsim.durable.DurableWriter``): must not block."""

    def cdr(self, fields: dict[str, Any], *, start: float, answer: float, end: float,
            linkedid: str) -> None: ...  # fmt: skip

    def event(self, data: bytes, at: float) -> None: ...

    def queue_timeout(self, uniqueid: str) -> None: ...

    def queue_key(self, uniqueid: str, digits: str) -> None: ...


@dataclass(frozen=True)
class EngineConfig:
    """Where the simulated Asterisk reaches out, and its static identity."""

    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_timeout_s: float = 5.0
    """Wall-clock deadline for the whole FastAGI exchange of one call."""
    stasis_app: str = "callserver"
    uptime_s: int = 163
    queue_options: str = "r"
    """Options of the dialplan's ``Queue()`` (the lab's 2026-12-01 dialplan uses ``rt``)."""
    bridge_peer_rounds: int = 3
    """BRIDGEPEER/BRIDGEPVTCALLID rounds when two SIP legs are bridged: each re-INVITE the
    phones exchange re-announces the peers (the 2026-11-23 lab SIPp operators: 3; the
    2026-12-01 ones, which answer the connected-line re-INVITE differently: 1)."""


@dataclass(eq=False)
class Call:
    """Control block of one running call flow: hangup/redirect requests from AMI."""

    channel: Channel
    hangup_cause: int = 0
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)
    redirect: tuple[str, str, int] | None = None
    talk_s: float | None = None
    """Conversation length once connected (None: the agent's profile draws it)."""
    agent_ends: bool | None = None
    """Who ends the conversation (None: the agent's profile draws it)."""
    last_dest: str = ""
    """Name of the last channel dialled for this call (Cdr DestinationChannel)."""
    peer_hangup: bool = False
    """AMI Hangup hit the connected operator's leg, not the caller."""
    plan: MidCall = field(default_factory=MidCall)
    transfer_request: tuple[str, str, str] | None = None
    """(kind, exten, context) from AMI BlindTransfer/Atxfer on the operator's leg."""
    held_s: float = 0.0
    """Seconds the caller spent on hold (counted as talk by app_queue)."""
    held_since: float | None = None
    connected_at: float = 0.0
    """Scenario time the caller was connected to the (first) operator."""
    talks: list[tuple[str, float]] = field(default_factory=list)
    """(agent interface, seconds) of every conversation, in order."""
    transfers: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, from extension, to extension) of every transfer."""
    queue: str = ""
    """The queue the caller joined (last one)."""
    started_at: float = 0.0
    """``clock.wall()`` when the call arrived."""
    outcome: str = ""
    """Trunk originates: ``answer`` | ``machine`` | ``noanswer`` | ``busy`` | … (ledger)."""
    wait_s: int | None = None
    """AgentConnect's or QueueCallerAbandon's HoldTime (seconds)."""
    answered_at: float | None = None
    """``clock.wall()`` of the first AgentConnect."""
    abandoned_at: float | None = None
    """``clock.wall()`` of QueueCallerAbandon (also a queue timeout)."""
    queue_dtmf: tuple[tuple[float, str], ...] = ()
    """Digits the caller presses while waiting in a queue (seconds after joining, digit)."""
    on_connect: Callable[[], None] | None = None
    """Called once a queue member answered and is bridged with this caller (a Local
    ``;2`` caller's ``;1`` half is answered then: ``pbxsim.vhold_plan``)."""


class Engine:
    """Channels, devices and emitted events of one simulated Asterisk.

    ``sink`` receives each event's wire bytes; it must not block (the AMI server buffers).
    """

    def __init__(
        self,
        sink: Callable[[bytes], None],
        clock: Clock,
        config: EngineConfig | None = None,
        seed: int = 1,
        ledger: CallLog | None = None,
        records: DurableRecords | None = None,
    ) -> None:
        self.sink = sink
        self.ledger = ledger
        self.records = records
        """``cdr``/``queue_log`` rows like ``cdr_pgsql`` and realtime queue_log (``--cdr-dsn``)."""
        """Where each generated call's ground-truth record goes when it ends (``--ledger``)."""
        self.clock = clock
        self.config = config or EngineConfig()
        self.rng = random.Random(seed)
        self.media_rng = random.Random(f"{seed}:media")
        """RTP ports, SSRCs and UnicastRTP names: cosmetic draws kept off ``rng`` so the
        number of voice-bot calls never shifts the call model's draws (originate outcomes)."""
        self.ids = Ids()
        self.channels: dict[str, Channel] = {}
        self.calls: dict[str, Call] = {}
        self.leg_of: dict[str, Call] = {}
        self.local_pairs: dict[str, Channel] = {}
        """;1 → ;2 of Local-channel queue members while they are up."""
        """Connected operator legs → the caller's call (AMI Hangup of a leg)."""
        self.stasis = StasisRegistry()
        self.events_emitted = 0
        self._device_use: dict[str, int] = {}
        self.global_vars: dict[str, str] = {}
        self.dialled: dict[str, int] = {}
        """Originates per trunk number (which of its audio files the next answer says)."""
        self.queues: dict[str, Queue] = {}
        self.agents: dict[str, Agent] = {}
        self.calls_started = 0
        self.calls_finished = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.idle = asyncio.Event()
        """Set whenever no call flow runs."""
        self.idle.set()

    # -- ownership of background work ----------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None], name: str = "") -> asyncio.Task[None]:
        """Run ``coro`` as a task owned by the engine (errors logged, cancelled on aclose)."""
        task = asyncio.get_running_loop().create_task(coro, name=name or None)
        self._tasks.add(task)
        self.idle.clear()
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self.idle.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("call flow %s failed", task.get_name(), exc_info=task.exception())

    def later(self, seconds: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` after ``seconds`` of scenario time (timer owned by the engine)."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            fn()

        handle = loop.call_later(max(0.0, seconds) / self.clock.speed, fire)
        self._timers.add(handle)

    @property
    def active_tasks(self) -> int:
        return len(self._tasks)

    async def aclose(self) -> None:
        """Cancel every running call flow and timer; wait for the flows to finish."""
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- emission -----------------------------------------------------------------
    def emit(self, data: bytes) -> None:
        self.events_emitted += 1
        self.sink(data)
        if self.records is not None:
            self.records.event(data, self.clock.wall())

    # -- channels -----------------------------------------------------------------
    def new_channel(
        self,
        name: str,
        *,
        context: str,
        exten: str,
        state: int = 0,
        cid: tuple[str, str] = ("<unknown>", "<unknown>"),
        linkedid: str | None = None,
        announce: bool = True,
    ) -> Channel:
        """Create a channel (``name`` without suffix gets ``-0000000N``) and emit Newchannel."""
        if not name.startswith(("Local/", "UnicastRTP/")) or name.endswith("-"):
            name = f"{name}-{self.ids.channel_suffix()}"
        uid = self.ids.uniqueid()
        ch = Channel(
            name=name,
            uniqueid=uid,
            linkedid=linkedid or uid,
            context=context,
            exten=exten,
            cid_num=cid[0],
            cid_name=cid[1],
            state=state,
        )
        self.channels[name] = ch
        if announce:
            self.emit(ev.newchannel(ch))
        return ch

    def setvar(self, ch: Channel, name: str, value: str) -> None:
        """Set a channel variable and emit VarSet; ``__NAME`` is inherited by dialled legs."""
        key = name.lstrip("_")
        ch.variables[key] = value
        if name.startswith("__") and key not in ch.inheritable:
            ch.inheritable.insert(0, key)  # Asterisk's varshead: set → head
        self.emit(ev.varset(ch, name, value))

    def inherit(self, parent: Channel, child: Channel) -> None:
        """Copy ``__VAR`` variables like ``ast_channel_inherit_variables`` (emits VarSet):
        in the parent's list order, which is newest-set first, inherited ones after."""
        for key in list(parent.inheritable):
            self.setvar(child, "__" + key, parent.variables[key])
            child.inheritable.remove(key)  # inherited variables are appended at the tail
            child.inheritable.append(key)

    def exten(self, ch: Channel, priority: int, app: str, data: str = "") -> None:
        """Run dialplan priority ``priority`` of ``ch``: emit Newexten."""
        ch.set_priority(priority)
        ch.app, ch.app_data = app, data
        self.emit(ev.newexten(ch, app, data))

    def set_state(self, ch: Channel, state: int) -> None:
        ch.set_state(state)
        self.emit(ev.newstate(ch))

    def answer(self, ch: Channel) -> None:
        """Answer: Newstate Up and the device's DeviceStateChange."""
        self.set_state(ch, 6)
        self.device_up(ch.device)

    def device_up(self, device: str) -> None:
        n = self._device_use.get(device, 0)
        self._device_use[device] = n + 1
        if n == 0 or device.startswith("Local/"):
            self.emit(ev.device_state(device, "INUSE"))

    def device_down(self, device: str) -> None:
        n = self._device_use.get(device, 0)
        if n <= 1:
            self._device_use.pop(device, None)
        else:
            self._device_use[device] = n - 1
        if n == 1 or (n > 1 and device.startswith("Local/")):
            self.emit(ev.device_state(device, "NOT_INUSE"))

    def device_busy(self, device: str) -> bool:
        return self._device_use.get(device, 0) > 0

    def rtp_qos(self, ch: Channel, peer: Channel | None) -> None:
        """The RTPAUDIOQOS* VarSets a SIP leg gets on hangup (``*BRIDGED`` on its peer)."""
        n = max(1, int((self.clock.wall() - (ch.answered or ch.created)) * 50))
        for var, tmpl in zip(RTP_QOS_VARS, _QOS_VALUES, strict=True):
            value = tmpl.format(s=hash(ch.uniqueid) & 0xFFFFFFFF, t=0, n=n)
            self.setvar(ch, var, value)
            if peer is not None:
                self.setvar(peer, var + "BRIDGED", value)

    def hangup(self, ch: Channel, cause: int, release_device: bool = True) -> None:
        """Emit Hangup and (unless told otherwise) release the device; forget the channel."""
        if ch.hungup:
            return
        ch.hungup = True
        ch.cause, ch.ended = cause, self.clock.wall()
        self.emit(ev.hangup(ch, cause))
        self.channels.pop(ch.name, None)
        self.calls.pop(ch.name, None)
        self.leg_of.pop(ch.name, None)
        if ch.state == 6 and release_device:
            self.device_down(ch.device)

    def cdr(self, ch: Channel, dest_channel: str, disposition: str) -> None:
        """Emit the Cdr event of ``ch``; with ``records`` also its ``cdr`` row."""
        end = self.clock.wall()
        fields = ev.cdr_fields(ch, dest_channel, disposition, end)
        self.emit(ev.cdr(ch, dest_channel, disposition, end))
        if self.records is not None:
            self.records.cdr(dict(fields), start=ch.created, answer=ch.answered, end=end,
                             linkedid=ch.linkedid)  # fmt: skip

    def queue_key(self, ch: Channel, digits: str) -> None:
        """The caller leaves ``Queue()`` with a key of the queue's context (EXITWITHKEY)."""
        if self.records is not None:
            self.records.queue_key(ch.uniqueid, digits)

    def queue_timeout(self, ch: Channel) -> None:
        """The caller leaves ``Queue()`` by its timeout (queue_log EXITWITHTIMEOUT)."""
        if self.records is not None:
            self.records.queue_timeout(ch.uniqueid)

    # -- bridges ------------------------------------------------------------------
    def bridge_create(
        self,
        type: str = "basic",
        creator: str = "<unknown>",
        name: str = "<unknown>",
        video_mode: str = "none",
    ) -> Bridge:
        """Create a bridge (basic for queue calls, ``stasis`` for ARI) and emit BridgeCreate."""
        br = Bridge(type=type, creator=creator, name=name, video_mode=video_mode)
        self.emit(ev.bridge_create(br))
        return br

    def bridge_enter(self, br: Bridge, ch: Channel) -> None:
        br.channels.append(ch)
        ch.bridge_id = br.uniqueid
        self.emit(ev.bridge_enter(br, ch))

    def bridge_leave(self, br: Bridge, ch: Channel) -> None:
        if ch in br.channels:
            br.channels.remove(ch)
        ch.bridge_id = ""
        self.emit(ev.bridge_leave(br, ch))

    # -- calls (AMI control) ------------------------------------------------------
    def register_call(self, ch: Channel) -> Call:
        call = Call(ch)
        self.calls[ch.name] = call
        return call

    def request_hangup(self, name: str, cause: int = 16) -> bool:
        """AMI Hangup: interrupt the call flow owning ``name``; False if unknown."""
        call = self.calls.get(name)
        if call is None:
            call = self.leg_of.get(name)
            if call is None:
                return False
            call.peer_hangup = True
        else:
            call.hangup_cause = cause
        call.interrupted.set()
        self._wake_queues()
        return True

    def request_transfer(self, name: str, kind: str, exten: str, context: str) -> bool:
        """AMI BlindTransfer/Atxfer of a connected operator leg: interrupt the conversation
        so the call flow performs the transfer; False if ``name`` is no connected leg."""
        call = self.leg_of.get(name)
        if call is None or call.transfer_request is not None:
            return False
        call.transfer_request = (kind, exten, context)
        call.interrupted.set()
        return True

    def request_redirect(self, name: str, target: tuple[str, str, int]) -> bool:
        """AMI Redirect: the call flow leaves its application and continues at ``target``."""
        call = self.calls.get(name)
        if call is None:
            return False
        call.redirect = target
        call.interrupted.set()
        self._wake_queues()
        return True

    def _wake_queues(self) -> None:
        for q in self.queues.values():
            q.notify()

    def find(self, name_or_uid: str) -> Channel | None:
        ch = self.channels.get(name_or_uid)
        if ch is not None:
            return ch
        return next((c for c in self.channels.values() if c.uniqueid == name_or_uid), None)
