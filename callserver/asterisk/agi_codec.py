"""Sans-IO codec for FastAGI: the ``agi_*`` environment, command replies, command encoding.

``AgiCodec.feed(data)`` takes raw bytes as they come off the socket, in chunks of any size, and
returns the complete messages they finish: first one ``AgiEnvironment`` (the ``agi_*: value``
lines up to the blank line), then ``AgiReply`` (``200 result=1 (value)``, ``510 …``, ``511 …``,
multi-line ``520-…`` … ``520 End of proper usage.``) and ``AgiHangupSignal`` (the ``HANGUP`` line
Asterisk sends when the channel hangs up). Lines are split on bytes and only complete lines are
decoded, so a multibyte (Cyrillic) character split across TCP reads survives; bytes that are
not UTF-8 become U+FFFD instead of being dropped. Lines, the environment and multi-line replies
have size limits; anything that is not FastAGI raises ``AgiProtocolError`` (the codec is then
unusable).

``encode_command(*parts)`` builds one command line. Each part becomes exactly one argument of
Asterisk's ``parse_args`` (res_agi.c): a plain word (``[A-Za-z0-9_.:/@+=-]+``) goes bare, anything
else is double-quoted with ``"`` and ``\\`` escaped; control characters (CR, LF, NUL, …) are
replaced by spaces. A plain word and its quoted form are the same argument to Asterisk, so every
part is data: an untrusted value like ``x\\nHANGUP`` or ``a" b`` can never become a second command
or extra arguments. Lines that would not fit Asterisk's 2048-byte read buffer are refused, since the
tail of an over-long line would be read as the next command.

No I/O here: ``agi_server`` owns the socket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl

from callserver.asterisk.errors import AgiCommandTooLong, AgiProtocolError

MAX_COMMAND_BYTES = 2047
"""Longest command line (bytes, newline included): res_agi.c reads commands with
``fgets`` into ``char buf[AGI_BUF_LEN]`` (2048), so 2047 bytes is all one read can hold."""

DEFAULT_MAX_LINE = 8192
"""Bytes one received line may take (the newline excluded)."""
DEFAULT_MAX_ENV_BYTES = 64 * 1024
"""Bytes the whole environment may take."""
DEFAULT_MAX_ENV_LINES = 512
"""Environment lines (Asterisk sends ~25 plus one per argument; MAX_ARGS is 128)."""
DEFAULT_MAX_REPLY_LINES = 256
"""Lines one multi-line (``520-``) reply may take."""

_ENV_KEYS = (
    *("network_script", "request", "channel", "uniqueid", "callerid", "calleridname", "dnid"),
    *("rdnis", "context", "extension", "priority", "language", "type", "accountcode", "version"),
)
_ENV_FIELDS = tuple((key, "agi_" + key) for key in _ENV_KEYS)
_ENV_KEY = re.compile(r"agi_[a-z0-9_]+")
_ENV_PAIR = re.compile(r"^(agi_[a-z0-9_]+): ?(.*)$", re.MULTILINE)
"""One whole environment line (``key: value``) in a block of lines without CR."""
_ENV_PAIR_CR = re.compile(r"^(agi_[a-z0-9_]+): ?(.*?)\r?$", re.MULTILINE)
"""The same where lines may end in CR (half as fast: the lazy ``.*?``)."""
_ARG_KEY = re.compile(r"agi_arg_([1-9][0-9]{0,3})")
_REPLY = re.compile(r"([0-9]{3})([ -])(.*)", re.DOTALL)
_BARE = re.compile(r"[A-Za-z0-9_.:/@+=-]+")
_QUOTED = str.maketrans({**{i: " " for i in (*range(32), 127)}, "\\": "\\\\", '"': '\\"'})
"""Inside double quotes: control characters become spaces, ``\\`` and ``"`` are escaped."""


@dataclass(frozen=True)
class AgiEnvironment:
    """The ``agi_*`` variables Asterisk sends when a FastAGI session starts.

    Field names are the keys without ``agi_`` (``agi_callerid`` → ``callerid``); missing keys are
    ``""``. ``args`` are ``agi_arg_1`` … in order; ``raw`` keeps every key as sent (``agi_``
    prefix included). ``params`` are the query parameters of the script
    (``agi://host/route?x=y`` → ``{"x": "y"}``; a repeated key keeps its last value).
    Every value is untrusted (caller ID and name come from the carrier).
    """

    network_script: str = ""
    request: str = ""
    channel: str = ""
    uniqueid: str = ""
    callerid: str = ""
    calleridname: str = ""
    dnid: str = ""
    rdnis: str = ""
    context: str = ""
    extension: str = ""
    priority: str = ""
    language: str = ""
    type: str = ""
    accountcode: str = ""
    version: str = ""
    args: tuple[str, ...] = ()
    raw: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def script(self) -> str:
        """The handler name: ``network_script`` without leading ``/`` and without the query."""
        return script_name(self.network_script)


