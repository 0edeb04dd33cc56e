"""AMI event builders with the exact names, privileges and field order of Asterisk 22.10.

Each builder returns the complete wire bytes of one event (CRLF lines, closing blank line).
The field orders were taken from the golden transcripts in
``tests/fixtures/asterisk/`` (captured from a real Asterisk 22.10.1); events that never
occurred there (AgentRingNoAnswer, QueueMemberPause …) follow Asterisk's documentation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pbxsim.model import Bridge, Channel
from pbxsim.wire import clean

CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    32: "Circuit/channel congestion",
    34: "Circuit/channel congestion",
}


_now: Callable[[], float] = time.time


def use_clock(now: Callable[[], float]) -> None:
    """Event ``Timestamp`` headers follow ``now`` (the scenario clock): at ``--speed N`` the
    durations a client computes from Timestamps then agree with HoldTime/TalkTime and the ledger,
    as they do on a real Asterisk. One pbxsim per process, so one clock per process."""
    global _now
    _now = now


def _ev(name: str, privilege: str, body: str) -> bytes:
    return (
        f"Event: {name}\r\nPrivilege: {privilege},all\r\nTimestamp: {_now():.6f}\r\n{body}\r\n"
    ).encode()


def _kv(*pairs: tuple[str, object]) -> str:
    return "".join(f"{k}: {clean(v)}\r\n" for k, v in pairs)


def chan_event(name: str, privilege: str, ch: Channel, *extra: tuple[str, object]) -> bytes:
    """Generic ``<snapshot> + extra fields`` event (Newchannel, Newstate, Hangup …)."""
    return _ev(name, privilege, ch.block() + _kv(*extra))


def newchannel(ch: Channel) -> bytes:
    return _ev("Newchannel", "call", ch.block())


def newstate(ch: Channel) -> bytes:
    return _ev("Newstate", "call", ch.block())


def new_connected_line(ch: Channel) -> bytes:
    return _ev("NewConnectedLine", "call", ch.block())


def new_callerid(ch: Channel) -> bytes:
    return _ev(
        "NewCallerid",
        "call",
        ch.block() + "CID-CallingPres: 0 (Presentation Allowed, Not Screened)\r\n",
    )


def varset(ch: Channel, variable: str, value: str) -> bytes:
    return _ev("VarSet", "dialplan", ch.block() + _kv(("Variable", variable), ("Value", value)))


def newexten(ch: Channel, application: str, app_data: str) -> bytes:
    body = _kv(("Extension", ch.exten), ("Application", application), ("AppData", app_data))
    return _ev("Newexten", "dialplan", ch.block() + body)


def hangup_request(ch: Channel, cause: int | None = None) -> bytes:
    extra = "" if cause is None else f"Cause: {cause}\r\n"
    return _ev("HangupRequest", "call", ch.block() + extra)


def soft_hangup_request(ch: Channel, cause: int) -> bytes:
    return _ev("SoftHangupRequest", "call", ch.block() + f"Cause: {cause}\r\n")


def hangup(ch: Channel, cause: int) -> bytes:
    text = CAUSE_TEXT.get(cause, "Unknown")
    return _ev("Hangup", "call", ch.block() + f"Cause: {cause}\r\nCause-txt: {text}\r\n")


def device_state(device: str, state: str) -> bytes:
    return _ev("DeviceStateChange", "call", _kv(("Device", device), ("State", state)))


def agi_exec_start(ch: Channel, command_id: int, command: str) -> bytes:
    return _ev(
        "AGIExecStart", "agi", ch.block() + _kv(("CommandId", command_id), ("Command", command))
    )


def agi_exec_end(ch: Channel, command_id: int, command: str, code: int, result: str) -> bytes:
    body = _kv(
        ("CommandId", command_id), ("Command", command), ("ResultCode", code), ("Result", result)
    )
    return _ev("AGIExecEnd", "agi", ch.block() + body)


def dial(name: str, caller: Channel | None, dest: Channel, *extra: tuple[str, object]) -> bytes:
    """DialBegin/DialState/DialEnd; ``caller`` is None for originated channels."""
    head = caller.block() if caller is not None else ""
    return _ev(name, "call", head + dest.block("Dest") + _kv(*extra))


def agent_event(name: str, caller: Channel, dest_block: str, *extra: tuple[str, object]) -> bytes:
    """AgentCalled/AgentConnect/AgentComplete/AgentRingNoAnswer (class ``agent``)."""
    return _ev(name, "agent", caller.block() + dest_block + _kv(*extra))


def queue_caller(name: str, ch: Channel, *extra: tuple[str, object]) -> bytes:
    """QueueCallerJoin/Leave/Abandon."""
    return _ev(name, "agent", ch.block() + _kv(*extra))


def queue_member(name: str, member_block: str) -> bytes:
    """QueueMemberStatus/Pause/Added/Removed: the member block rendered by the queue."""
    return _ev(name, "agent", member_block)


def bridge_create(br: Bridge) -> bytes:
    return _ev("BridgeCreate", "call", br.block())


def bridge_enter(br: Bridge, ch: Channel) -> bytes:
    return _ev("BridgeEnter", "call", br.block() + ch.block())


def bridge_leave(br: Bridge, ch: Channel) -> bytes:
    return _ev("BridgeLeave", "call", br.block() + ch.block())


def bridge_destroy(br: Bridge) -> bytes:
    return _ev("BridgeDestroy", "call", br.block())


def local_bridge(one: Channel, two: Channel) -> bytes:
    tail = _kv(("Context", one.context), ("Exten", one.exten), ("LocalOptimization", "Yes"))
    body = one.block("LocalOne") + two.block("LocalTwo") + tail
    return _ev("LocalBridge", "call", body)


def dtmf_begin(ch: Channel, digit: str, direction: str) -> bytes:
    return _ev("DTMFBegin", "dtmf", ch.block() + _kv(("Digit", digit), ("Direction", direction)))


def dtmf_end(ch: Channel, digit: str, duration_ms: int, direction: str) -> bytes:
    body = _kv(("Digit", digit), ("DurationMs", duration_ms), ("Direction", direction))
    return _ev("DTMFEnd", "dtmf", ch.block() + body)


def _fmt_time(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else ""


def cdr_fields(
    ch: Channel, dest_channel: str, disposition: str, end: float
) -> tuple[tuple[str, object], ...]:
    """The fields of ``ch``'s Cdr event (also the ``cdr`` table row, ``pbxsim.durable``)."""
    start = ch.created
    answer = ch.answered
    billable = int(end - answer) if answer else 0
    return (
        ("AccountCode", ""),
        ("Source", ch.cid_num if ch.cid_num != "<unknown>" else ""),
        ("Destination", ch.variables.get("CDR_DST", ch.exten)),
        ("DestinationContext", ch.variables.get("CDR_DCONTEXT", ch.context)),
        ("CallerID", _callerid(ch)),
        ("Channel", ch.name),
        ("DestinationChannel", dest_channel),
        ("LastApplication", ch.app),
        ("LastData", ch.app_data),
        ("StartTime", _fmt_time(start)),
        ("AnswerTime", _fmt_time(answer)),
        ("EndTime", _fmt_time(end)),
        ("Duration", int(end - start)),
        ("BillableSeconds", billable),
        ("Disposition", disposition),
        ("AMAFlags", "DOCUMENTATION"),
        ("UniqueID", ch.uniqueid),
        ("UserField", ""),
    )


