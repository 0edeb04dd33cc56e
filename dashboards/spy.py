"""Listen, whisper, barge: a supervisor's phone is rung by AMI ``Originate`` into
``ChanSpy`` on the operator's channel, options ``q`` (quiet: listen), ``qw`` (whisper to the
operator only) or ``qB`` (barge: talk to both). Every attempt is audited
(``dashboards_spy_audit``), refused ones included.

ChanSpy matches channels by name prefix, so the operator's interface gets a trailing ``-``
(``PJSIP/op101-`` matches ``PJSIP/op101-0000002a`` but never ``PJSIP/op1010-…``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from callserver.asterisk.errors import AmiError
from callserver.plugin_api import AmiActions, LiveView
from dashboards.errors import InvalidReportRequest, OperatorNotInCall, SpyFailed, UnknownOperator

MODES = {"listen": "q", "whisper": "qw", "barge": "qB"}
INTERFACE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.@+]{1,64}$")
"""An Asterisk interface such as ``PJSIP/op101``: no commas, pipes or spaces, so nothing can be
smuggled into the application's arguments."""


class SpyAudit(Protocol):
    async def audit_spy(self, row: dict[str, Any]) -> int: ...


class SpyService:
    def __init__(self, ami: AmiActions, live: LiveView, audit: SpyAudit,
                 clock: Callable[[], float], timeout: float) -> None:  # fmt: skip
        self._ami, self._live, self._audit = ami, live, audit
        self._clock, self._timeout = clock, timeout

    async def spy(self, *, actor: str, supervisor: str, agent: str, mode: str) -> dict[str, Any]:
        """Ring ``supervisor`` into ``mode`` on ``agent``'s live call. Raises InvalidReportRequest
        (bad mode/interface), UnknownOperator, OperatorNotInCall, SpyFailed (Asterisk refused
        or timed out after ``timeout`` seconds). Returns the audit row."""
        if mode not in MODES:
            raise InvalidReportRequest(message=f"mode must be one of {', '.join(MODES)}",
                                       field="mode")  # fmt: skip
        for name, value in (("supervisor", supervisor), ("agent", agent)):
            if not INTERFACE.match(value):
                raise InvalidReportRequest(message=f"{name}: not an interface like PJSIP/op101",
                                           field=name)  # fmt: skip
        call_id = self._live_call(agent)
        row = {"at": self._clock(), "actor": actor, "supervisor": supervisor, "agent": agent,
               "mode": mode, "call_id": call_id, "result": "started", "reason": ""}  # fmt: skip
        try:
            response = await self._ami.originate(self._headers(supervisor, agent, mode),
                                                 timeout=self._timeout)  # fmt: skip
        except AmiError as exc:
            row.update(result="failed", reason=type(exc).__name__)
            await self._audit.audit_spy(row)
            raise SpyFailed(message=f"ChanSpy originate failed: {exc}", agent=agent) from exc
        if (response.get("Response") or "").lower() != "success":
            row.update(result="failed", reason=(response.get("Reason") or "")[:40])
            await self._audit.audit_spy(row)
            raise SpyFailed(message="ChanSpy originate refused", agent=agent)
        row["id"] = await self._audit.audit_spy(row)
        return row

    def _live_call(self, agent: str) -> str:
        if agent not in {a.interface for a in self._live.agents()}:
            raise UnknownOperator(message="no such operator on the board", agent=agent)
        for call in self._live.calls():
            if call.agent == agent and call.state == "answered":
                return call.id
        raise OperatorNotInCall(message="the operator is not in a call", agent=agent)

    def _headers(self, supervisor: str, agent: str, mode: str) -> dict[str, str]:
        return {
            "Channel": supervisor,
            "Application": "ChanSpy",
            "Data": f"{agent}-,{MODES[mode]}",
            "CallerID": f'"{mode}" <{agent.split("/", 1)[1]}>',
            "Timeout": str(int(self._timeout * 1000)),
        }
