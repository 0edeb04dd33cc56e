"""Byte-level helpers for the Asterisk Manager Interface as pbxsim speaks it.

pbxsim deliberately shares no code with ``callserver/``: this module is its own tiny AMI
framing (``Key: Value\\r\\n`` lines, a blank line ends a message). Values are sanitised so
that nothing taken from a peer (caller IDs, variables, action fields) can inject a header.
"""

from __future__ import annotations

from collections.abc import Iterable

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
MAX_MESSAGE_BYTES = 64 * 1024
"""A client action larger than this is a protocol violation; the session is closed."""


class PbxsimError(Exception):
    """Root of pbxsim's own errors (pbxsim must not import callserver's)."""

    def __init__(self, *, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class AmiProtocolError(PbxsimError):
    """A client sent bytes that are not an AMI action."""


def clean(value: object) -> str:
    """``value`` as one header-safe line: CR and LF become spaces."""
    text = str(value)
    if "\r" in text or "\n" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text


def message(pairs: Iterable[tuple[str, object]]) -> bytes:
    """One AMI message (response or event) with CRLF framing and the closing blank line."""
    return ("".join(f"{k}: {clean(v)}\r\n" for k, v in pairs) + "\r\n").encode()


class ActionReader:
    """Incremental splitter of the client's byte stream into actions.

    ``feed(data)`` returns the complete actions; each is a list of (key, value) pairs in
    wire order (repeated keys such as ``Variable`` kept). UTF-8 is decoded per complete
    message, so a multibyte character split across TCP reads is never damaged.

    Raises:
        AmiProtocolError: a message grew beyond ``MAX_MESSAGE_BYTES``.
    """

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[list[tuple[str, str]]]:
        self._buf += data
        out: list[list[tuple[str, str]]] = []
        while True:
            self._buf = self._buf.lstrip(b"\r\n")
            end = self._buf.find(b"\r\n\r\n")
            sep = 4
            lf_end = self._buf.find(b"\n\n")
            if lf_end != -1 and (end == -1 or lf_end < end):
                end, sep = lf_end, 2
            if end == -1:
                if len(self._buf) > MAX_MESSAGE_BYTES:
                    raise AmiProtocolError(message="AMI action too large", size=len(self._buf))
                return out
            raw, self._buf = self._buf[:end], self._buf[end + sep :]
            pairs = _parse_block(raw.decode("utf-8", errors="replace"))
            if pairs:
                out.append(pairs)


def _parse_block(text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        pairs.append((key.strip(), value.strip()))
    return pairs


def first(pairs: list[tuple[str, str]], key: str, default: str = "") -> str:
    """The first value of ``key`` (case-insensitive, as Asterisk's astman_get_header)."""
    low = key.lower()
    for k, v in pairs:
        if k.lower() == low:
            return v
    return default


def every(pairs: list[tuple[str, str]], key: str) -> list[str]:
    """All values of a repeated header such as ``Variable``."""
    low = key.lower()
    return [v for k, v in pairs if k.lower() == low]