def cdr(ch: Channel, dest_channel: str, disposition: str, end: float) -> bytes:
    """The Cdr event of ``ch`` (Source/Destination from its dialplan position)."""
    return _ev("Cdr", "cdr", _kv(*cdr_fields(ch, dest_channel, disposition, end)))


def _callerid(ch: Channel) -> str:
    num = "" if ch.cid_num == "<unknown>" else ch.cid_num
    name = "" if ch.cid_name == "<unknown>" else ch.cid_name
    return f'"{name}" <{num}>'


def originate_response(
    action_id: str, ok: bool, target: tuple[tuple[str, str], ...], reason: int, ch: Channel | None
) -> bytes:
    """OriginateResponse; ``target`` is (Channel, Application, Data) or the Context/Exten pairs."""
    pairs: list[tuple[str, object]] = []
    if action_id:
        pairs.append(("ActionID", action_id))
    pairs.append(("Response", "Success" if ok else "Failure"))
    # success names the channel that was created, failure the one that was requested
    pairs.extend((k, ch.name if ch is not None and k == "Channel" else v) for k, v in target)
    pairs.append(("Reason", reason))
    pairs.append(("Uniqueid", ch.uniqueid if ch else "<null>"))
    pairs.append(("CallerIDNum", ch.cid_num if ch else "<unknown>"))
    pairs.append(("CallerIDName", ch.cid_name if ch else "<unknown>"))
    return _ev("OriginateResponse", "call", _kv(*pairs))


