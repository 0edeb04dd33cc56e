"""Sans-IO codec for the Asterisk Manager Interface (AMI).

``AmiCodec.feed(data)`` takes raw bytes as they come off the socket, in chunks of any size, and
returns the complete messages they finish. It knows the banner line
(``Asterisk Call Manager/11.0.0``), CRLF and bare LF line endings (every CR is dropped: AMI values
never carry one), repeated headers (kept, always as a list), incremental UTF-8 (a Cyrillic caller
name split across two TCP reads survives) and a frame size limit. ``encode_action`` builds an
action frame and refuses values that could inject a header.

Speed (DESIGN.md §4: a busy center sends ~18,000 events/s, mostly VarSet/Newexten): CRs go in one
``bytes.translate`` pass (``str.replace`` of CRLF costs ~70 ns per line); the codec only peeks at
the first line of each block for the message kind and name; the headers are split into ``fields``
on first use, by C-level string operations with a per-line fallback for the rare odd block
(repeated headers, a line without ``": "``). A consumer that drops an event by name never pays
for its headers.

No I/O here: ``ami_connection`` owns the socket.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Literal

from callserver.asterisk.errors import AmiFrameTooLarge, AmiProtocolError

MessageKind = Literal["banner", "response", "event", "other"]
Fields = dict[str, str | list[str]]

DEFAULT_MAX_FRAME = 1024 * 1024
"""Bytes (characters after decoding) one message may take before the peer is deemed broken."""

_SEP = repeat(": ")
_ONE = repeat(1)


class AmiMessage:
    """One AMI frame: a banner, an action response or an event.

    ``fields`` maps a header name to its value, or to a list of values when the header was
    repeated (``ChanVariable``, ``Output`` …). ``get`` returns the first value, ``getall`` always
    a list. Header names keep the case Asterisk sent. ``raw`` is the block as received minus its CRs
    (LF line endings, no trailing blank line); ``fields`` is parsed from it on first access.
    """

    __slots__ = ("_fields", "kind", "name", "raw")

    def __init__(
        self, kind: MessageKind, name: str, fields: Fields | None = None, raw: str = ""
    ) -> None:
        self.kind: MessageKind = kind
        self.name = name
        self.raw = raw
        self._fields = fields

    @property
    def fields(self) -> Fields:
        fields = self._fields
        if fields is None:
            fields = self._fields = parse_headers(self.raw)
        return fields

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.fields.get(key)
        if value is None:
            return default
        if isinstance(value, list):
            return value[0]
        return value

    def __getitem__(self, key: str) -> str:
        value = self.fields[key]
        return value[0] if isinstance(value, list) else value

    def getall(self, key: str) -> list[str]:
        value = self.fields.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return list(value)
        return [value]

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AmiMessage):
            return NotImplemented
        return (self.kind, self.name, self.fields) == (other.kind, other.name, other.fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AmiMessage({self.kind!r}, {self.name!r}, {self.fields!r})"

    @property
    def action_id(self) -> str | None:
        """The ``ActionID`` header; a substring test first, so most events are not parsed."""
        if self._fields is None and "ActionID:" not in self.raw:
            return None
        return self.get("ActionID")


def parse_headers(block: str) -> Fields:
    """Split one block (LF line endings) into headers; repeated headers become lists."""
    lines = block.split("\n")
    try:
        # Fast path: every line is "Key: value", no key repeated, no ":" inside a key.
        pairs: dict[str, str] = dict(map(str.split, lines, _SEP, _ONE))
    except ValueError:
        return _parse_lines(lines)
    if len(pairs) != len(lines) or ":" in "".join(pairs):
        return _parse_lines(lines)
    return pairs  # type: ignore[return-value]  # a dict[str, str] is never appended to


def _parse_lines(lines: list[str]) -> Fields:
    fields: Fields = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep:
            if not line:
                continue
            key, value = "", line  # a line with no colon (old Command output): keep it
        elif value[:1] == " ":
            value = value[1:]
        old = fields.get(key)
        if old is None:
            fields[key] = value
        elif isinstance(old, list):
            old.append(value)
        else:
            fields[key] = [old, value]
    return fields


def _message(block: str) -> AmiMessage:
    """Peek at the first line for kind and name; leave the headers for later."""
    if block.startswith("Event: "):
        nl = block.find("\n")
        return AmiMessage("event", block[7:nl] if nl >= 0 else block[7:], raw=block)
    if block.startswith("Response: "):
        nl = block.find("\n")
        return AmiMessage("response", block[10:nl] if nl >= 0 else block[10:], raw=block)
    fields = parse_headers(block)
    first_key, sep, _ = block.partition("\n")[0].partition(":")
    if not sep:
        return AmiMessage("other", "", fields, raw=block)
    kind: MessageKind = "other"
    if first_key == "Event":
        kind = "event"
    elif first_key == "Response":
        kind = "response"
    raw_name = fields.get(first_key, "")
    name = raw_name[0] if isinstance(raw_name, list) else raw_name
    return AmiMessage(kind, name, fields, raw=block)


class AmiCodec:
    """Incremental AMI decoder.

    ``expect_banner``: the first line of the stream is the one-line banner (client side).
    ``max_frame``: a message longer than this raises ``AmiFrameTooLarge`` (the caller should drop
    the connection: the stream cannot be trusted any more).
    ``skip_events``: event names dropped by a cheap peek at the first line, before the block is
    split into headers (e.g. ``RTCPSent``). Responses are never skipped.
    """

    def __init__(
        self,
        *,
        expect_banner: bool = True,
        max_frame: int = DEFAULT_MAX_FRAME,
        skip_events: Iterable[str] = (),
    ) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._want_banner = expect_banner
        self._max_frame = max_frame
        self._skip_prefixes = tuple(f"Event: {name}\n" for name in skip_events)
        self.skipped = 0
        """How many events ``skip_events`` dropped so far."""

    def feed(self, data: bytes) -> list[AmiMessage]:
        """Decode ``data`` and return every message it completes, in stream order."""
        # CR is dropped on the bytes (one C pass; a CR is never part of a UTF-8 sequence), which
        # makes CRLF and LF streams identical and costs far less than a str.replace per line.
        text = self._decoder.decode(data.translate(None, b"\r"))
        buf = self._buf + text if self._buf else text
        out: list[AmiMessage] = []
        if self._want_banner:
            nl = buf.find("\n")
            if nl < 0:
                self._buf = buf
                self._check_size()
                return out
            self._want_banner = False
            line = buf[:nl]
            buf = buf[nl + 1 :]
            if not line.startswith("Asterisk Call Manager"):
                raise AmiProtocolError(message=f"unexpected AMI banner {line[:80]!r}")
            out.append(AmiMessage("banner", line, {}))
        parts = buf.split("\n\n")
        self._buf = parts.pop()
        self._check_size()
        if len(buf) > self._max_frame:
            for block in parts:
                if len(block) > self._max_frame:
                    self._too_large(len(block))
        self._decode_blocks(parts, out)
        return out

    def _decode_blocks(self, blocks: list[str], out: list[AmiMessage]) -> None:
        """The hot loop: an event costs one slice, one find and one object; the rest (odd
        blocks, skipped events, responses) takes the general path in ``_message``."""
        skip = self._skip_prefixes
        append = out.append
        for block in blocks:
            if skip and block.startswith(skip):
                self.skipped += 1
            elif block[:7] == "Event: ":
                nl = block.find("\n", 7)
                append(AmiMessage("event", block[7:nl] if nl > 0 else block[7:], None, block))
            elif block:
                block = block.lstrip("\n")
                if block and not (skip and block.startswith(skip)):
                    append(_message(block))
                elif block:
                    self.skipped += 1

    def _check_size(self) -> None:
        if len(self._buf) > self._max_frame:
            self._too_large(len(self._buf))

    def _too_large(self, size: int) -> None:
        """Raise ``AmiFrameTooLarge``; the stream is unusable after it (buffer dropped)."""
        self._buf = ""
        raise AmiFrameTooLarge(message=f"AMI frame over {self._max_frame} characters", size=size)


def _check_value(key: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"AMI header {key!r} must not contain a line break")
    return value


def encode_action(
    action: str,
    action_id: str,
    headers: Mapping[str, str | Sequence[str]] | None = None,
) -> bytes:
    """Encode one action frame (CRLF line endings, blank line at the end).

    A header whose value is a sequence is repeated once per item (``Variable`` in Originate).
    Raises ValueError when a name or value contains CR or LF: untrusted text (a caller ID) can
    never add a header or a second action.
    """
    lines = [
        f"Action: {_check_value('Action', action)}",
        f"ActionID: {_check_value('ActionID', action_id)}",
    ]
    for key, value in (headers or {}).items():
        if not key or ":" in key:
            raise ValueError(f"bad AMI header name {key!r}")
        _check_value("header name", key)
        if isinstance(value, str):
            lines.append(f"{key}: {_check_value(key, value)}")
        else:
            lines.extend(f"{key}: {_check_value(key, v)}" for v in value)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
