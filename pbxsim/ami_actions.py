"""AMI actions after Login: responses shaped like Asterisk 22's (see ``ami-login.txt``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pbxsim import ami_events as ev
from pbxsim.ami_lists import core_show_channels, queue_status, queue_summary, status
from pbxsim.ami_server import Session
from pbxsim.dialplan import Dialplan
from pbxsim.engine import Engine
from pbxsim.originate import originate, parse_callerid
from pbxsim.originate_spec import OriginatePolicy, OriginateRequest
from pbxsim.queue_events import agent_status
from pbxsim.queues import Member
from pbxsim.wire import every, first, message

Pairs = list[tuple[str, str]]


class Actions:
    """Dispatches one action to its handler; unknown → ``Invalid/unknown command``."""

    def __init__(self, eng: Engine, dp: Dialplan, policy: OriginatePolicy) -> None:
        self.eng = eng
        self.dp = dp
        self.policy = policy
        self._table: dict[str, Callable[[Pairs, list[tuple[str, object]]], list[bytes]]] = {
            "ping": self.ping,
            "coresettings": self.core_settings,
            "originate": self.originate,
            "hangup": self.hangup,
            "redirect": self.redirect,
            "setvar": self.setvar,
            "getvar": self.getvar,
            "queuestatus": lambda a, h: queue_status(self.eng, a, h),
            "queuesummary": lambda a, h: queue_summary(self.eng, a, h),
            "coreshowchannels": lambda a, h: core_show_channels(self.eng, a, h),
            "status": lambda a, h: status(self.eng, a, h),
            "queueadd": self.queue_add,
            "queueremove": self.queue_remove,
            "queuepause": self.queue_pause,
            "blindtransfer": lambda a, h: self.transfer(a, h, "blind"),
            "atxfer": lambda a, h: self.transfer(a, h, "attended"),
        }

    def _emit_later(self, data: bytes) -> None:
        """Emit an action's event after its response, as Asterisk's event thread does."""
        asyncio.get_running_loop().call_soon(self.eng.emit, data)

    async def __call__(self, session: Session, action: Pairs) -> list[bytes]:
        del session
        aid = first(action, "ActionID")
        head: list[tuple[str, object]] = [("ActionID", aid)] if aid else []
        fn = self._table.get(first(action, "Action").lower())
        if fn is None:
            return [_error(head, "Invalid/unknown command")]
        return fn(action, head)

    def ping(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        return [
            message(
                [
                    ("Response", "Success"),
                    *head,
                    ("Ping", "Pong"),
                    ("Timestamp", f"{time.time():.6f}"),
                ]
            )
        ]

    def core_settings(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        return [
            message(
                [
                    ("Response", "Success"),
                    *head,
                    ("AMIversion", "11.0.0"),
                    ("AsteriskVersion", "22.10.1"),
                    ("SystemName", ""),
                    ("CoreMaxCalls", 0),
                    ("CoreMaxLoadAvg", "0.000000"),
                    ("CoreRunUser", ""),
                    ("CoreRunGroup", ""),
                    ("CoreMaxFilehandles", 0),
                    ("CoreRealTimeEnabled", "No"),
                    ("CoreCDRenabled", "Yes"),
                    ("CoreHTTPenabled", "No"),
                    ("SoundsSearchCustomDir", "No"),
                ]
            )
        ]

    def originate(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        channel = first(a, "Channel")
        if not channel:
            return [_error(head, "Channel not specified")]
        app, exten = first(a, "Application"), first(a, "Exten")
        if not app and not exten:
            return [_error(head, "Exten not specified")]
        try:
            timeout = float(first(a, "Timeout", "30000")) / 1000.0
            prio = int(first(a, "Priority", "1") or 1)
        except ValueError:
            return [_error(head, "Invalid timeout or priority")]
        variables: list[tuple[str, str]] = []
        for raw in every(a, "Variable"):
            for item in raw.split(","):
                k, sep, v = item.partition("=")
                if sep and k.strip():
                    variables.append((k.strip(), v))
        req = OriginateRequest(
            channel=channel,
            action_id=first(a, "ActionID"),
            application=app,
            data=first(a, "Data"),
            context=first(a, "Context"),
            exten=exten,
            priority=prio,
            timeout_s=timeout,
            callerid=parse_callerid(first(a, "CallerID")),
            variables=tuple(variables),
        )
        self.eng.spawn(originate(self.eng, self.dp, self.policy, req), name=f"originate {channel}")
        return [
            message([("Response", "Success"), *head, ("Message", "Originate successfully queued")])
        ]

    def hangup(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        try:
            cause = int(first(a, "Cause", "16") or 16)
        except ValueError:
            cause = 16
        ch = self.eng.find(first(a, "Channel"))
        if ch is None or not self.eng.request_hangup(ch.name, cause):
            return [_error(head, "No such channel")]
        return [message([("Response", "Success"), *head, ("Message", "Channel Hungup")])]

    def transfer(self, a: Pairs, head: list[tuple[str, object]], kind: str) -> list[bytes]:
        """BlindTransfer / Atxfer of an operator's channel connected to a queue caller
        (``ami-blind-transfer.txt``, ``ami-attended-transfer.txt``). Other channels (the
        caller's, a ringing one): ``Transfer failed`` — pbxsim models the operator side."""
        name, exten = first(a, "Channel"), first(a, "Exten")
        if not name:
            return [_error(head, "No channel specified")]
        if not exten:
            return [_error(head, "No extension specified")]
        ch = self.eng.find(name)
        if ch is None:
            missing = "No such channel" if kind == "blind" else "Channel specified does not exist"
            return [_error(head, missing)]
        context = first(a, "Context") or ch.variables.get("TRANSFER_CONTEXT", "operators")
        if not self.eng.request_transfer(ch.name, kind, exten, context):
            return [_error(head, "Transfer failed")]
        text = "Transfer succeeded" if kind == "blind" else "Atxfer successfully queued"
        return [message([("Response", "Success"), *head, ("Message", text)])]

    def redirect(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        ch = self.eng.find(first(a, "Channel"))
        if ch is None:
            return [_error(head, "Channel specified does not exist")]
        try:
            prio = int(first(a, "Priority", "1") or 1)
        except ValueError:
            return [_error(head, "Invalid priority")]
        target = (first(a, "Context"), first(a, "Exten"), prio)
        if not self.eng.request_redirect(ch.name, target):
            return [_error(head, "Channel specified does not exist")]
        return [message([("Response", "Success"), *head, ("Message", "Redirect successful")])]

    def setvar(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        name, value, chan = first(a, "Variable"), first(a, "Value"), first(a, "Channel")
        if not name:
            return [_error(head, "No variable specified")]
        if chan:
            ch = self.eng.find(chan)
            if ch is None:
                return [_error(head, "Channel not found")]
            self.eng.setvar(ch, name, value)
        else:
            self.eng.global_vars[name] = value
        return [message([("Response", "Success"), *head, ("Message", "Variable Set")])]

    def getvar(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        name, chan = first(a, "Variable"), first(a, "Channel")
        if not name:
            return [_error(head, "No variable specified")]
        if chan:
            ch = self.eng.find(chan)
            if ch is None:
                return [_error(head, "No such channel")]
            value = ch.variables.get(name.lstrip("_"), "")
        else:
            value = self.eng.global_vars.get(name, "")
        return [message([("Response", "Success"), *head, ("Variable", name), ("Value", value)])]

    def queue_add(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        q = self.eng.queues.get(first(a, "Queue"))
        iface = first(a, "Interface")
        agent = self.eng.agents.get(iface.partition("/")[2])
        if q is None or agent is None:
            return [_error(head, "Unable to add interface to queue: No such queue")]
        if q.member(iface) is not None:
            return [_error(head, "Unable to add interface: Already there")]
        paused = first(a, "Paused").lower() in ("1", "true", "yes")
        m = Member(agent, membership="dynamic", paused=paused, ringinuse=q.ringinuse)
        q.members.append(m)
        self._emit_later(ev.queue_member("QueueMemberAdded", m.block(q.name)))
        asyncio.get_running_loop().call_soon(agent_status, self.eng, agent)
        return [message([("Response", "Success"), *head, ("Message", "Added interface to queue")])]

    def queue_remove(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        q = self.eng.queues.get(first(a, "Queue"))
        if q is None:
            return [_error(head, "Unable to remove interface from queue: No such queue")]
        m = q.member(first(a, "Interface"))
        if m is None:
            return [_error(head, "Unable to remove interface: Not there")]
        q.members.remove(m)
        self._emit_later(ev.queue_member("QueueMemberRemoved", m.block(q.name)))
        q.notify()
        return [
            message([("Response", "Success"), *head, ("Message", "Removed interface from queue")])
        ]

    def queue_pause(self, a: Pairs, head: list[tuple[str, object]]) -> list[bytes]:
        iface, qname = first(a, "Interface"), first(a, "Queue")
        paused = first(a, "Paused").lower() in ("1", "true", "yes")
        found = [
            (q, m)
            for q in self.eng.queues.values()
            if not qname or q.name == qname
            if (m := q.member(iface)) is not None
        ]
        if not found:
            return [_error(head, "Interface not found")]
        for q, m in found:
            m.paused, m.paused_reason = paused, first(a, "Reason") if paused else ""
            m.last_pause = int(time.time()) if paused else m.last_pause
            self._emit_later(ev.queue_member("QueueMemberPause", m.block(q.name)))
            q.notify()
        text = "Interface paused successfully" if paused else "Interface unpaused successfully"
        return [message([("Response", "Success"), *head, ("Message", text)])]


def _error(head: list[tuple[str, object]], text: str) -> bytes:
    return message([("Response", "Error"), *head, ("Message", text)])