def rtcp_sent(ch: Channel, ssrc: int, packets: int) -> bytes:
    """A receiver-report-only RTCPSent (class ``reporting``) for a bridged SIP leg."""
    body = _kv(
        ("To", "127.0.0.1:16001"),
        ("From", "127.0.0.1:10503"),
        ("MES", "88.1"),
        ("SSRC", f"0x{ssrc:08x}"),
        ("PT", "200(SR)"),
        ("ReportCount", 1),
        ("SentNTP", f"{time.time():.6f}"),
        ("SentRTP", packets * 160),
        ("SentPackets", packets),
        ("SentOctets", packets * 160),
        ("Report0SourceSSRC", f"0x{(ssrc * 7) & 0xFFFFFFFF:08x}"),
        ("Report0FractionLost", 0),
        ("Report0CumulativeLost", 0),
        ("Report0HighestSequence", 59000 + packets),
        ("Report0SequenceNumberCycles", 0),
        ("Report0IAJitter", 3),
        ("Report0LSR", 0),
        ("Report0DLSR", "0.0000"),
    )
    return _ev("RTCPSent", "reporting", ch.block() + body)


def blind_transfer(
    transferer: Channel, transferee: Channel, br: Bridge, ctx: str, exten: str
) -> bytes:
    """BlindTransfer (``ami-blind-transfer.txt``): an AMI-requested transfer is external."""
    body = (
        "Result: Success\r\n"
        + transferer.block("Transferer")
        + transferee.block("Transferee")
        + br.block()
        + _kv(("IsExternal", "Yes"), ("Context", ctx), ("Extension", exten))
    )
    return _ev("BlindTransfer", "call", body)


def _prefixed_bridge(br: Bridge, prefix: str) -> str:
    return "".join(f"{prefix}{line}\r\n" for line in br.block().split("\r\n") if line)


def attended_transfer(
    transferer: Channel, orig: Bridge, second: Bridge, transferee: Channel, dest: Bridge
) -> bytes:
    """AttendedTransfer with DestType Bridge (``ami-attended-transfer.txt``)."""
    body = (
        "Result: Success\r\n"
        + transferer.block("OrigTransferer")
        + _prefixed_bridge(orig, "Orig")
        + transferer.block("SecondTransferer")
        + _prefixed_bridge(second, "Second")
        + transferee.block("Transferee")
        + _kv(("IsExternal", "No"), ("DestType", "Bridge"), ("DestBridgeUniqueid", dest.uniqueid))
    )
    return _ev("AttendedTransfer", "call", body)


def bridge_merge(to: Bridge, frm: Bridge) -> bytes:
    return _ev("BridgeMerge", "call", _prefixed_bridge(to, "To") + _prefixed_bridge(frm, "From"))