@dataclass(frozen=True)
class AgiReply:
    """One reply to a command.

    ``code`` is the status (200, 510, 511, 520 …); ``result`` the text after ``result=`` up to the
    next space (``"1"``, ``"0"``, ``"-1"``; ``""`` when absent); ``data`` the text in the
    parentheses after it (``200 result=1 (source-a)`` → ``"source-a"``) or None; ``text`` the whole
    reply, lines joined with ``\\n`` for a multi-line reply.
    """

    code: int
    result: str
    data: str | None
    text: str


@dataclass(frozen=True)
class AgiHangupSignal:
    """The ``HANGUP`` line: the channel hung up (Asterisk may still answer commands with 511)."""


AgiMessage = AgiEnvironment | AgiReply | AgiHangupSignal


def script_name(network_script: str) -> str:
    """``/route?x=y`` → ``route``: the dispatch key of a script."""
    return network_script.partition("?")[0].lstrip("/")


def build_environment(raw: Mapping[str, str]) -> AgiEnvironment:
    """Make an ``AgiEnvironment`` from ``agi_*`` keys (``raw`` is copied)."""
    frozen = MappingProxyType(dict(raw))
    values = {key: raw.get(raw_key, "") for key, raw_key in _ENV_FIELDS}
    numbered: list[tuple[int, str]] = []
    for key, value in raw.items():
        if key.startswith("agi_arg_") and (match := _ARG_KEY.fullmatch(key)):
            numbered.append((int(match.group(1)), value))
    query = values["network_script"].partition("?")[2]
    params = MappingProxyType(dict(parse_qsl(query, keep_blank_values=True)) if query else {})
    return AgiEnvironment(
        **values, args=tuple(v for _, v in sorted(numbered)), raw=frozen, params=params
    )


def parse_reply(lines: list[str]) -> AgiReply:
    """Build an ``AgiReply`` from its lines (the first one starts with the status code).

    Raises AgiProtocolError when the first line has no three-digit status.
    """
    match = _REPLY.fullmatch(lines[0])
    if match is None:
        raise AgiProtocolError(message="AGI reply without a status code", line=lines[0][:200])
    code = int(match.group(1))
    text = "\n".join(lines)
    if len(lines) > 1:
        return AgiReply(code=code, result="", data=None, text=text)
    rest = match.group(3)
    if not rest.startswith("result="):
        return AgiReply(code=code, result="", data=None, text=text)
    return _result_reply(code, text, rest[len("result=") :])


def _result_reply(code: int, text: str, after: str) -> AgiReply:
    """The reply whose one line is ``text``; ``after`` is what follows its ``result=``."""
    result, _, tail = after.partition(" ")
    data: str | None = None
    if tail.startswith("("):
        end = tail.rfind(")")
        data = tail[1:end] if end > 0 else tail[1:]
    return AgiReply(code=code, result=result, data=data, text=text)


_PLAIN_REPLIES = {
    line.encode() + b"\n": AgiReply(code=200, result=result, data=None, text=line)
    for result in ("0", "1", "-1")
    for line in (f"200 result={result}",)
}
"""Whole reads that are exactly one common reply (``SET VARIABLE`` answers ``200 result=1``):
AgiReply is immutable, so one shared instance per line is returned without parsing."""


def quote_arg(value: str) -> str:
    """One ``parse_args`` argument for ``value``: bare when a plain word, else double-quoted.

    Control characters (CR, LF, NUL, TAB, DEL …) become spaces, so the result never ends a line.
    """
    if _BARE.fullmatch(value):  # a plain word has no control characters to replace
        return value
    return '"' + value.translate(_QUOTED) + '"'


def encode_command(*parts: str) -> bytes:
    """One command line, UTF-8, ending in ``\\n``: each part is exactly one argument.

    ``encode_command("GET", "VARIABLE", "AD_SOURCE")`` → ``b"GET VARIABLE AD_SOURCE\\n"``; pass the
    command's words as separate parts (a part ``"GET VARIABLE"`` would be one quoted argument).
    Raises ValueError without parts, AgiCommandTooLong when the line exceeds MAX_COMMAND_BYTES.
    """
    if not parts:
        raise ValueError("an AGI command needs at least one word")
    line = (" ".join(map(quote_arg, parts)) + "\n").encode("utf-8")
    if len(line) > MAX_COMMAND_BYTES:
        raise AgiCommandTooLong(
            message="AGI command line longer than Asterisk reads at once",
            command=quote_arg(parts[0]),
            size=len(line),
            limit=MAX_COMMAND_BYTES,
        )
    return line


