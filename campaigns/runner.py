"""The campaign runner: keeps each trunk's channels busy with due calls, no faster.

One loop per instance: when a channel frees (or every ``poll_s``) it claims as many due calls as
the trunk has free channels (``store.claim``: counted over all instances), dials each in its own
owned task, runs the dialog on the answered ones and settles them (``service.settle``). A
campaign is only claimed for while its calling window is open (``policy.is_allowed``, clinic
time zone, quiet hours, holidays). Every ``poll_s`` it also recovers dials whose instance
vanished and marks finished campaigns ``done``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from callserver.core.backoff import Backoff
from campaigns.claim import Campaigns, ClaimRequest
from campaigns.dialer import Conversation, DialResult, PatientDialer
from campaigns.dialog import CallFacts, Dialog, Step
from campaigns.models import CampaignSettings, ClaimedCall
from campaigns.policy import is_allowed
from campaigns.service import CampaignService
from campaigns.store import CampaignStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerSettings:
    instance: str
    channels: int = 30
    """Concurrent campaign calls per trunk, over all instances."""
    poll_s: float = 1.0
    lease: timedelta = timedelta(minutes=15)
    """A dial not settled within this is taken for lost (its instance died)."""
    own_channels: int = 0
    """This instance's own share of ``channels`` (0: all of them). A finishing call claims its
    successor at once, so without a share the first instance keeps every channel."""


class CampaignRunner:
    """A component: ``start()`` launches the loop, ``aclose()`` stops it and its calls."""

    def __init__(
        self, store: CampaignStore, dialer: PatientDialer, conversation: Conversation,
        service: CampaignService, clock: Callable[[], float], settings: RunnerSettings,
    ) -> None:  # fmt: skip
        self._store, self._dialer, self._conversation = store, dialer, conversation
        self._service, self._clock, self._settings = service, clock, settings
        self._wake = asyncio.Event()
        self._refresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._loaded = asyncio.Event()
        self._calls: set[asyncio.Task[None]] = set()
        self._active: dict[str, int] = {}
        self._campaigns: dict[int, tuple[str, CampaignSettings]] = {}
        self.dialled = 0
        self.answered = 0
        self.busy_s = 0.0
        """Channel-seconds spent in calls, Originate to hang-up (the benchmark's ideal)."""
        self.freed_at: list[float] = []
        """Monotonic times calls hung up (the benchmark's redial gap: hang-up → next dial)."""
        self.dial_started_at: list[float] = []

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="campaign-runner")
        self._keeper = asyncio.create_task(self._housekeeping(), name="campaign-housekeeping")

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, self._keeper, *self._calls) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        """Look for due calls now (a campaign was resumed, targets were added)."""
        self._refresh.set()

    def active(self) -> int:
        return sum(self._active.values())

    async def _housekeeping(self) -> None:
        """Every ``poll_s`` (or on ``wake``): recover lost dials, close finished campaigns,
        reload the running ones. Apart from the dial loop so claims never wait for it."""
        backoff = Backoff(0.5, 15.0)
        while True:
            try:
                await self.housekeep()
                backoff.reset()
                self._wake.set()
            except (asyncpg.PostgresError, OSError) as e:
                delay = backoff.next()
                log.warning("campaign housekeeping: %s; retrying in %.1fs", e, delay)
                await asyncio.sleep(delay)
                continue
            try:
                async with asyncio.timeout(self._settings.poll_s):
                    await self._refresh.wait()
            except TimeoutError:
                pass
            self._refresh.clear()

    async def housekeep(self) -> None:
        now = datetime.fromtimestamp(self._clock()).astimezone()
        await self._store.recover_expired(now)
        await self._store.finish_campaigns()
        self._campaigns = await self._store.running()
        self._loaded.set()

    async def _loop(self) -> None:
        backoff = Backoff(0.5, 15.0)
        await self._loaded.wait()
        while True:
            try:
                busy = await self.tick()
                backoff.reset()
            except (asyncpg.PostgresError, OSError) as e:
                delay = backoff.next()
                log.warning("campaign runner: %s; retrying in %.1fs", e, delay)
                await asyncio.sleep(delay)
                continue
            if not busy:
                try:
                    async with asyncio.timeout(self._settings.poll_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()

    async def tick(self) -> bool:
        """One round of claims for free channels. True when it claimed something (loop again
        at once)."""
        if not self._dialer.ready():
            return False
        now = datetime.fromtimestamp(self._clock()).astimezone()
        claimed_any = False
        for trunk, campaigns in self._open(now).items():
            own = self._settings.own_channels or self._settings.channels
            want = min(own, self._settings.channels) - self._active.get(trunk, 0)
            if want <= 0:
                continue
            claimed = await self._store.claim(
                now=now, instance=self._settings.instance, trunk=trunk,
                channels=self._settings.channels, want=want, campaigns=campaigns,
                lease=self._settings.lease,
            )  # fmt: skip
            for call in claimed:
                self._launch(trunk, call)
            claimed_any = claimed_any or bool(claimed)
        return claimed_any

    def _open(self, now: datetime) -> dict[str, Campaigns]:
        """Running campaigns whose calling window is open ``now``, by trunk."""
        by_trunk: dict[str, Campaigns] = {}
        for cid, (kind, s) in self._campaigns.items():
            if is_allowed(s.window, now):
                by_trunk.setdefault(s.trunk, {})[cid] = (kind, s)
        return by_trunk

    def _successor(self, trunk: str, now: datetime) -> ClaimRequest | None:
        """Claim the call that takes a finishing call's channel (its own slot, want 1)."""
        campaigns = self._open(now).get(trunk)
        if not campaigns or not self._dialer.ready():
            return None
        return ClaimRequest(now, self._settings.instance, trunk, self._settings.channels, 1,
                            campaigns, self._settings.lease)  # fmt: skip

    def _launch(self, trunk: str, call: ClaimedCall) -> None:
        self._active[trunk] = self._active.get(trunk, 0) + 1
        self.dialled += 1
        started = time.monotonic()
        self.dial_started_at.append(started)
        task = asyncio.create_task(self._call(trunk, call, started),
                                   name=f"campaign-dial-{call.dial_id}")  # fmt: skip
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _call(self, trunk: str, call: ClaimedCall, started: float) -> None:
        hung_up, released = 0.0, False
        try:
            dial = await self._dialer.dial(call)
            step = await self._talk(call, dial) if dial.result == "answered" else None
            hung_up = time.monotonic()  # the trunk's channel is free from here
            now = self._service.now()
            apply, successors = await self._service.record(
                call, dial.result, step, now=now, then=self._successor(trunk, now)
            )
            for successor in successors:  # in the same round trip as the settle
                self._launch(trunk, successor)
            released = True  # PostgreSQL no longer counts it: the next call may take its place
            self._release(trunk, hung_up, started)
            if apply is not None:
                await apply()
        except (asyncpg.PostgresError, OSError) as e:
            # the dial stays 'dialing' until its lease expires: then recorded unknown,
            # and never redialled the same day
            log.warning("campaign dial %s not settled: %s", call.dial_id, e)
        except Exception:
            # one call's bug must not stop the campaign; the lease covers its row as above
            log.exception("campaign dial %s failed", call.dial_id)
        finally:
            if not released:
                self._release(trunk, hung_up or time.monotonic(), started)

    def _release(self, trunk: str, freed: float, started: float) -> None:
        """The call's slot is free (its dial settled, or abandoned to its lease)."""
        self._active[trunk] -= 1
        self.freed_at.append(freed)
        self.busy_s += freed - started
        self._wake.set()

    async def _talk(self, call: ClaimedCall, dial: DialResult) -> Step:
        self.answered += 1
        t, s = call.target, call.settings
        facts = CallFacts(kind=call.kind, clinic=s.clinic_name, lang=t.lang, doctor=t.doctor,
                          starts_at=t.starts_at.astimezone(s.window.zone) if t.starts_at else None,
                          text=s.text)  # fmt: skip
        try:
            return await self._conversation.converse(call, dial.channel, Dialog(facts))
        finally:
            await self._dialer.hangup(dial.channel)
