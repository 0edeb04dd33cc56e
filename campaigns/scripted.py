"""A patient stand-in that answers campaign dialogs from a script (tests, the benchmark, demos).

In production the voice bot (ivr plugin) holds the line (``campaign_calls``), and pbxsim's
patients can answer it by voice and keys (``tests/integration/test_campaigns_voice.py``). Where
the bot is not what is measured (``bench/campaign.py``: 10,000 calls; the runner's tests), this
:class:`Conversation` plays the patient's part without audio — the same ``Dialog``, fed the
scripted keypad digits or recognised text per phone — so everything after the answer
(outcomes, CRM updates, retries) is the production path. It is labelled as such wherever it is
used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from campaigns.dialog import Dialog, Input, Step
from campaigns.models import ClaimedCall


class ScriptedConversation:
    """``scripts``: E.164 phone → the patient's inputs in order; others get ``default``.
    Inputs run out → silence until the dialog gives up. ``think_s``: wall seconds per input."""

    def __init__(
        self, scripts: Mapping[str, Sequence[Input]], *, default: Sequence[Input] = (),
        think_s: float = 0.0,
    ) -> None:  # fmt: skip
        self._scripts, self._default, self._think_s = scripts, default, think_s
        self.transcripts: dict[int, list[str]] = {}

    async def converse(self, call: ClaimedCall, channel: str, dialog: Dialog) -> Step:
        said = self.transcripts.setdefault(call.dial_id, [])
        step = dialog.start()
        said.extend(step.say)
        inputs = list(self._scripts.get(call.target.phone, self._default))
        while not step.done:
            if self._think_s:
                await asyncio.sleep(self._think_s)
            step = dialog.feed(inputs.pop(0) if inputs else Input("silence"))
            said.extend(step.say)
        return step
