"""AMI event filters, as Asterisk's ``manager.c`` applies them (``Filter`` action, per session).

Two forms, both from Asterisk 20.10 / 21.5 / 22.0 on (the legacy form is older):

- legacy: ``Filter: <regex>`` matched against the whole event text (``Event: …\\r\\n…``);
  a leading ``!`` makes it an exclude filter;
- advanced: ``MatchCriteria: action(include|exclude),name(Event),header(Name),method(…)``
  with ``Filter:`` the pattern (``method`` one of regex, exact, starts_with, ends_with,
  contains, none). With ``header(X)`` only the values of ``X:`` lines are matched.

Evaluation (``should_send_event``): no filters → every event; include filters only → events
matching one of them; exclude filters only → events matching none; both → events matching an
include filter and no exclude filter. Action responses and the events of an event list are
not filtered (Asterisk writes them straight to the session).

Asterisk compiles patterns with POSIX ``regcomp(REG_EXTENDED | REG_NOSUB)``; this module
translates the POSIX bracket classes (``[[:cntrl:]]`` …) to Python and matches with DOTALL
(without ``REG_NEWLINE`` a POSIX ``.`` matches a newline). Whether a pattern matches is what
counts (``REG_NOSUB``), so leftmost-longest vs leftmost-first does not matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}
_CLASS = re.compile(r"\[:([a-z]+):\]")
METHODS = ("regex", "exact", "starts_with", "ends_with", "contains", "none")


class FilterError(ValueError):
    """The filter cannot be added; ``args[0]`` is Asterisk's response message."""


FORMAT_ERROR = "Filter was formatted incorrectly.  Check the syntax of the filter given."
COMPILE_ERROR = "Filter did not compile.  Check the syntax of the filter given."


def posix_regex(pattern: str) -> re.Pattern[str]:
    """Compile a POSIX extended regular expression (as Asterisk's filters use them)."""

    def klass(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in POSIX_CLASSES:
            raise FilterError(COMPILE_ERROR)
        return POSIX_CLASSES[name]

    try:
        return re.compile(_CLASS.sub(klass, pattern), re.DOTALL)
    except re.error as exc:
        raise FilterError(COMPILE_ERROR) from exc


def _after_newline(text: str, header: str, start: int) -> int:
    """Where the next line starting with ``header`` begins (at or after ``start``), or -1."""
    at = text.find("\n" + header, start)
    return at + 1 if at >= 0 else -1


@dataclass(frozen=True)
class EventFilter:
    """One filter entry (``struct event_filter_entry``)."""

    exclude: bool
    method: str
    pattern: str
    regex: re.Pattern[str] | None = None
    event: str | None = None
    header: str | None = None
    """With the colon, as Asterisk stores it (``Variable:``)."""

    @classmethod
    def parse(cls, criteria: str, pattern: str) -> EventFilter:
        """``criteria`` is the ``MatchCriteria`` value ('' for a legacy filter); raises
        FilterError with the message Asterisk answers."""
        exclude = pattern.startswith("!")
        if exclude:
            pattern = pattern[1:]
        method, event, header = "regex", None, None
        if not criteria:
            if not pattern:
                raise FilterError(FORMAT_ERROR)
        else:
            method = "none"
            for option in filter(None, re.split(r"[ ,)]", criteria.strip())):
                key, _, value = option.partition("(")
                value = value.strip()
                if key.startswith("action"):
                    if value not in ("include", "exclude"):
                        raise FilterError(FORMAT_ERROR)
                    exclude = value == "exclude"
                elif key.startswith("name") and value:
                    event = value
                elif key.startswith("header") and value:
                    header = value if value.endswith(":") else value + ":"
                elif key.startswith("method") and value in METHODS:
                    method = value
                else:
                    raise FilterError(FORMAT_ERROR)
            if (not pattern) != (method == "none"):
                raise FilterError(FORMAT_ERROR)
            if event is None and header is None and method == "none":
                raise FilterError(FORMAT_ERROR)
        regex = posix_regex(pattern) if pattern and method == "regex" else None
        return cls(exclude, method, pattern, regex, event, header)

    def matches(self, name: str, text: str) -> bool:
        """``filter_cmp_fn``: ``name`` the event's name, ``text`` the whole event."""
        if self.event is not None and name != self.event:
            return False
        header = self.header
        if header is None:
            return self._match(text)
        # the lines starting with the header: the first line, or any after a newline
        pos = 0 if text.startswith(header) else _after_newline(text, header, 0)
        while pos >= 0:
            end = text.find("\n", pos)
            line = text[pos:] if end < 0 else text[pos:end]
            value = line[len(header) :].lstrip(" \t").rstrip("\r")
            if value and self._match(value):
                return True
            pos = -1 if end < 0 else _after_newline(text, header, end)
        return False

    def _match(self, data: str) -> bool:
        method, pattern = self.method, self.pattern
        if method == "regex":
            assert self.regex is not None
            return self.regex.search(data) is not None
        if method == "exact":
            return data == pattern
        if method == "starts_with":
            return data.startswith(pattern)
        if method == "ends_with":
            return data.endswith(pattern)
        if method == "contains":
            return pattern in data
        return True  # none


class SessionFilters:
    """A session's include and exclude filters (``should_send_event``). Filters naming an
    event are looked up by the event's name (Asterisk compares a hash of it), so an event is
    matched only against the filters that can match it."""

    def __init__(self) -> None:
        # index 0: include filters, 1: exclude filters
        self._named: tuple[dict[str, list[EventFilter]], dict[str, list[EventFilter]]] = ({}, {})
        self._unnamed: tuple[list[EventFilter], list[EventFilter]] = ([], [])
        self._count = [0, 0]

    def __bool__(self) -> bool:
        return any(self._count)

    def add(self, f: EventFilter) -> None:
        side = int(f.exclude)
        self._count[side] += 1
        if f.event is None:
            self._unnamed[side].append(f)
        else:
            self._named[side].setdefault(f.event, []).append(f)

    def wants(self, data: bytes) -> bool:
        text = data.decode("utf-8", "replace")
        name = text[7 : text.find("\r\n")] if text.startswith("Event: ") else ""
        if self._count[0] and not self._any(0, name, text):
            return False
        return not (self._count[1] and self._any(1, name, text))

    def _any(self, side: int, name: str, text: str) -> bool:
        for f in self._named[side].get(name, ()):
            if f.matches(name, text):
                return True
        return any(f.matches(name, text) for f in self._unnamed[side])
