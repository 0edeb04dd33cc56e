"""AMI events of call flows after the answer → live model: bridges, hold, transfers.

Kept apart from ``ami_translate`` (``AmiTranslator`` registers ``FlowHandlers.handlers()``) so each
module stays small; the field readers come from there (passed in, no import cycle). Fields as
Asterisk 22.10.1 sends them (``tests/fixtures/asterisk/ami-blind-transfer.txt``,
``ami-attended-transfer.txt``, ``ami-hold-unhold.txt``):

=================  =========================================================================
BridgeEnter/Leave  ``leg_bridged`` / ``leg_unbridged`` (Uniqueid, BridgeUniqueid)
HangupRequest      ``hangup_requested`` (who ended a talking call: the far end of that leg)
Hold / Unhold      ``channel_held`` / ``channel_unheld`` (Uniqueid of the leg that holds)
BlindTransfer      ``call_transferred("blind", …)``: TransfererUniqueid, TransfereeUniqueid,
                   Extension@Context as the target; only ``Result: Success``
AttendedTransfer   ``call_transferred("attended", …)``: OrigTransfererUniqueid,
                   TransfereeUniqueid; only ``Result: Success``
=================  =========================================================================

A missing required field raises the translator's ``BadField`` (through ``need``).
"""

from __future__ import annotations

from collections.abc import Callable

from callserver.asterisk.ami_codec import AmiMessage, Fields
from callserver.core.model import LiveModel

Reader = Callable[[Fields, str], str]
Handler = Callable[[AmiMessage], None]


class FlowHandlers:
    """Handlers by AMI event name (``handlers()``); ``at`` gives an event's time (POSIX
    seconds), ``need`` a required field (raises when missing), ``text`` an optional one ('' when
    missing)."""

    def __init__(
        self, model: LiveModel, at: Callable[[Fields], float], need: Reader, text: Reader
    ) -> None:
        self._model = model
        self._at = at
        self._need = need
        self._text = text

    def handlers(self) -> dict[str, Handler]:
        return {
            "BridgeEnter": self.bridge_enter,
            "BridgeLeave": self.bridge_leave,
            "HangupRequest": self.hangup_request,
            "Hold": self.hold,
            "Unhold": self.unhold,
            "BlindTransfer": self.blind_transfer,
            "AttendedTransfer": self.attended_transfer,
        }

    def bridge_enter(self, msg: AmiMessage) -> None:
        f, need = msg.fields, self._need
        self._model.leg_bridged(need(f, "Uniqueid"), need(f, "BridgeUniqueid"), at=self._at(f))

    def bridge_leave(self, msg: AmiMessage) -> None:
        f, need = msg.fields, self._need
        self._model.leg_unbridged(need(f, "Uniqueid"), need(f, "BridgeUniqueid"), at=self._at(f))

    def hangup_request(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.hangup_requested(self._need(f, "Uniqueid"), at=self._at(f))

    def hold(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.channel_held(self._need(f, "Uniqueid"), at=self._at(f))

    def unhold(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.channel_unheld(self._need(f, "Uniqueid"), at=self._at(f))

    def blind_transfer(self, msg: AmiMessage) -> None:
        f, text = msg.fields, self._text
        if text(f, "Result") != "Success":
            return
        exten, context = text(f, "Extension"), text(f, "Context")
        self._model.call_transferred(
            "blind",
            text(f, "TransfererUniqueid"),
            self._need(f, "TransfereeUniqueid"),
            target=f"{exten}@{context}" if exten and context else exten,
            at=self._at(f),
        )

    def attended_transfer(self, msg: AmiMessage) -> None:
        f, text = msg.fields, self._text
        if text(f, "Result") != "Success":
            return
        self._model.call_transferred(
            "attended",
            text(f, "OrigTransfererUniqueid"),
            self._need(f, "TransfereeUniqueid"),
            target=text(f, "TransferTargetChannel"),
            at=self._at(f),
        )
