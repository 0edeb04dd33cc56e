"""Generated inbound traffic: who calls, when, on which DID, how patient.

Arrivals are a non-homogeneous Poisson process (thinning) with an hour-of-day profile;
callers are known patients (``pbxsim/data/patients.csv``), repeat callers (someone who
called in the last ``repeat_window`` calls) or new numbers. Every draw comes from one
``random.Random`` seeded from the scenario seed, in a fixed order per call, so the same
seed gives the same calls at the same scenario times. Times are scenario seconds.
"""

from __future__ import annotations

import csv
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbxsim.dialplan import Dialplan, InboundCall, run_inbound
from pbxsim.engine import Engine
from pbxsim.plan import MidCall

DATA_DIR = Path(__file__).parent / "data"
FLAT = (1.0,) * 24
CLINIC_DAY = (
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0.3,
    1.0,
    2.2,
    2.0,
    1.4,
    1.1,
    1.0,
    1.0,
    0.9,
    0.8,
    0.7,
    0.5,
    0.3,
    0.1,
    0,
    0,
    0,
)


@dataclass(frozen=True)
class TrafficConfig:
    """Arrival process and caller behaviour."""

    calls_per_hour: float = 60.0
    """Base rate, multiplied by ``profile[hour]``; ``calls_per_s`` overrides it when > 0."""
    calls_per_s: float = 0.0
    profile: tuple[float, ...] = FLAT
    start_hour: float = 8.0
    """Hour of day at scenario time 0."""
    duration_s: float = 3600.0
    """Arrivals stop after this much scenario time (0: never)."""
    max_calls: int = 0
    patience_mean_s: float = 60.0
    patience_min_s: float = 5.0
    known_share: float = 0.6
    repeat_share: float = 0.15
    repeat_window: int = 200
    did_weights: dict[str, float] = field(default_factory=dict)
    talk_s: tuple[float, float] | None = None
    """Override of the agents' talk time (e.g. short calls for the load scenario)."""
    stasis_dtmf: tuple[tuple[float, str], ...] = ((3.0, "1"), (4.5, "2"))
    stasis_hold_s: float = 20.0
    hold_prob: float = 0.0
    """Share of calls the operator puts on hold once (``hold_after_s``, ``hold_s`` ranges)."""
    hold_after_s: tuple[float, float] = (10.0, 60.0)
    hold_s: tuple[float, float] = (10.0, 60.0)
    blind_transfer_prob: float = 0.0
    """Share of calls the operator blind-transfers to one of ``transfer_to``."""
    attended_transfer_prob: float = 0.0
    """Share of calls the operator transfers attended (consults the target first)."""
    transfer_to: tuple[str, ...] = ()
    """Target extensions in ``transfer_context`` (``102`` rings ``PJSIP/op102``)."""
    transfer_context: str = "operators"
    transfer_after_s: tuple[float, float] = (20.0, 90.0)
    transferer_hangup_s: tuple[float, float] = (3.0, 15.0)
    bursts: tuple[tuple[float, float, float], ...] = ()
    """Extra arrivals ``(start_s, duration_s, calls_per_s)`` on top of the base rate (a flood
    of calls for fault and load tests)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrafficConfig:
        kw = dict(d)
        if "profile" in kw:
            prof = kw["profile"]
            kw["profile"] = (
                CLINIC_DAY if prof == "clinic-day" else FLAT if prof == "flat" else tuple(prof)
            )
            if len(kw["profile"]) != 24:
                raise ValueError("traffic.profile needs 24 hourly multipliers")
        for key in ("talk_s", "hold_after_s", "hold_s", "transfer_after_s", "transferer_hangup_s"):
            if key in kw:
                kw[key] = tuple(float(x) for x in kw[key])
        if "transfer_to" in kw:
            kw["transfer_to"] = tuple(str(x) for x in kw["transfer_to"])
        if "bursts" in kw:
            kw["bursts"] = tuple((float(a), float(b), float(c)) for a, b, c in kw["bursts"])
        if "stasis_dtmf" in kw:
            kw["stasis_dtmf"] = tuple((float(t), str(x)) for t, x in kw["stasis_dtmf"])
        return cls(**kw)

    def rate(self, t: float) -> float:
        """Calls per scenario second at scenario time ``t``."""
        extra = sum(r for start, length, r in self.bursts if start <= t < start + length)
        if self.calls_per_s > 0:
            return self.calls_per_s + extra
        hour = int((self.start_hour * 3600 + t) // 3600) % 24
        return self.calls_per_hour * self.profile[hour] / 3600.0 + extra

    def max_rate(self) -> float:
        extra = max((r for _, _, r in self.bursts), default=0.0)
        if self.calls_per_s > 0:
            return self.calls_per_s + extra
        return self.calls_per_hour * max(self.profile) / 3600.0 + extra


def load_patients(path: Path | None = None) -> list[tuple[str, str]]:
    """(number as the carrier sends it — E.164 without ``+`` —, name) from the CSV."""
    with (path or DATA_DIR / "patients.csv").open(encoding="utf-8") as f:
        return [(row["phone"].lstrip("+"), row["name"]) for row in csv.DictReader(f)]


class Traffic:
    """Draws calls; ``next_call(t)`` is pure given the RNG state (deterministic per seed)."""

    def __init__(self, cfg: TrafficConfig, dp: Dialplan, seed: int) -> None:
        self.cfg = cfg
        self.rng = random.Random(f"{seed}:traffic")
        self.patients = load_patients()
        self.recent: deque[str] = deque(maxlen=cfg.repeat_window)
        weights = cfg.did_weights or {d: 1.0 for d in dp.dids}
        self.dids = list(weights)
        self.weights = [weights[d] for d in self.dids]
        self.stasis = set(dp.stasis_dids)
        self.midcall_rng = random.Random(f"{seed}:midcall")
        """Hold/transfer draws on their own RNG: enabling them never shifts who calls when."""

    def next_arrival(self, t: float) -> float | None:
        """Scenario time of the next call after ``t`` (None: no more arrivals)."""
        lam = self.cfg.max_rate()
        if lam <= 0:
            return None
        while True:
            t += self.rng.expovariate(lam)
            if self.cfg.duration_s and t > self.cfg.duration_s:
                return None
            if self.rng.random() * lam <= self.cfg.rate(t):
                return t

    def draw_call(self) -> InboundCall:
        rng, cfg = self.rng, self.cfg
        did = rng.choices(self.dids, self.weights)[0]
        x = rng.random()
        if x < cfg.repeat_share and self.recent:
            number, name = rng.choice(self.recent), ""
        elif x < cfg.repeat_share + cfg.known_share:
            number, name = rng.choice(self.patients)
        else:
            number, name = "79" + "".join(str(rng.randrange(10)) for _ in range(9)), ""
        self.recent.append(number)
        patience = max(cfg.patience_min_s, rng.expovariate(1.0 / cfg.patience_mean_s))
        talk = rng.uniform(*cfg.talk_s) if cfg.talk_s else None
        dtmf = cfg.stasis_dtmf if did in self.stasis else ()
        plan = self.draw_midcall()
        return InboundCall(did, number, name, patience, talk, None, dtmf, cfg.stasis_hold_s, plan)

    def draw_midcall(self) -> MidCall:
        """Hold and transfer of one call (no draws at all when every probability is 0)."""
        cfg, rng = self.cfg, self.midcall_rng
        if not (cfg.hold_prob or cfg.blind_transfer_prob or cfg.attended_transfer_prob):
            return MidCall()
        hold_after = rng.uniform(*cfg.hold_after_s) if rng.random() < cfg.hold_prob else None
        hold_s = rng.uniform(*cfg.hold_s)
        x, kind = rng.random(), ""
        if x < cfg.blind_transfer_prob:
            kind = "blind"
        elif x < cfg.blind_transfer_prob + cfg.attended_transfer_prob:
            kind = "attended"
        target = rng.choice(cfg.transfer_to) if cfg.transfer_to else ""
        return MidCall(
            hold_after_s=hold_after,
            hold_s=hold_s,
            transfer=kind if target else "",
            transfer_to=target,
            transfer_context=cfg.transfer_context,
            transfer_after_s=rng.uniform(*cfg.transfer_after_s),
            transferer_hangup_s=rng.uniform(*cfg.transferer_hangup_s),
        )


async def run_traffic(
    eng: Engine, dp: Dialplan, cfg: TrafficConfig, seed: int, gate: Callable[[], Awaitable[None]]
) -> int:
    """Start calls until the arrivals end; returns how many were started.

    ``gate`` is awaited before each call (AMI back-pressure: a slow reader slows arrivals
    rather than being dropped).
    """
    traffic = Traffic(cfg, dp, seed)
    t, n = 0.0, 0
    while cfg.max_calls <= 0 or n < cfg.max_calls:
        nxt = traffic.next_arrival(t)
        if nxt is None:
            break
        t = nxt
        spec = traffic.draw_call()
        delay = t - eng.clock.now()
        if delay > 0 or n % 64 == 0:
            # when behind schedule start every due call without yielding per call: one
            # loop iteration per arrival would cap the rate at 1/iteration-time
            await eng.clock.sleep(delay)
            await gate()
        eng.spawn(run_inbound(eng, dp, spec), name=f"call {n}")
        n += 1
    return n
