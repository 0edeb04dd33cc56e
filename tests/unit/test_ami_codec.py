"""AmiCodec against the golden AMI transcripts, whole and in random chunks, plus encode_action."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.asterisk.ami_codec import AmiCodec, AmiMessage, encode_action, parse_headers
from callserver.asterisk.errors import AmiFrameTooLarge, AmiProtocolError
from tests import transcripts

AMI_FILES = sorted(p.name for p in transcripts.FIXTURES.glob("ami-*.txt"))


def decode_whole(data: bytes) -> list[AmiMessage]:
    return AmiCodec().feed(data)


def decode_chunks(data: bytes, sizes: list[int]) -> list[AmiMessage]:
    codec = AmiCodec()
    out: list[AmiMessage] = []
    pos = 0
    for size in sizes:
        out += codec.feed(data[pos : pos + size])
        pos += size
    out += codec.feed(data[pos:])
    return out


def events(name: str) -> list[AmiMessage]:
    return [m for m in decode_whole(transcripts.from_asterisk(name)) if m.kind == "event"]


def only(name: str, event: str) -> AmiMessage:
    (msg,) = [m for m in events(name) if m.name == event]
    return msg


def test_all_ami_transcripts_are_covered() -> None:
    assert len(AMI_FILES) == 11


@pytest.mark.parametrize("name", AMI_FILES)
@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=3000), max_size=200))
def test_random_chunks_give_the_same_messages(name: str, sizes: list[int]) -> None:
    data = transcripts.from_asterisk(name)
    assert decode_chunks(data, sizes) == decode_whole(data)


@pytest.mark.parametrize("name", AMI_FILES)
def test_one_byte_chunks_and_lf_only_stream_match(name: str) -> None:
    data = transcripts.from_asterisk(name)
    whole = decode_whole(data)
    assert decode_chunks(data, [1] * len(data)) == whole
    assert b"\r\n" in data
    assert decode_whole(data.replace(b"\r\n", b"\n")) == whole


@pytest.mark.parametrize("name", AMI_FILES)
def test_fast_header_split_equals_line_by_line(name: str) -> None:
    for msg in decode_whole(transcripts.from_asterisk(name)):
        if msg.kind == "banner":
            continue
        expected: dict[str, str] = {}
        for line in msg.raw.split("\n"):
            key, _, value = line.partition(": ")
            expected.setdefault(key, value)
        assert msg.fields == expected
        assert msg.name == msg[msg.raw.partition(":")[0]]


def test_event_counts_by_name() -> None:
    answered = Counter(m.name for m in events("ami-queue-answered-call.txt"))
    assert sum(answered.values()) == 178
    assert answered["VarSet"] == 114
    assert answered["AgentCalled"] == answered["AgentConnect"] == answered["AgentComplete"] == 1
    abandoned = Counter(m.name for m in events("ami-queue-abandoned-call.txt"))
    assert sum(abandoned.values()) == 104
    assert abandoned["QueueCallerAbandon"] == 1
    assert abandoned["AgentConnect"] == 0
    originate = Counter(m.name for m in events("ami-originate.txt"))
    assert sum(originate.values()) == 150
    assert originate["OriginateResponse"] == 1
    assert sum(1 for _ in events("ami-local-member-cyrillic.txt")) == 147
    assert sum(1 for _ in events("ami-during-ari-call.txt")) == 64


def test_answered_and_abandoned_call_facts() -> None:
    complete = only("ami-queue-answered-call.txt", "AgentComplete")
    assert complete["CallerIDNum"] == "79161234567"
    assert complete["Queue"] == "reception"
    assert complete["Interface"] == "PJSIP/op101"
    assert (complete["Reason"], complete["TalkTime"], complete["HoldTime"]) == ("caller", "11", "3")
    abandon = only("ami-queue-abandoned-call.txt", "QueueCallerAbandon")
    assert abandon["CallerIDNum"] == "79035550101"
    assert (abandon["HoldTime"], abandon["Position"]) == ("9", "1")


def test_banner_responses_and_event_list() -> None:
    msgs = decode_whole(transcripts.from_asterisk("ami-login.txt"))
    assert (msgs[0].kind, msgs[0].name) == ("banner", "Asterisk Call Manager/11.0.0")
    responses = [m for m in msgs if m.kind == "response"]
    assert [(m.name, m.action_id) for m in responses] == [
        ("Success", "login-1"),
        ("Success", "ping-1"),
        ("Success", "cs-1"),
        ("Success", "qs-1"),
        ("Goodbye", "logoff-1"),
    ]
    assert responses[1]["Ping"] == "Pong"
    assert responses[2]["SystemName"] == ""  # "SystemName: " with an empty value
    assert responses[3]["EventList"] == "start"
    listed = [m for m in msgs if m.kind == "event" and m.action_id == "qs-1"]
    assert [m.name for m in listed] == ["QueueParams", *["QueueMember"] * 3, "QueueStatusComplete"]
    assert [m["Location"] for m in listed[1:4]] == ["PJSIP/op101", "PJSIP/op102", "PJSIP/op103"]
    assert (listed[-1]["EventList"], listed[-1]["ListItems"]) == ("Complete", "4")


def test_failed_login_response() -> None:
    msgs = decode_whole(transcripts.from_asterisk("ami-login-failed.txt"))
    assert [m.kind for m in msgs] == ["banner", "response"]
    assert msgs[1].name == "Error"
    assert msgs[1]["Response"] == "Error"
    assert msgs[1]["Message"] == "Authentication failed"
    assert msgs[1].action_id == "bad-1"


def test_originate_response_carries_the_action_id() -> None:
    msg = only("ami-originate.txt", "OriginateResponse")
    assert (msg.action_id, msg["Response"], msg["Reason"]) == ("orig-1", "Success", "4")
    assert msg["CallerIDNum"] == "79161234567"


def test_cyrillic_caller_name_split_inside_a_multibyte_char() -> None:
    data = transcripts.from_asterisk("ami-local-member-cyrillic.txt")
    name = "Лаб Пациент".encode()
    at = data.index(b"CallerIDName: " + name) + len(b"CallerIDName: ")
    for cut in (at + 1, at + 3, at + len(name) - 1):  # inside "Л", inside "а", inside "т"
        msgs = decode_chunks(data, [cut])
        assert msgs == decode_whole(data)
        names = {m.get("CallerIDName") for m in msgs if m.kind == "event"}
        assert "Лаб Пациент" in names
    assert b"\xd0" in data[at : at + 1]


def test_cr_and_lf_split_between_reads() -> None:
    data = b"Asterisk Call Manager/11.0.0\r\nEvent: A\r\nX: 1\r\n\r\nEvent: B\r\nY: 2\r\n\r\n"
    expected = decode_whole(data)
    for cut in range(len(data)):
        assert decode_chunks(data, [cut]) == expected
    assert [(m.name, dict(m.fields)) for m in expected[1:]] == [
        ("A", {"Event": "A", "X": "1"}),
        ("B", {"Event": "B", "Y": "2"}),
    ]


def test_lone_cr_is_dropped_never_kept_in_a_value() -> None:
    msgs = AmiCodec(expect_banner=False).feed(b"Event: A\r\nCallerIDName: x\ry\r\n\r\n")
    assert msgs[0]["CallerIDName"] == "xy"
    assert "\r" not in msgs[0].raw


def test_repeated_headers_are_lists() -> None:
    data = (
        b"Asterisk Call Manager/11.0.0\r\n"
        b"Event: Newchannel\r\nChanVariable: a=1\r\nChanVariable: b=2\r\nChannel: X\r\n\r\n"
    )
    msg = decode_whole(data)[1]
    assert msg.fields["ChanVariable"] == ["a=1", "b=2"]
    assert msg.getall("ChanVariable") == ["a=1", "b=2"]
    assert msg.get("ChanVariable") == "a=1"
    assert msg.getall("Channel") == ["X"]
    assert msg.getall("Missing") == []


def test_odd_lines_take_the_slow_path() -> None:
    fields = parse_headers("Response: Success\nKey:no-space\nOutput line without colon\nA: b: c")
    assert fields == {
        "Response": "Success",
        "Key": "no-space",
        "": "Output line without colon",
        "A": "b: c",
    }


def test_frame_size_limit() -> None:
    big = b"Event: Big\r\nData: " + b"x" * 500 + b"\r\n\r\n"
    with pytest.raises(AmiFrameTooLarge):
        AmiCodec(expect_banner=False, max_frame=200).feed(big)
    codec = AmiCodec(expect_banner=False, max_frame=200)
    with pytest.raises(AmiFrameTooLarge):
        for i in range(0, len(big), 50):
            codec.feed(big[i : i + 50])
    small = b"Event: Small\r\nData: y\r\n\r\n"
    assert [m.name for m in AmiCodec(expect_banner=False, max_frame=200).feed(small)] == ["Small"]


def test_bad_banner_is_a_protocol_error() -> None:
    with pytest.raises(AmiProtocolError):
        AmiCodec().feed(b"HTTP/1.1 400 Bad Request\r\n\r\n")


def test_skip_events_by_peek() -> None:
    data = transcripts.from_asterisk("ami-queue-answered-call.txt")
    codec = AmiCodec(skip_events=["VarSet", "RTCPSent"])
    kept = codec.feed(data)
    assert codec.skipped == 117
    assert all(m.name not in ("VarSet", "RTCPSent") for m in kept)
    assert len(kept) == len(decode_whole(data)) - 117


def test_action_id_peek_does_not_parse_plain_events() -> None:
    msg = events("ami-queue-answered-call.txt")[5]
    assert msg.action_id is None
    assert msg._fields is None  # the substring test answered without splitting headers


def test_encode_action_matches_the_transcript_login() -> None:
    frame = encode_action(
        "Login", "login-1", {"Username": "callserver", "Secret": "callserver", "Events": "on"}
    )
    assert transcripts.to_asterisk("ami-login.txt").startswith(frame)


def test_encode_action_repeats_sequence_values() -> None:
    frame = encode_action("Originate", "o-1", {"Variable": ["A=1", "B=2"]})
    assert frame == b"Action: Originate\r\nActionID: o-1\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"


@pytest.mark.parametrize(
    ("action", "action_id", "headers"),
    [
        ("Originate", "o-1", {"CallerID": "x\r\nAction: Hangup"}),
        ("Originate", "o-1", {"CallerID": "x\nChannel: PJSIP/evil"}),
        ("Originate", "o-1", {"Variable": ["A=1", "B=2\rX: y"]}),
        ("Originate", "o-1", {"Bad\r\nKey": "v"}),
        ("Originate", "o-1", {"Bad: Key": "v"}),
        ("Originate", "o-1", {"": "v"}),
        ("Ping\r\nAction: Hangup", "o-1", None),
        ("Ping", "o-1\nChannel: x", None),
    ],
)
def test_encode_action_refuses_header_injection(
    action: str, action_id: str, headers: dict[str, str | list[str]] | None
) -> None:
    with pytest.raises(ValueError):
        encode_action(action, action_id, headers)
