"""AMI event filters: callserver's patterns under the C library's POSIX regex (what Asterisk
compiles them with), against every event of the golden transcripts; pbxsim's Filter matching
agrees with it; pbxsim parses filter criteria as Asterisk's manager.c does."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator

import pytest

from callserver.asterisk.ami_connection import CLIENT_EVENTS
from callserver.asterisk.ami_filters import NOISE_EVENTS, event_filters
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.core.bus import EventBus
from callserver.core.model import LiveModel
from pbxsim.ami_filter import EventFilter, FilterError, SessionFilters
from tests import transcripts

REG_EXTENDED, REG_NOSUB = 1, 8
"""glibc's <regex.h> values."""
TRANSCRIPTS = (
    "ami-queue-answered-call.txt", "ami-queue-abandoned-call.txt", "ami-blind-transfer.txt",
    "ami-attended-transfer.txt", "ami-hold-unhold.txt", "ami-queue-two-callers.txt",
    "ami-originate.txt", "ami-local-member-cyrillic.txt", "ami-during-ari-call.txt",
)  # fmt: skip


class PosixRegex:
    """regcomp/regexec of the C library, as Asterisk calls them for event filters."""

    libc = ctypes.CDLL(ctypes.util.find_library("c"))

    def __init__(self, pattern: str) -> None:
        self._buf = ctypes.create_string_buffer(1024)  # > sizeof(regex_t)
        rc = self.libc.regcomp(self._buf, pattern.encode(), REG_EXTENDED | REG_NOSUB)
        assert rc == 0, f"regcomp failed ({rc}) on {pattern!r}"

    def search(self, text: str) -> bool:
        return int(self.libc.regexec(self._buf, text.encode(), 0, None, 0)) == 0

    def __del__(self) -> None:
        self.libc.regfree(self._buf)


def events() -> Iterator[tuple[str, str]]:
    """(name, text) of every event Asterisk sent in the transcripts, as its filters see it."""
    for name in TRANSCRIPTS:
        for frame in transcripts.from_asterisk(name).decode().split("\r\n\r\n"):
            if frame.startswith("Event: "):
                yield frame[7 : frame.index("\r\n")], frame + "\r\n"


def translator() -> AmiTranslator:
    return AmiTranslator(LiveModel(EventBus()))


def variable(text: str) -> str:
    _, found, rest = text.partition("\r\nVariable: ")
    return rest.split("\r\n", 1)[0] if found else ""


def asterisk_session(filters: list[tuple[str, str]]) -> SessionFilters:
    """The filters as an Asterisk 22 session holds them (pbxsim's copy of manager.c)."""
    session = SessionFilters()
    for criteria, pattern in filters:
        session.add(EventFilter.parse(criteria, pattern))
    return session


def test_filters_keep_back_noise_and_never_what_the_translator_reads() -> None:
    filters = translator().event_filters(CLIENT_EVENTS)
    assert filters[0] == ("action(exclude),name(AGIExecEnd)", "")  # no pattern: see below
    assert all(c.startswith("action(exclude),") for c, _ in filters)
    session = asterisk_session(filters)
    header_regex = PosixRegex(filters[-1][1])  # what Asterisk compiles for the VarSet filter
    handled = set(translator()._handlers) | set(CLIENT_EVENTS)
    wanted = {"DID", "AD_SOURCE", "CAMPAIGN", "DIALSTATUS", "MIXMONITOR_FILENAME"}
    sent = kept = 0
    for name, text in events():
        passes = session.wants(text.encode())
        sent, kept = sent + 1, kept + passes
        if name == "VarSet":
            var = variable(text).lstrip("_")
            if var in wanted or var.startswith("ROUTE_"):
                assert passes, var
            # the C library agrees, with or without the line's CR left on the value
            assert header_regex.search(var) is not passes
            assert header_regex.search(var + "\r") is not passes
        elif name in handled:
            assert passes, name
        elif name in NOISE_EVENTS:
            assert not passes, name
    assert kept < sent / 2  # the transcripts' noise is most of what Asterisk sends
    for var in ("BRIDGEPEER", "QUEUENAME", "MEMBERNAME", "RTPAUDIOQOSJITTER", "ANSWEREDTIME_MS"):
        assert header_regex.search(var)
    for var in ("DID", "__DID", "ROUTE_QUEUE", "ROUTE_MODE", "DIALSTATUS", "LAB_TAG"):
        assert not header_regex.search(var)


def test_a_kept_variable_that_looks_like_noise_turns_the_varset_filter_off() -> None:
    n = len(NOISE_EVENTS)
    assert len(event_filters(["VarSet"], ["QUEUENAME"], [])) == n
    assert len(event_filters(["VarSet"], ["__QUEUEWAIT_MS"], [])) == n
    assert len(event_filters(["VarSet"], [], ["MEMBERX"])) == n  # inside an open-ended one
    assert len(event_filters(["VarSet"], [], ["Q"])) == n  # QUEUENAME … would start with it
    assert len(event_filters(["VarSet"], [], [""])) == n
    assert len(event_filters(["VarSet"], ["DID", "LAB_TAG"], ["ROUTE_"])) == n + 1
    handled = event_filters(["VarSet", "Newexten", "Cdr"], [], [])
    assert ("action(exclude),name(Newexten)", "") not in handled  # handled: never excluded
    assert ("action(exclude),name(Cdr)", "") not in handled


