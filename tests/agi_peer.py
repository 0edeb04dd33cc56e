"""A test-side FastAGI peer that speaks like Asterisk (see fixtures/asterisk/agi-session.txt):
connects, sends the full ``agi_*`` environment, answers each command the way Asterisk 22 does,
and records what it was asked. Shares no code with ``callserver.asterisk`` on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

BASE_ENV: dict[str, str] = {
    "agi_network": "yes",
    "agi_network_script": "route",
    "agi_request": "agi://127.0.0.1:4573/route",
    "agi_channel": "PJSIP/trunk-00000004",
    "agi_language": "en",
    "agi_type": "PJSIP",
    "agi_uniqueid": "1795413075.4",
    "agi_version": "22.10.1",
    "agi_callerid": "79161234567",
    "agi_calleridname": "79161234567",
    "agi_callingpres": "0",
    "agi_callingani2": "0",
    "agi_callington": "0",
    "agi_callingtns": "0",
    "agi_dnid": "74951234567",
    "agi_rdnis": "unknown",
    "agi_context": "route-inbound",
    "agi_extension": "74951234567",
    "agi_priority": "5",
    "agi_enhanced": "0.0",
    "agi_accountcode": "",
    "agi_threadid": "140300078802624",
    "agi_arg_1": "74951234567",
    "agi_arg_2": "source-a",
}


def parse_args(line: str) -> list[str]:
    """Split a command line like Asterisk's ``parse_args``: quotes group, backslash escapes."""
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = started = False
    for ch in line:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = started = True
        elif ch == '"':
            quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                out.append("".join(cur))
                cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if started:
        out.append("".join(cur))
    return out


@dataclass
class AgiCall:
    commands: list[list[str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    closed_by_server: bool = False


async def agi_call(
    port: int,
    env: Mapping[str, str] | None = None,
    *,
    channel_vars: Mapping[str, str] | None = None,
    fail_command: str | None = None,
    hangup_after: int | None = None,
    deadline: float = 5.0,
    call: AgiCall | None = None,
) -> AgiCall:
    """Run one FastAGI session against ``127.0.0.1:port``. ``env`` entries replace BASE_ENV's
    (a None-like empty value is sent as is). ``fail_command`` (e.g. ``SET``) is answered with
    510; ``hangup_after`` sends ``HANGUP`` and closes after that many commands. ``call``: the
    record to fill (a test watching the session while it runs passes its own)."""
    full = {**BASE_ENV, **(env or {})}
    known = dict(channel_vars or {})
    call = AgiCall() if call is None else call
    async with asyncio.timeout(deadline):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write("".join(f"{k}: {v}\n" for k, v in full.items()).encode() + b"\n")
            while True:
                line = await reader.readline()
                if not line:
                    call.closed_by_server = True
                    return call
                args = parse_args(line.decode("utf-8").rstrip("\n"))
                call.commands.append(args)
                if hangup_after is not None and len(call.commands) > hangup_after:
                    writer.write(b"HANGUP\n")
                    return call
                writer.write(_reply(args, known, call, fail_command).encode())
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _reply(args: list[str], known: dict[str, str], call: AgiCall, fail: str | None) -> str:
    verb = args[0].upper() if args else ""
    if fail is not None and verb == fail:
        return "510 Invalid or unknown command\n"
    if verb == "SET" and len(args) >= 4:
        call.variables[args[2]] = args[3]
        known[args[2]] = args[3]
        return "200 result=1\n"
    if verb == "GET" and len(args) >= 3:
        value = known.get(args[2])
        return "200 result=0\n" if value is None else f"200 result=1 ({value})\n"
    if verb == "VERBOSE":
        return "200 result=1\n"
    return "510 Invalid or unknown command\n"
