"""FastAGI client: what Asterisk's ``AGI(agi://host:port/script,args…)`` does on the wire.

Connects, sends the ``agi_*`` environment exactly like Asterisk 22 (``agi-session.txt``)
and a blank line, then answers the server's commands line by line until it closes the
connection. Each command is mirrored on AMI as AGIExecStart/AGIExecEnd. Nobody listening,
a timeout or a broken connection gives ``AGISTATUS=FAILURE`` (the dialplan goes on).
A caller hanging up meanwhile sends ``HANGUP`` to the server and gives ``AGISTATUS=HANGUP``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from pbxsim import ami_events as ev
from pbxsim.engine import Engine
from pbxsim.model import Channel

log = logging.getLogger("pbxsim.agi")
MAX_LINE = 8192


@dataclass(frozen=True)
class AgiRequest:
    """One ``AGI()`` application call: the URL's script and the arguments."""

    script: str
    args: tuple[str, ...]


def environment(eng: Engine, ch: Channel, req: AgiRequest) -> bytes:
    """The environment block Asterisk sends first (LF lines, blank line at the end)."""
    cfg = eng.config
    tech = ch.name.split("/", 1)[0]
    lines = [
        ("agi_network", "yes"),
        ("agi_network_script", req.script),
        ("agi_request", f"agi://{cfg.agi_host}:{cfg.agi_port}/{req.script}"),
        ("agi_channel", ch.name),
        ("agi_language", ch.language),
        ("agi_type", tech),
        ("agi_uniqueid", ch.uniqueid),
        ("agi_version", "22.10.1"),
        ("agi_callerid", ch.cid_num),
        ("agi_calleridname", ch.cid_name),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", ch.variables.get("DNID", ch.exten)),
        ("agi_rdnis", "unknown"),
        ("agi_context", ch.context),
        ("agi_extension", ch.exten),
        ("agi_priority", str(ch.priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""),
        ("agi_threadid", str(140300078802624 + (hash(ch.uniqueid) & 0xFFFF) * 4096)),
    ]
    lines += [(f"agi_arg_{i}", a) for i, a in enumerate(req.args, start=1)]
    text = "".join(f"{k}: {_one_line(v)}\n" for k, v in lines) + "\n"
    return text.encode()


def _one_line(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


def split_args(line: str) -> list[str]:
    """Tokenise an AGI command like Asterisk: spaces/tabs separate, double quotes group."""
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = had = False
    for c in line:
        if escaped:
            cur.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted, had = not quoted, True
        elif c in " \t" and not quoted:
            if cur or had:
                out.append("".join(cur))
            cur, had = [], False
        else:
            cur.append(c)
    if cur or had:
        out.append("".join(cur))
    return out


# res_agi's argument-count checks (argv includes the command words) and the first line of
# each command's documented usage; a count outside the range is answered with 520 usage
_ARITY: dict[tuple[str, ...], tuple[int, int, str]] = {
    ("VERBOSE",): (2, 128, "Sends message to the console via verbose message system."),
    ("GET", "VARIABLE"): (3, 3, "Returns '0' if variablename is not set."),
    ("GET", "FULL", "VARIABLE"): (4, 5, "Evaluates the given expression against the channel."),
    ("SET", "VARIABLE"): (4, 4, "Sets a variable to the current channel."),
    ("HANGUP",): (1, 2, "Hangs up the specified channel."),
    ("CHANNEL", "STATUS"): (2, 3, "Returns the status of the specified channelname."),
}
_DEAD = "Command Not Permitted on a dead channel or intercept routine"
_AMI_RESULT = {200: "Success", 510: "Invalid or unknown command", 511: _DEAD, 520: "Usage"}
_LIVE_ONLY = (("ANSWER",), ("CHANNEL", "STATUS"), ("HANGUP",))
"""Commands res_agi refuses (511) once the channel hung up; the others still run."""


def _bad_arity(argv: list[str]) -> str | None:
    """The 520 reply if ``argv`` has a known command with the wrong number of arguments."""
    words = tuple(a.upper() for a in argv[:3])
    for cmd, (low, high, usage) in _ARITY.items():
        if words[: len(cmd)] == cmd and not low <= len(argv) <= high:
            return (
                "520-Invalid command syntax.  Proper usage follows:\n"
                f"{usage}\n520 End of proper usage.\n"
            )
    return None


class AgiSession:
    """Runs one FastAGI exchange for ``ch``; ``run()`` returns ``SUCCESS``, ``FAILURE`` or
    ``HANGUP`` (the caller hung up during the AGI)."""

    def __init__(self, eng: Engine, ch: Channel, req: AgiRequest) -> None:
        self.eng = eng
        self.ch = ch
        self.req = req
        self.hangup_requested = False
        self.dead = False
        """The caller hung up during the AGI (the server was told ``HANGUP``)."""
        # CommandIds are cosmetic: drawing them from eng.rng would shift every later draw
        # (originate outcomes) by however many commands the AGI server happened to send
        self._ids = random.Random(f"agi:{ch.name}")

    async def run(self) -> str:
        """Connect, send the environment, serve commands; deadline ``agi_timeout_s`` (wall).

        Returns the AGISTATUS value; never raises for network errors.
        """
        cfg = self.eng.config
        try:
            async with asyncio.timeout(cfg.agi_timeout_s):
                reader, writer = await asyncio.open_connection(cfg.agi_host, cfg.agi_port)
                try:
                    writer.write(environment(self.eng, self.ch, self.req))
                    await self._serve_watching(reader, writer)
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            log.info("FastAGI failed for %s: %r", self.ch.name, exc)
            return "HANGUP" if self.dead else "FAILURE"
        return "HANGUP" if self.dead else "SUCCESS"

    async def _serve_watching(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """``_serve`` while a watcher tells the server ``HANGUP`` if the caller hangs up."""
        watcher = asyncio.ensure_future(self._tell_hangup(writer))
        try:
            await self._serve(reader, writer)
        finally:
            watcher.cancel()
            await asyncio.wait([watcher])

    async def _tell_hangup(self, writer: asyncio.StreamWriter) -> None:
        call = self.eng.calls.get(self.ch.name)
        if call is None:
            return
        await call.interrupted.wait()
        if call.redirect is None:  # an AMI Hangup, not a Redirect
            self.dead = True
            writer.write(b"HANGUP\n")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line.strip():
                continue
            writer.write(self.execute(line).encode())
            await writer.drain()

    def execute(self, line: str) -> str:
        """Answer one command line (with its AMI AGIExecStart/End pair)."""
        eng, ch = self.eng, self.ch
        cid = self._ids.randrange(1, 2**31)
        shown = line[:MAX_LINE]
        eng.emit(ev.agi_exec_start(ch, cid, shown))
        argv = split_args(line)
        words = tuple(a.upper() for a in argv[:2])
        if self.dead and any(words[: len(cmd)] == cmd for cmd in _LIVE_ONLY):
            reply = f"511 {_DEAD}\n"
        else:
            reply = _bad_arity(argv) or self._dispatch(argv)
        code = int(reply[:3])
        eng.emit(ev.agi_exec_end(ch, cid, shown, code, _AMI_RESULT.get(code, "Failure")))
        return reply

    def _dispatch(self, argv: list[str]) -> str:
        words = [a.upper() for a in argv[:3]]
        if words[:1] == ["VERBOSE"] or words[:1] == ["NOOP"]:
            return "200 result=1\n" if words[0] == "VERBOSE" else "200 result=0\n"
        if words[:2] == ["GET", "VARIABLE"] and len(argv) >= 3:
            return self._get(argv[2])
        if words[:3] == ["GET", "FULL", "VARIABLE"] and len(argv) >= 4:
            return self._get(argv[3].removeprefix("${").removesuffix("}"))
        if words[:2] == ["SET", "VARIABLE"] and len(argv) >= 4:
            self.eng.setvar(self.ch, argv[2], argv[3])
            return "200 result=1\n"
        if words[:1] == ["ANSWER"]:
            if self.ch.state != 6:
                self.eng.answer(self.ch)
            return "200 result=0\n"
        if words[:1] == ["HANGUP"]:
            self.hangup_requested = True
            return "200 result=1\n"
        if words[:2] == ["CHANNEL", "STATUS"]:
            return f"200 result={self.ch.state}\n"
        return "510 Invalid or unknown command\n"

    def _get(self, name: str) -> str:
        ch = self.ch
        builtin = {
            "CALLERID(num)": ch.cid_num,
            "CALLERID(name)": ch.cid_name,
            "UNIQUEID": ch.uniqueid,
        }
        value = ch.variables.get(name)
        if value is None:
            value = ch.variables.get("__" + name, builtin.get(name))
        if value is None:
            value = self.eng.global_vars.get(name)
        if value is None:
            return "200 result=0\n"
        return f"200 result=1 ({_one_line(value)})\n"
