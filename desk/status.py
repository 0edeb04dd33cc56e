"""Operator status (available / paused with a reason / wrap-up), mirrored to Asterisk.

The desk asks Asterisk (AMI ``QueuePause`` on the operator's interface, every queue); what the
operator's browser shows is what Asterisk then reports (``AgentStatusChanged`` from
QueueMemberPause), so a pause set on the phone (``*`` code, another tool) shows up too.
"""

from __future__ import annotations

import logging

from callserver.asterisk.errors import AmiError
from callserver.core.events import AgentStatusChanged, DomainEvent
from callserver.plugin_api import AmiActions, LiveView
from desk import policy
from desk.errors import AsteriskRefused, DeskForbidden
from desk.hub import OperatorHub, dumps
from desk.models import OperatorState

log = logging.getLogger(__name__)


class StatusService:
    def __init__(self, ami: AmiActions, live: LiveView, hub: OperatorHub, *,
                 timeout: float) -> None:  # fmt: skip
        self._ami, self._live, self._hub, self._timeout = ami, live, hub, timeout
        self._known: dict[str, OperatorState] = {}

    def current(self, extension: str) -> OperatorState:
        """The latest state Asterisk reported for ``extension`` (available when unknown)."""
        ext = extension.lower()
        if ext in self._known:
            return self._known[ext]
        for agent in self._live.agents():
            if agent.interface.lower() == ext:
                return policy.state_from_pause(ext, agent.paused, agent.paused_reason)
        return OperatorState(ext, "available")

    async def set(self, extension: str, status: str, reason: str) -> OperatorState:
        """Ask Asterisk to (un)pause ``extension`` in all its queues.

        Raises DeskForbidden (no phone bound), AsteriskRefused (error answer or no answer
        within the AMI timeout)."""
        if not extension:
            raise DeskForbidden(message="no phone extension is bound to this user")
        headers = {"Interface": extension, "Paused": "false" if status == "available" else "true"}
        if status != "available":
            headers["Reason"] = reason
        try:
            reply = await self._ami.send_action("QueuePause", headers, timeout=self._timeout)
        except (AmiError, TimeoutError) as exc:
            raise AsteriskRefused(message=f"QueuePause for {extension} failed: {exc}") from exc
        if (reply.get("Response") or "").lower() != "success":
            raise AsteriskRefused(message=f"Asterisk refused QueuePause: {reply.get('Message')}")
        return OperatorState(extension.lower(), status, reason)  # type: ignore[arg-type]

    def on_event(self, event: DomainEvent) -> None:
        """Bus subscriber: Asterisk's view of pauses reaches the operator's browser."""
        if not isinstance(event, AgentStatusChanged):
            return
        a = event.agent
        state = policy.state_from_pause(a.interface.lower(), a.paused, a.paused_reason)
        if self._known.get(state.extension) != state:
            self._known[state.extension] = state
            self._hub.push_text(state.extension, dumps(state.to_dict()))
