"""Call flows after the answer: bridges, hold/unhold and transfers (``LiveModel`` builds on it).

An answered call is a list of agent *turns* (``records.Turn``): the queue's AgentConnect opens
the first; a transfer closes the transferer's turn and opens the target's; hold time is counted
apart from talk in the turn in progress. Asterisk's events, as recorded on 22.10.1:

* blind transfer: ``BlindTransfer`` (transferer = the agent's channel, transferee = the caller,
  ``Extension``) → the caller's channel dials the target itself; when the caller is bridged with
  the target (``BridgeEnter``) the target's turn starts (TransferAnswered);
* attended transfer: ``Hold`` on the agent's channel while they consult, then
  ``AttendedTransfer`` once they drop out: by then the caller's bridge holds a ``Local/…;1``
  channel whose ``;2`` half is bridged with the target agent, so the target is found by walking
  bridges and Local pairs from the caller's leg.

Pure: standard library only.
"""

from __future__ import annotations

from callserver.core.events import (
    CallHeld,
    CallTransferred,
    CallUnheld,
    TransferAnswered,
)
from callserver.core.model.base import TALKING, ModelBase
from callserver.core.model.records import Call, Leg, Turn


def local_sibling(channel: str) -> str:
    """``Local/102@operators-00000003;1`` ↔ ``…;2``; '' for any other channel."""
    if not channel.startswith("Local/"):
        return ""
    if channel.endswith(";1"):
        return channel[:-1] + "2"
    if channel.endswith(";2"):
        return channel[:-1] + "1"
    return ""