def test_an_older_asterisk_reading_them_as_legacy_filters_sends_everything() -> None:
    """Before advanced filters Asterisk ignored MatchCriteria and read ``Filter`` as a legacy
    regular expression, ``!`` marking an exclude filter: the first one (empty, no ``!``) is
    then an include filter matching every event, and no filter excludes anything."""
    filters = translator().event_filters(CLIENT_EVENTS)
    assert not any(p.startswith("!") for _, p in filters)
    first = PosixRegex(filters[0][1])
    for _name, text in events():
        assert first.search(text)


def test_text_elsewhere_cannot_pose_as_the_variable_header() -> None:
    session = asterisk_session(translator().event_filters())
    varset = (
        "Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: PJSIP/trunk-00000001\r\n"
        "CallerIDName: x Variable: BRIDGEPEER\r\nVariable: {}\r\nValue: x\r\n\r\n"
    )
    assert session.wants(varset.format("__DID").encode())  # the name says BRIDGEPEER
    assert session.wants(varset.format("ROUTE_MODE").encode())
    assert not session.wants(varset.format("BRIDGEPEER").encode())
    assert session.wants(b"Event: NewextenX\r\n\r\n")  # whole names only
    assert not session.wants(b"Event: Newexten\r\n\r\n")


@pytest.mark.parametrize(
    "pattern",
    [
        "Channel: PJSIP/op10[12]-",
        "^Event: Dial(Begin|End)",
        "Exten: [[:digit:]]{11}[[:space:]]",
        "CallerIDName: .*[[:upper:]]",
        "^Event: VarSet[[:cntrl:]].*[[:cntrl:]]Variable: _*(DID|ROUTE_[^[:cntrl:]]*)[[:cntrl:]]",
    ],
)
def test_pbxsim_legacy_filters_match_like_the_c_library(pattern: str) -> None:
    posix, ours = PosixRegex(pattern), EventFilter.parse("", pattern)
    hits = 0
    for name, text in events():
        assert ours.matches(name, text) == posix.search(text), (pattern, name)
        hits += posix.search(text)
    assert hits > 0


VARSET = "Event: VarSet\r\nChannel: ABC\r\nSomeheader: XXX\r\n"
NEWCHANNEL = "Event: Newchannel\r\nChannel: XXX\r\nSomeheader: YYY\r\n"


@pytest.mark.parametrize(
    ("criteria", "pattern", "text", "sent"),
    [  # the cases of manager.c's eventfilter_test_creation, as behaviour
        ("", "XXX", NEWCHANNEL, True),
        ("", "!XXX", VARSET, False),
        ("name(VarSet),method(none)", "", VARSET, True),
        ("name(Newchannel),method(regex)", "X[XYZ]X", NEWCHANNEL, True),
        ("name(Newchannel),method(regex)", "X[abc]X", NEWCHANNEL, False),
        ("action(exclude),name(Newchannel),method(regex)", "X[XYZ]X", NEWCHANNEL, False),
        ("action(exclude),name(Newchannel),method(regex)", "X[abc]X", NEWCHANNEL, True),
        ("action(include),name(VarSet),header(Channel),method(starts_with)", "AB", VARSET, True),
        ("action(include),name(VarSet),header(Channel),method(ends_with)", "BC", VARSET, True),
        ("action(include),name(VarSet),header(Channel),method(exact)", "ABC", VARSET, True),
        ("action(include),name(VarSet),header(Channel),method(exact)", "XXX", VARSET, False),
        ("name(VarSet),header(Channel),method(exact)", "!ZZZ", VARSET, True),
        ("action(exclude),name(VarSet),header(Channel),method(exact)", "ZZZ", VARSET, True),
        ("action(include),name(VarSet),header(Someheader),method(exact)", "!XXX", VARSET, True),
        ("name(Newchannel),header(Channel),method(contains)", "XX", VARSET, False),
    ],
)
def test_pbxsim_filter_semantics(criteria: str, pattern: str, text: str, sent: bool) -> None:
    filters = SessionFilters()
    filters.add(EventFilter.parse(criteria, pattern))
    assert filters.wants(text.encode()) is sent


@pytest.mark.parametrize(
    ("criteria", "pattern", "message"),
    [
        ("action(inlude)", "", "formatted incorrectly"),
        ("nnnn(yyy)", "XXX", "formatted incorrectly"),
        ("name(yyy),heder(VarSet),method(contains)", "XXX", "formatted incorrectly"),
        ("method(yyy)", "XXX", "formatted incorrectly"),
        ("", "", "formatted incorrectly"),
        ("", "!", "formatted incorrectly"),
        ("name(VarSet)", "XXX", "formatted incorrectly"),  # method none with a pattern
        ("", "XX[X", "did not compile"),
        ("method(regex)", "XX[X", "did not compile"),
    ],
)
def test_pbxsim_refuses_what_asterisk_refuses(criteria: str, pattern: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        EventFilter.parse(criteria, pattern)


def test_include_then_exclude() -> None:
    filters = SessionFilters()
    filters.add(EventFilter.parse("name(VarSet)", ""))
    filters.add(EventFilter.parse("action(exclude),header(Channel),method(starts_with)", "AB"))
    assert not filters.wants(VARSET.encode())  # included, then excluded
    assert filters.wants(VARSET.replace("ABC", "ZBC").encode())
    assert not filters.wants(NEWCHANNEL.encode())  # not included
