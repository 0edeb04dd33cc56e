"""Composition root: scenario → engine + AMI server + traffic. Used by the CLI and tests.

pbx = Pbx(load("single-answered"), PbxOptions(ami_port=0, agi_port=4573, speed=10))
await pbx.start()          # listening; pbx.ami_port is the bound port
await pbx.run_scenario()   # scripted calls + generated traffic, until all calls ended
await pbx.aclose()
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from pbxsim.agents import Agent, make_agents
from pbxsim.ami_actions import Actions
from pbxsim.ami_events import use_clock
from pbxsim.ami_server import AmiCredentials, AmiServer
from pbxsim.breaks import take_breaks
from pbxsim.clock import Clock
from pbxsim.dialplan import Dialplan, InboundCall, run_inbound
from pbxsim.durable import DurableWriter
from pbxsim.engine import Engine, EngineConfig
from pbxsim.ledger import Ledger
from pbxsim.queues import Member, Queue
from pbxsim.scenario import Scenario
from pbxsim.stasis_lab import LabDtmfApp
from pbxsim.traffic import run_traffic

log = logging.getLogger("pbxsim")


@dataclass(frozen=True)
class PbxOptions:
    """Ports, credentials, speed and seed of one pbxsim run."""

    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    ami_user: str = "callserver"
    ami_secret: str = "callserver"
    speed: float = 1.0
    seed: int = 1
    wait_for_ami: bool = False
    wait_for_ami_timeout_s: float = 300.0
    agi_timeout_s: float = 5.0
    drain_grace_s: float = 120.0
    """Wall seconds ``run_scenario`` waits for running calls after the last arrival."""
    ledger_path: str = ""
    """JSON-lines ground-truth ledger of every generated call ("": none)."""
    cdr_dsn: str = ""
    """PostgreSQL DSN: write Asterisk's ``cdr`` and ``queue_log`` rows there ("": none)."""


class Pbx:
    """One simulated Asterisk: engine, AMI server, queues/agents and the scenario's calls."""

    def __init__(self, scenario: Scenario, opts: PbxOptions) -> None:
        self.scenario = scenario
        self.opts = opts
        self.clock = Clock(opts.speed)
        cfg = EngineConfig(
            agi_host=opts.agi_host,
            agi_port=opts.agi_port,
            agi_timeout_s=opts.agi_timeout_s,
            queue_options=scenario.queue_options,
            bridge_peer_rounds=scenario.bridge_peer_rounds,
        )
        self.server = AmiServer(AmiCredentials(opts.ami_user, opts.ami_secret), self._dispatch)
        self.ledger = Ledger(opts.ledger_path) if opts.ledger_path else None
        self.records = DurableWriter(opts.cdr_dsn) if opts.cdr_dsn else None
        self.engine = Engine(
            self.server.broadcast, self.clock, cfg, seed=opts.seed, ledger=self.ledger,
            records=self.records,
        )  # fmt: skip
        self.dialplan = Dialplan(
            dict(scenario.dids), set(scenario.stasis_dids), scenario.default_queue
        )
        self.actions = Actions(self.engine, self.dialplan, scenario.originate)
        self.ami_port = 0
        self._background: set[asyncio.Task[None]] = set()
        self._build()

    async def _dispatch(self, session: object, action: list[tuple[str, str]]) -> list[bytes]:
        return await self.actions(session, action)  # type: ignore[arg-type]

    def _build(self) -> None:
        sc, eng = self.scenario, self.engine
        spec = sc.agents
        for agent in make_agents(spec.count, spec.profile, self.opts.seed, spec.first):
            agent.registered = spec.registered is None or agent.endpoint in spec.registered
            agent.never_answers = agent.endpoint in spec.never_answer
            eng.agents[agent.endpoint] = agent
        for target in spec.local:
            exten = target.partition("@")[0]
            rng = random.Random(f"{self.opts.seed}:{target}")
            eng.agents[exten] = Agent(exten, exten, exten, spec.profile, rng, local=target)
        for qs in sc.queues:
            q = Queue(qs.name, qs.strategy, qs.timeout, qs.retry, ringinuse=qs.ringinuse,
                      context=qs.context)  # fmt: skip
            q.rng = random.Random(f"{self.opts.seed}:queue:{qs.name}")  # `random` strategy
            members = qs.members
            if members == (("*", 0),):
                members = tuple((a, 0) for a in eng.agents)
            for endpoint, penalty in members:
                member_agent = eng.agents.get(endpoint)
                if member_agent is not None:
                    paused = endpoint in qs.paused
                    m = Member(member_agent, penalty, paused=paused, ringinuse=q.ringinuse)
                    q.members.append(m)
            eng.queues[q.name] = q
        if sc.stasis_builtin:
            eng.stasis.register(eng.config.stasis_app, LabDtmfApp())

    async def start(self) -> None:
        """Start listening for AMI clients (``ami_port`` 0 picks a free port)."""
        if self.records is not None:
            await self.records.start()
        self.ami_port = await self.server.start(self.opts.ami_host, self.opts.ami_port)
        log.info("pbxsim AMI on %s:%d", self.opts.ami_host, self.ami_port)

    async def run_scenario(self) -> None:
        """Scripted calls and generated traffic; returns once every call has ended.

        With ``wait_for_ami`` the calls start only after an AMI client logged in.
        Raises TimeoutError if no client logs in within ``wait_for_ami_timeout_s``.
        """
        if self.opts.wait_for_ami:
            async with asyncio.timeout(self.opts.wait_for_ami_timeout_s):
                await self.server.logged_in.wait()
        self.clock = Clock(self.opts.speed)
        self.engine.clock = self.clock
        use_clock(self.clock.wall)
        for agent in self.engine.agents.values():
            if agent.profile.break_every_s > 0:
                task = asyncio.ensure_future(take_breaks(self.engine, agent))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._scripted())
            if self.scenario.traffic is not None:
                tg.create_task(
                    run_traffic(
                        self.engine,
                        self.dialplan,
                        self.scenario.traffic,
                        self.opts.seed,
                        self.server.drained,
                    )
                )
        await self.wait_idle(self.opts.drain_grace_s)

    async def _scripted(self) -> None:
        for at, spec in self.scenario.calls:
            await self.clock.sleep(at - self.clock.now())
            self.start_call(spec)

    def start_call(self, spec: InboundCall) -> None:
        """Start one inbound call now (tests use this to inject calls)."""
        self.engine.spawn(
            run_inbound(self.engine, self.dialplan, spec), name=f"call {spec.caller[-4:]}"
        )

    async def wait_idle(self, timeout_s: float) -> None:
        """Wait until no call flow runs (wall-clock ``timeout_s``; then return anyway)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.engine.idle.wait()
        except TimeoutError:
            log.warning("%d call flows still running", self.engine.active_tasks)

    async def aclose(self) -> None:
        """Stop operators' breaks, every call flow, then the AMI server."""
        tasks = list(self._background)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.engine.aclose()
        await self.server.aclose()
        if self.records is not None:
            await self.records.aclose()
        if self.ledger is not None:
            self.ledger.close()