class AgiCodec:
    """Incremental FastAGI parser for the bytes Asterisk sends to the AGI server.

    ``feed`` returns the messages completed by ``data`` (an ``AgiEnvironment`` first, then replies
    and hang-up signals) and raises AgiProtocolError on input that is not FastAGI or exceeds a
    limit. ``eof`` tells whether a partial message was pending when the peer closed.
    """

    def __init__(
        self,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_env_bytes: int = DEFAULT_MAX_ENV_BYTES,
        max_env_lines: int = DEFAULT_MAX_ENV_LINES,
        max_reply_lines: int = DEFAULT_MAX_REPLY_LINES,
    ) -> None:
        self._max_line = max_line
        self._max_env_bytes = max_env_bytes
        self._max_env_lines = max_env_lines
        self._max_reply_lines = max_reply_lines
        self._buf = bytearray()
        self._env: dict[str, str] | None = {}
        self._env_bytes = 0
        self._multi: list[str] = []
        self._failed = False

    @property
    def in_environment(self) -> bool:
        """True until the environment's blank line has been read."""
        return self._env is not None

    def eof(self) -> bool:
        """True when the stream ended cleanly between replies (after the environment)."""
        return self._env is None and not self._multi and not self._buf

    def feed(self, data: bytes) -> list[AgiMessage]:
        """Parse ``data`` (any chunk size); return the messages it completes, in order."""
        if self._failed:
            raise AgiProtocolError(message="AGI codec used after a protocol error")
        if self._env is None and not self._buf and not self._multi:
            plain = _PLAIN_REPLIES.get(data)
            if plain is not None:
                return [plain]
        self._buf += data
        out: list[AgiMessage] = []
        start = 0
        try:
            if self._env is not None and (env := self._whole_environment()) is not None:
                out.append(env)
            while (end := self._buf.find(b"\n", start)) >= 0:
                self._check_line(end - start)
                if self._env is not None:
                    self._env_bytes += end - start + 1
                line = self._buf[start:end].decode("utf-8", "replace")
                start = end + 1
                message = self._line(line[:-1] if line.endswith("\r") else line)
                if message is not None:
                    out.append(message)
            del self._buf[:start]
            self._check_line(len(self._buf))
            if self._env is not None:
                self._check_env(self._env_bytes + len(self._buf), len(self._env))
        except AgiProtocolError:
            self._failed = True
            raise
        return out

    def _whole_environment(self) -> AgiEnvironment | None:
        """When the buffer holds the rest of the environment up to its blank line and it is
        well-formed and within every limit, parse it with one regex pass, consume it and return
        the environment. Otherwise None: the line-by-line path parses it (and names the error)."""
        assert self._env is not None
        buf = self._buf
        ends = [p for p in (buf.find(b"\n\n"), buf.find(b"\n\r\n")) if p >= 0]
        if not ends or buf.startswith((b"\n", b"\r\n")):
            return None
        end = min(ends)
        used = end + (2 if buf[end + 1] == 10 else 3)  # the blank line included
        if end > self._max_line or self._env_bytes + end + 1 > self._max_env_bytes:
            return None  # a line may be too long, or the total is: let the slow path decide
        text = buf[:end].decode("utf-8", "replace")
        lines = text.count("\n") + 1
        if len(self._env) + lines > self._max_env_lines:
            return None
        pairs = (_ENV_PAIR_CR if "\r" in text else _ENV_PAIR).findall(text)
        if len(pairs) != lines:
            return None  # some line is not ``agi_key: value``
        env = self._env
        env.update(pairs)
        del buf[:used]
        self._env = None
        return build_environment(env)

    def _check_line(self, size: int) -> None:
        if size > self._max_line:
            raise AgiProtocolError(message="AGI line too long", size=size, limit=self._max_line)

    def _check_env(self, size: int, lines: int) -> None:
        if size > self._max_env_bytes or lines > self._max_env_lines:
            raise AgiProtocolError(
                message="AGI environment too large",
                limit_bytes=self._max_env_bytes,
                limit_lines=self._max_env_lines,
            )

    def _line(self, line: str) -> AgiMessage | None:
        if self._env is not None:
            return self._env_line(self._env, line)
        if self._multi:
            return self._multi_line(line)
        if line.startswith("200 result="):  # the usual reply: no regex, no join
            return _result_reply(200, line, line[11:])
        if line == "HANGUP":
            return AgiHangupSignal()
        match = _REPLY.fullmatch(line)
        if match is None:
            raise AgiProtocolError(message="unexpected line from Asterisk", line=line[:200])
        if match.group(2) == "-":
            self._multi = [line]
            return None
        return parse_reply([line])

    def _multi_line(self, line: str) -> AgiReply | None:
        self._multi.append(line)
        if line.startswith(self._multi[0][:3] + " "):
            lines, self._multi = self._multi, []
            return parse_reply(lines)
        if len(self._multi) >= self._max_reply_lines:
            raise AgiProtocolError(
                message="multi-line AGI reply too long", limit=self._max_reply_lines
            )
        return None

    def _env_line(self, env: dict[str, str], line: str) -> AgiEnvironment | None:
        if not line:
            if not env:
                raise AgiProtocolError(message="empty AGI environment")
            self._env = None
            return build_environment(env)
        self._check_env(self._env_bytes, len(env) + 1)
        key, sep, value = line.partition(":")
        if not sep or not _ENV_KEY.fullmatch(key):
            raise AgiProtocolError(message="not an AGI environment line", line=line[:200])
        env[key] = value[1:] if value.startswith(" ") else value
        return None
