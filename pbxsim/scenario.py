"""Scenario files (``pbxsim/scenarios/NAME.toml``) → typed settings.

Keys (all optional unless noted; times in scenario seconds):

``[pbx]``  ``dids`` (DID → ad source), ``stasis_dids`` (list), ``default_queue``,
``queue_options`` (of ``Queue()``: ``r``; the 2026-12-01 captures used ``rt``),
``bridge_peer_rounds`` (BRIDGEPEER noise per SIP bridge: 3, or 1 as in the 2026-12-01 captures),
``stasis_builtin`` (register the built-in lab app as ``callserver`` when no ARI does).
``[[queues]]``  ``name`` (required), ``strategy``, ``timeout``, ``retry``, ``members``
(endpoints like ``op101``; ``{endpoint, penalty}`` tables also accepted; ``"all"``),
``ringinuse``, ``paused`` (members paused from the start), ``context`` (queues.conf: a digit
pressed while waiting that is an extension there exits the queue, e.g. ``callbacks-vhold``).
``[agents]``  ``count``, ``first`` (101), ``registered`` (list; default all), ``ring_s``,
``answer_prob``, ``talk_s``, ``wrapup_s``, ``agent_hangs_up``, ``never_answer`` (list),
``break_every_s`` / ``break_s`` (operators pause themselves: QueueMemberPause ``break``),
``local`` (Local-channel members ``exten@context``, e.g. the lab's ``op-bot@lab-local``).
``[[calls]]``  scripted inbound calls: ``at``, ``did``, ``caller``, ``caller_name``,
``patience``, ``talk_s``, ``agent_ends``, ``dtmf`` (``[[t, "1"], …]``), ``stasis_hold_s``,
``queue_dtmf`` (digits pressed while waiting in the queue: ``[[seconds after joining, "1"]]``);
what the operator does once connected (``pbxsim.plan.MidCall``): ``hold_after_s``,
``hold_s``, ``transfer`` (``blind``/``attended``), ``transfer_to``, ``transfer_context``,
``transfer_after_s``, ``transferer_hangup_s``.
``[traffic]``  generated calls (see ``pbxsim.traffic.TrafficConfig``).
``[originate]``  outcome mix for trunk originates (``pbxsim.originate.OriginatePolicy``):
``answer``, ``noanswer``, ``busy``, ``congestion``, ``machine`` weights, ``ring_s``,
``talk_s``, ``machine_s``, ``numbers`` (number → outcome), ``audio`` (number or ``*`` →
list of WAV paths), ``machine_audio``, ``dtmf`` (number or ``*`` → list of key groups),
``reply_after`` (``bridge`` | ``prompt`` | ``keys``) (see ``pbxsim.patients``), ``press``
(number or ``*`` → the digits the patient presses in the callbacks patient-first IVR, "" none; see
``pbxsim.patient_first``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbxsim.agents import AgentProfile
from pbxsim.dialplan import InboundCall
from pbxsim.originate_spec import OriginatePolicy
from pbxsim.plan import MidCall
from pbxsim.traffic import TrafficConfig
from pbxsim.wire import PbxsimError

SCENARIO_DIR = Path(__file__).parent / "scenarios"


class ScenarioError(PbxsimError):
    """A scenario file is missing or has a bad key/value."""


@dataclass(frozen=True)
class QueueSpec:
    name: str
    strategy: str = "ringall"
    timeout: float = 15.0
    retry: float = 2.0
    members: tuple[tuple[str, int], ...] = ()
    ringinuse: bool = False
    paused: tuple[str, ...] = ()
    """Members paused in this queue from the start (the lab paused op102 in reception)."""
    context: str = ""
    """queues.conf ``context`` (exit by a digit, e.g. ``callbacks-vhold``)."""


@dataclass(frozen=True)
class AgentsSpec:
    count: int = 3
    first: int = 101
    registered: tuple[str, ...] | None = None
    never_answer: tuple[str, ...] = ()
    profile: AgentProfile = field(default_factory=AgentProfile)
    local: tuple[str, ...] = ()
    """Local-channel members ``exten@context`` (the lab's auto-answering ``op-bot``)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    dids: dict[str, str] = field(default_factory=dict)
    stasis_dids: tuple[str, ...] = ()
    default_queue: str = "reception"
    queue_options: str = "r"
    bridge_peer_rounds: int = 3
    stasis_builtin: bool = False
    queues: tuple[QueueSpec, ...] = ()
    agents: AgentsSpec = field(default_factory=AgentsSpec)
    calls: tuple[tuple[float, InboundCall], ...] = ()
    traffic: TrafficConfig | None = None
    originate: OriginatePolicy = field(default_factory=OriginatePolicy)


def load(name_or_path: str) -> Scenario:
    """Load ``NAME`` from ``pbxsim/scenarios/`` or a path to a ``.toml`` file.

    Raises:
        ScenarioError: file missing, not TOML, or a key has the wrong type.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(message=f"cannot read scenario {path}: {exc}", path=str(path)) from exc
    try:
        return _build(raw, path.stem)
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(message=f"bad scenario {path}: {exc!r}", path=str(path)) from exc


def _pair(v: Any) -> tuple[float, float]:
    lo, hi = v
    return float(lo), float(hi)


def _profile(a: dict[str, Any]) -> AgentProfile:
    d = AgentProfile()
    return AgentProfile(
        ring_s=_pair(a.get("ring_s", d.ring_s)),
        answer_prob=float(a.get("answer_prob", d.answer_prob)),
        talk_s=_pair(a.get("talk_s", d.talk_s)),
        wrapup_s=float(a.get("wrapup_s", d.wrapup_s)),
        agent_hangs_up=float(a.get("agent_hangs_up", d.agent_hangs_up)),
        break_every_s=float(a.get("break_every_s", d.break_every_s)),
        break_s=_pair(a.get("break_s", d.break_s)),
    )


def _queue(q: dict[str, Any]) -> QueueSpec:
    members: list[tuple[str, int]] = []
    raw = q.get("members", [])
    if raw == "all":
        raw = ["*"]
    for m in raw:
        if isinstance(m, str):
            members.append((m, 0))
        else:
            members.append((str(m["endpoint"]), int(m.get("penalty", 0))))
    return QueueSpec(
        str(q["name"]),
        str(q.get("strategy", "ringall")),
        float(q.get("timeout", 15)),
        float(q.get("retry", 2)),
        tuple(members),
        bool(q.get("ringinuse", False)),
        tuple(str(x) for x in q.get("paused", [])),
        str(q.get("context", "")),
    )


def _call(c: dict[str, Any]) -> tuple[float, InboundCall]:
    def opt(key: str) -> float | None:
        return float(c[key]) if key in c else None

    dtmf = tuple((float(t), str(d)) for t, d in c.get("dtmf", []))
    agent_ends = bool(c["agent_ends"]) if "agent_ends" in c else None
    spec = InboundCall(
        str(c["did"]),
        str(c["caller"]),
        str(c.get("caller_name", "")),
        opt("patience"),
        opt("talk_s"),
        agent_ends,
        dtmf,
        float(c.get("stasis_hold_s", 30.0)),
        _midcall(c),
        tuple((float(t), str(d)) for t, d in c.get("queue_dtmf", [])),
    )
    return float(c.get("at", 0.0)), spec


def _midcall(c: dict[str, Any]) -> MidCall:
    kind = str(c.get("transfer", ""))
    if kind not in ("", "blind", "attended"):
        raise ValueError(f"calls.transfer: expected blind or attended, got {kind!r}")
    return MidCall(
        hold_after_s=float(c["hold_after_s"]) if "hold_after_s" in c else None,
        hold_s=float(c.get("hold_s", 0.0)),
        transfer=kind,
        transfer_to=str(c.get("transfer_to", "")),
        transfer_context=str(c.get("transfer_context", "operators")),
        transfer_after_s=float(c.get("transfer_after_s", 0.0)),
        transferer_hangup_s=float(c.get("transferer_hangup_s", 3.0)),
    )


def _policy(orig: dict[str, Any]) -> OriginatePolicy:
    d = OriginatePolicy()
    return OriginatePolicy(
        answer=float(orig.get("answer", d.answer)),
        noanswer=float(orig.get("noanswer", d.noanswer)),
        busy=float(orig.get("busy", d.busy)),
        congestion=float(orig.get("congestion", d.congestion)),
        ring_s=_pair(orig.get("ring_s", d.ring_s)),
        talk_s=_pair(orig.get("talk_s", d.talk_s)),
        numbers={str(k): str(v) for k, v in orig.get("numbers", {}).items()},
        machine=float(orig.get("machine", d.machine)),
        machine_s=_pair(orig.get("machine_s", d.machine_s)),
        audio={str(k): tuple(str(x) for x in v) for k, v in orig.get("audio", {}).items()},
        machine_audio=tuple(str(x) for x in orig.get("machine_audio", [])),
        dtmf={str(k): tuple(str(x) for x in v) for k, v in orig.get("dtmf", {}).items()},
        reply_after=str(orig["reply_after"]) if orig.get("reply_after") in ("prompt", "keys")
        else "bridge",
        press={str(k): str(v) for k, v in orig.get("press", {}).items()},
    )


def _build(raw: dict[str, Any], stem: str) -> Scenario:
    pbx = raw.get("pbx", {})
    agents = raw.get("agents", {})
    reg = agents.get("registered")
    policy = _policy(raw.get("originate", {}))
    return Scenario(
        name=str(raw.get("name", stem)),
        description=str(raw.get("description", "")),
        dids={str(k): str(v) for k, v in pbx.get("dids", {}).items()},
        stasis_dids=tuple(str(d) for d in pbx.get("stasis_dids", [])),
        default_queue=str(pbx.get("default_queue", "reception")),
        queue_options=str(pbx.get("queue_options", "r")),
        bridge_peer_rounds=int(pbx.get("bridge_peer_rounds", 3)),
        stasis_builtin=bool(pbx.get("stasis_builtin", False)),
        queues=tuple(_queue(q) for q in raw.get("queues", [])),
        agents=AgentsSpec(
            int(agents.get("count", 3)),
            int(agents.get("first", 101)),
            tuple(reg) if reg is not None else None,
            tuple(agents.get("never_answer", [])),
            _profile(agents),
            tuple(str(x) for x in agents.get("local", [])),
        ),
        calls=tuple(sorted((_call(c) for c in raw.get("calls", [])), key=lambda x: x[0])),
        traffic=TrafficConfig.from_dict(raw["traffic"]) if "traffic" in raw else None,
        originate=policy,
    )
