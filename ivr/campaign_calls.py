"""The ``campaign_calls`` consumer: outbound campaign calls the bot speaks (issue 14).

``PatientDialer`` (campaigns) originates the patient into ``Stasis(<app>,campaign,<dial id>)``.
On that StasisStart ``CampaignStasisHandler`` takes the call's session from the port
(``take(dial_id, hangs_up=True)``, waiting ``TAKE_WITHIN_S`` for the runner to have read the
OriginateResponse; ``hangs_up``: the runner hangs up only after the bot released the line,
so the goodbye is heard), wraps it in a ``CampaignDialog`` and runs it in a ``BotSession`` (the
same answer, externalMedia → VAD → recognition path, DTMF, playback queue and silence timer as
inbound bot calls; ``BotStasisHandler.run_session`` counts and records it). A session that is
unknown, already taken or not handed over in time is left alone (the runner's ``pickup_s`` ends
that call).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from callserver.asterisk.ari_rest import clean
from ivr.campaign_dialog import CampaignCallsPort, CampaignDialog
from ivr.models import Lang
from ivr.session import BotSession, CallInfo

log = logging.getLogger(__name__)
MAX_DIAL_ID = 10**15
TAKE_WITHIN_S = 5.0
"""How long a StasisStart waits for the runner to hand its call over (AMI and ARI race)."""


def _text(obj: object, key: str) -> str:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) else ""


def dial_id_of(args: list[str]) -> int | None:
    """The dial id of ``campaign,<dial id>`` Stasis arguments; None for any other call."""
    if len(args) < 2 or args[0] != "campaign" or not args[1].isdigit():
        return None
    dial_id = int(args[1])
    return dial_id if 0 < dial_id < MAX_DIAL_ID else None


class CampaignStasisHandler:
    """A Stasis handler for ``campaign,<dial id>`` calls (see the module doc)."""

    def __init__(self, port: CampaignCallsPort,
                 make_session: Callable[[CallInfo, CampaignDialog], BotSession],
                 run: Callable[[BotSession], Awaitable[None]], *, silence_s: float) -> None:
        self._port, self._make, self._run = port, make_session, run  # fmt: skip
        self._silence_s = silence_s
        self.calls_total = self.unclaimed = 0

    async def __call__(self, event: Mapping[str, Any]) -> None:
        channel = event.get("channel")
        dial_id = dial_id_of([a for a in event.get("args", []) if isinstance(a, str)])
        channel_id = _text(channel, "id")
        if dial_id is None or not channel_id:
            return
        session = await self._port.take(dial_id, within=TAKE_WITHIN_S, hangs_up=True)
        if session is None:
            self.unclaimed += 1
            log.info("ivr: campaign dial %d on %s: no session (unknown or taken)", dial_id,
                     clean(channel_id))
            return
        self.calls_total += 1
        lang: Lang = "en" if session.lang == "en" else "ru"
        number = _text(_sub(channel, "connected"), "number") or _text(_sub(channel, "caller"),
                                                                        "number")
        call = CallInfo(channel_id, number[:40], "", 0, lang)
        dialog = CampaignDialog(session, lang=lang, silence_s=self._silence_s,
                                comment_name=f"dial-{dial_id}")
        try:
            await self._run(self._make(call, dialog))
        finally:
            if dialog.state != "done":  # the bot gave up (ARI error, max_call_s): a hang-up
                with contextlib.suppress(ValueError):  # its dialog had not started / had ended
                    session.feed("hangup")
            session.release()


def _sub(obj: object, key: str) -> object:
    return obj.get(key) if isinstance(obj, Mapping) else None