class FlowModel(ModelBase):
    """Bridges, hold and transfers on top of the channel handling of ``ModelBase``."""

    # ------------------------------------------------------------------ bridges

    def leg_bridged(self, uniqueid: str, bridge_id: str, *, at: float) -> None:
        """The leg entered ``bridge_id`` (BridgeEnter). After a blind transfer the caller
        being bridged with someone new starts that agent's turn (TransferAnswered)."""
        leg = self._legs.get(uniqueid)
        if leg is None:
            return
        leg.bridge = bridge_id
        call = self._calls[leg.call_id]
        if not call.transfer_pending:
            return
        peer = self._agent_peer(call)
        last = call.turns[-1].agent if call.turns else ""
        if peer is not None and peer[0] != last:
            from_agent, via = last, call.transfer_pending
            self._start_turn(call, peer[0], peer[1], via=via, at=at)
            turn = call.turns[-1]
            self._publish(
                TransferAnswered(at, call.snapshot(), turn.agent, turn.agent_name, from_agent)
            )

    def leg_unbridged(self, uniqueid: str, bridge_id: str, *, at: float) -> None:
        """The leg left ``bridge_id`` (BridgeLeave)."""
        leg = self._legs.get(uniqueid)
        if leg is not None and leg.bridge == bridge_id:
            leg.bridge = ""

    def hangup_requested(self, uniqueid: str, *, at: float) -> None:
        """The far end of a leg hung up (AMI ``HangupRequest``, e.g. a SIP BYE): the first one
        of a talking call says who ended it, the caller or the agent of the turn in progress
        (a transferred call has no AgentComplete to say so)."""
        leg = self._legs.get(uniqueid)
        call = self._calls.get(leg.call_id) if leg is not None else None
        if leg is None or call is None or call.state not in TALKING or call.hangup_by:
            return
        turn = call.open_turn()
        if uniqueid == call.caller_leg:
            call.hangup_by = "caller"
        elif turn is not None and leg.agent == turn.agent:
            call.hangup_by = "agent"

    # ------------------------------------------------------------------ hold

    def channel_held(self, uniqueid: str, *, at: float) -> None:
        """A leg of an answered call put the other side on hold (AMI ``Hold``): CallHeld."""
        leg = self._legs.get(uniqueid)
        call = self._calls.get(leg.call_id) if leg is not None else None
        turn = call.open_turn() if call is not None else None
        if call is None or leg is None or turn is None or turn.held_since is not None:
            return
        turn.held_since = at
        call.state = "on_hold"
        self._publish(CallHeld(at, call.snapshot(), turn.agent, leg.channel))

    def channel_unheld(self, uniqueid: str, *, at: float) -> None:
        """The hold ended (AMI ``Unhold``): CallUnheld; an Unhold without a Hold is ignored."""
        call = self._call_of(uniqueid)
        if call is not None:
            self._unhold(call, at)

    def _unhold(self, call: Call, at: float) -> None:
        turn = call.open_turn()
        if turn is None or turn.held_since is None:
            return
        held = turn.stop_hold(at)
        if call.state == "on_hold":
            call.state = "answered"
        self._publish(CallUnheld(at, call.snapshot(), turn.agent, held))

    # ------------------------------------------------------------------ transfers

    def call_transferred(
        self,
        kind: str,
        transferer_uniqueid: str,
        transferee_uniqueid: str,
        *,
        target: str = "",
        at: float,
    ) -> None:
        """A successful ``blind`` or ``attended`` transfer of the caller (CallTransferred).

        The transferer's turn ends (``end == "transfer"``); an attended transfer's target is
        found from the bridges at once, a blind one's when the caller is bridged with it.
        """
        call = self._call_of(transferee_uniqueid) or self._call_of(transferer_uniqueid)
        if call is None:
            return
        self._unhold(call, at)
        last = call.turns[-1] if call.turns else None
        from_agent = last.agent if last is not None else ""
        self._close_turn(call, at, "transfer")
        if last is not None and last.ended_at == at:
            last.end = "transfer"
        call.hangup_by = ""  # the call goes on: who hangs up is decided later
        if call.state == "on_hold":
            call.state = "answered"
        peer = self._agent_peer(call) if kind == "attended" else None
        if peer is not None and peer[0] != from_agent:
            self._start_turn(call, peer[0], peer[1], via=kind, at=at)
            to_agent = peer[0]
        else:
            call.transfer_pending, to_agent = kind, ""
        self._publish(CallTransferred(at, call.snapshot(), kind, from_agent, to_agent, target))

    # ------------------------------------------------------------------ turns

    def _start_turn(
        self, call: Call, interface: str, leg: Leg | None, *, via: str, at: float, name: str = ""
    ) -> None:
        """``interface`` now talks with the caller: a new turn (the open one ends)."""
        self._close_turn(call, at, "transfer")
        call.transfer_pending = ""
        if leg is not None:
            leg.agent = interface
        call.agent = interface
        call.agent_name = name or self._agents.name_of(interface)
        call.turns.append(Turn(interface, call.agent_name, at, via))
        if call.state not in TALKING:
            call.state = "answered"
        self._agent_changed(self._agents.call_started(interface, call.id), at)

    def _agent_peer(self, call: Call) -> tuple[str, Leg] | None:
        """The agent the caller's leg is bridged with, through Local channel pairs:
        (interface, leg) or None."""
        customer = call.legs.get(call.caller_leg)
        if customer is None or not customer.bridge:
            return None
        bridges, seen = [customer.bridge], {customer.uniqueid}
        while bridges:
            bridge = bridges.pop()
            for leg in call.legs.values():
                if leg.uniqueid in seen or leg.bridge != bridge:
                    continue
                seen.add(leg.uniqueid)
                sibling_name = local_sibling(leg.channel)
                if not sibling_name:
                    return (leg.agent or self.interface_of(leg.channel)), leg
                sibling = next((x for x in call.legs.values() if x.channel == sibling_name), None)
                if sibling is not None and sibling.uniqueid not in seen and sibling.bridge:
                    seen.add(sibling.uniqueid)
                    bridges.append(sibling.bridge)
        return None

    def interface_of(self, channel: str) -> str:
        """The queue member a channel belongs to: ``PJSIP/op101-00000005`` → ``PJSIP/op101``;
        ``Local/x@ctx-0000;1`` → ``Local/x@ctx/n``. Falls back to the channel name without its
        sequence suffix."""
        base = channel.rsplit("-", 1)[0]
        for interface in self._agents.interfaces():
            if interface == base or interface.startswith(base + "/"):
                return interface
        return base
