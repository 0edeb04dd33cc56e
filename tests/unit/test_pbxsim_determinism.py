"""pbxsim determinism for a seed: every random draw comes from a seeded RNG (no sockets)."""

from __future__ import annotations

import dataclasses

from pbxsim.agi_client import AgiRequest, AgiSession
from pbxsim.app import Pbx, PbxOptions
from pbxsim.model import Channel
from pbxsim.originate import _draw
from pbxsim.originate_spec import OriginatePolicy
from pbxsim.queues import Entry
from pbxsim.scenario import QueueSpec, load
from pbxsim.stasis_session import StasisSession


def _random_queue_picks(seed: int) -> list[str]:
    sc = load("single-answered")
    spec = QueueSpec("reception", "random", members=(("*", 0),))
    agents = dataclasses.replace(sc.agents, count=6, registered=None)
    sc = dataclasses.replace(sc, queues=(spec,), agents=agents, calls=())
    pbx = Pbx(sc, PbxOptions(ami_port=0, seed=seed))
    q = pbx.engine.queues["reception"]
    entry = Entry(Channel("PJSIP/trunk-00000001", "1.1", "1.1", "from-trunk", "1"), 0.0, 1)
    return [q.pick(entry)[0].agent.interface for _ in range(30)]


def test_random_strategy_picks_the_same_members_for_the_same_seed() -> None:
    """Bug: Queue.rng was an unseeded random.Random(), so `random` queues differed per run."""
    first = _random_queue_picks(7)
    assert len(set(first)) > 1
    assert _random_queue_picks(7) == first


def test_agi_command_ids_do_not_shift_originate_outcomes() -> None:
    """Bug: AGIExecStart CommandIds were drawn from the engine RNG that also draws originate
    outcomes, so how many AGI commands ran before changed a callback's outcome."""
    outcomes = []
    for agi_commands in (0, 5):
        sc = dataclasses.replace(load("originate"), calls=())
        pbx = Pbx(sc, PbxOptions(ami_port=0, seed=3))
        eng = pbx.engine
        ch = eng.new_channel("PJSIP/trunk", context="route-inbound", exten="1", announce=False)
        agi = AgiSession(eng, ch, AgiRequest("route", ()))
        for _ in range(agi_commands):
            agi.execute("VERBOSE hello 1")
        policy = OriginatePolicy()
        outcomes.append([_draw(eng, policy) for _ in range(20)])
    assert outcomes[0] == outcomes[1]


def test_external_media_does_not_shift_originate_outcomes() -> None:
    """Bug: externalMedia drew its UnicastRTP port/name from the engine RNG, so how many
    voice-bot calls the ARI client had set up shifted later originate outcomes."""
    outcomes = []
    for bot_calls in (0, 3):
        sc = dataclasses.replace(load("originate"), calls=())
        eng = Pbx(sc, PbxOptions(ami_port=0, seed=3)).engine
        ch = eng.new_channel("PJSIP/trunk", context="from-trunk", exten="1", announce=False)
        session = StasisSession(eng, ch, "callserver", ["inbound"])
        for _ in range(bot_calls):
            session.external_media("127.0.0.1:40000")
        outcomes.append([_draw(eng, OriginatePolicy()) for _ in range(20)])
    assert outcomes[0] == outcomes[1]
