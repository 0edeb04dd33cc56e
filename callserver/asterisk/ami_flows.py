"""AMI events of call flows after the answer → live model: bridges, hold, transfers.

Kept apart from ``ami_translate`` (which registers these handlers in ``AmiTranslator``) so each
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


def flow_handlers(
    model: LiveModel, at: Callable[[Fields], float], need: Reader, text: Reader
) -> dict[str, Handler]:
    """Handlers by AMI event name; ``at`` gives an event's time (POSIX seconds), ``need``
    a required field (raises when missing), ``text`` an optional one ('' when missing)."""

    def bridge_enter(msg: AmiMessage) -> None:
        f = msg.fields
        model.leg_bridged(need(f, "Uniqueid"), need(f, "BridgeUniqueid"), at=at(f))

    def bridge_leave(msg: AmiMessage) -> None:
        f = msg.fields
        model.leg_unbridged(need(f, "Uniqueid"), need(f, "BridgeUniqueid"), at=at(f))

    def hangup_request(msg: AmiMessage) -> None:
        f = msg.fields
        model.hangup_requested(need(f, "Uniqueid"), at=at(f))

    def hold(msg: AmiMessage) -> None:
        f = msg.fields
        model.channel_held(need(f, "Uniqueid"), at=at(f))

    def unhold(msg: AmiMessage) -> None:
        f = msg.fields
        model.channel_unheld(need(f, "Uniqueid"), at=at(f))

    def blind_transfer(msg: AmiMessage) -> None:
        f = msg.fields
        if text(f, "Result") != "Success":
            return
        exten, context = text(f, "Extension"), text(f, "Context")
        model.call_transferred(
            "blind",
            text(f, "TransfererUniqueid"),
            need(f, "TransfereeUniqueid"),
            target=f"{exten}@{context}" if exten and context else exten,
            at=at(f),
        )

    def attended_transfer(msg: AmiMessage) -> None:
        f = msg.fields
        if text(f, "Result") != "Success":
            return
        model.call_transferred(
            "attended",
            text(f, "OrigTransfererUniqueid"),
            need(f, "TransfereeUniqueid"),
            target=text(f, "TransferTargetChannel"),
            at=at(f),
        )

    return {
        "BridgeEnter": bridge_enter,
        "BridgeLeave": bridge_leave,
        "HangupRequest": hangup_request,
        "Hold": hold,
        "Unhold": unhold,
        "BlindTransfer": blind_transfer,
        "AttendedTransfer": attended_transfer,
    }
