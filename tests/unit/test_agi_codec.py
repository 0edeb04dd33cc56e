"""FastAGI codec: the recorded session, replies, limits, and command quoting (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.asterisk.agi_codec import (
    MAX_COMMAND_BYTES,
    AgiCodec,
    AgiEnvironment,
    AgiHangupSignal,
    AgiMessage,
    AgiReply,
    encode_command,
    parse_reply,
    quote_arg,
)
from callserver.asterisk.errors import AgiCommandTooLong, AgiProtocolError
from tests.transcripts import from_asterisk, to_asterisk

SESSION = from_asterisk("agi-session.txt")
MINIMAL_ENV = b"agi_network_script: route\nagi_channel: PJSIP/x-1\n\n"


def asterisk_parse_args(line: bytes) -> list[str]:
    """What Asterisk 22 does with one command line: ``run_agi`` strips the trailing ``\\n`` and
    ``parse_args`` (res_agi.c) splits it. Written here from the C source, independent of the
    codec, so the codec's quoting is checked against Asterisk's reading, not against itself."""
    assert line.endswith(b"\n") and line.count(b"\n") == 1, line
    s = line[:-1].decode("utf-8")
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in s:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                argv.append("")
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            cur = []
            argv.append("")
            whitespace = False
        assert cur is not None
        argv[-1] += ch
        escaped = False
    return argv


def feed_chunks(data: bytes, sizes: list[int]) -> list[AgiMessage]:
    codec = AgiCodec()
    out: list[AgiMessage] = []
    pos = 0
    for size in sizes:
        out += codec.feed(data[pos : pos + size])
        pos += size
    out += codec.feed(data[pos:])
    assert codec.eof()
    return out


def check_recorded_session(messages: list[AgiMessage]) -> None:
    env = messages[0]
    assert isinstance(env, AgiEnvironment)
    assert env.channel == "PJSIP/trunk-00000004"
    assert env.callerid == "79161234567"
    assert env.calleridname == "79161234567"
    assert env.dnid == "74951234567"
    assert env.args == ("74951234567", "source-a")
    assert env.script == "route"
    assert env.request == "agi://127.0.0.1:4573/route"
    assert env.uniqueid == "1795413075.4"
    assert env.context == "route-inbound"
    assert env.extension == "74951234567"
    assert env.priority == "5"
    assert env.version == "22.10.1"
    assert env.type == "PJSIP"
    assert env.language == "en"
    assert env.rdnis == "unknown"
    assert env.accountcode == ""
    assert env.raw["agi_threadid"] == "140300078802624"
    assert env.params == {}
    assert messages[1:] == [
        AgiReply(200, "1", None, "200 result=1"),
        AgiReply(200, "1", "source-a", "200 result=1 (source-a)"),
        AgiReply(200, "1", None, "200 result=1"),
        AgiReply(200, "1", None, "200 result=1"),
    ]


def test_recorded_session_parses_whole() -> None:
    check_recorded_session(AgiCodec().feed(SESSION))


def test_recorded_session_byte_by_byte() -> None:
    check_recorded_session(feed_chunks(SESSION, [1] * len(SESSION)))


@given(st.lists(st.integers(min_value=0, max_value=64), max_size=80))
def test_recorded_session_any_chunking(sizes: list[int]) -> None:
    check_recorded_session(feed_chunks(SESSION, sizes))


@given(st.lists(st.integers(min_value=1, max_value=7), max_size=200))
def test_recorded_session_with_crlf_any_chunking(sizes: list[int]) -> None:
    check_recorded_session(feed_chunks(SESSION.replace(b"\n", b"\r\n"), sizes))


def test_cyrillic_caller_name_split_inside_a_character() -> None:
    data = "agi_calleridname: Иванова Мария\nagi_callerid: 79161234567\n\n".encode()
    for cut in range(1, len(data)):
        codec = AgiCodec()
        messages = codec.feed(data[:cut]) + codec.feed(data[cut:])
        env = messages[0]
        assert isinstance(env, AgiEnvironment)
        assert env.calleridname == "Иванова Мария", cut


_VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"))


@given(
    st.dictionaries(st.from_regex(r"agi_[a-z0-9_]{1,12}", fullmatch=True), _VALUE, max_size=12),
    st.lists(st.integers(min_value=1, max_value=5), max_size=300),
)
def test_any_environment_values_survive_any_chunking(env: dict[str, str], sizes: list[int]) -> None:
    env["agi_network_script"] = "route"
    data = "".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n"
    codec = AgiCodec()
    out: list[AgiMessage] = []
    pos = 0
    for size in sizes:
        out += codec.feed(data[pos : pos + size])
        pos += size
    out += codec.feed(data[pos:])
    assert len(out) == 1 and isinstance(out[0], AgiEnvironment)
    assert dict(out[0].raw) == env


def test_invalid_utf8_is_replaced_not_dropped() -> None:
    env = AgiCodec().feed(b"agi_calleridname: a\xffb\n\n")[0]
    assert isinstance(env, AgiEnvironment)
    assert env.calleridname == "a\ufffdb"


def test_script_params_and_argument_order() -> None:
    lines = [b"agi_network_script: /route?clinic=north&x=", b"agi_arg_10: ten"]
    lines += [b"agi_arg_%d: a%d" % (i, i) for i in range(9, 0, -1)]
    env = AgiCodec().feed(b"\n".join(lines) + b"\n\n")[0]
    assert isinstance(env, AgiEnvironment)
    assert env.script == "route"
    assert env.network_script == "/route?clinic=north&x="
    assert env.params == {"clinic": "north", "x": ""}
    assert env.args == (*(f"a{i}" for i in range(1, 10)), "ten")


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("200 result=1 (source-a)", AgiReply(200, "1", "source-a", "200 result=1 (source-a)")),
        ("200 result=0", AgiReply(200, "0", None, "200 result=0")),
        ("200 result=-1", AgiReply(200, "-1", None, "200 result=-1")),
        ("200 result=1 (a (b) c)", AgiReply(200, "1", "a (b) c", "200 result=1 (a (b) c)")),
        ("200 result=1 ()", AgiReply(200, "1", "", "200 result=1 ()")),
        (
            "200 result=0 (timeout) endpos=8000",
            AgiReply(200, "0", "timeout", "200 result=0 (timeout) endpos=8000"),
        ),
        ("200 result=0 endpos=123", AgiReply(200, "0", None, "200 result=0 endpos=123")),
        (
            "510 Invalid or unknown command",
            AgiReply(510, "", None, "510 Invalid or unknown command"),
        ),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            AgiReply(
                511, "", None, "511 Command Not Permitted on a dead channel or intercept routine"
            ),
        ),
    ],
)
def test_single_line_replies(line: str, reply: AgiReply) -> None:
    codec = AgiCodec()
    codec.feed(MINIMAL_ENV)
    assert codec.feed(line.encode() + b"\n") == [reply]
    assert parse_reply([line]) == reply


def test_multi_line_520_usage_is_one_reply() -> None:
    lines = [
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: GET VARIABLE <variablename>",
        "        Returns 0 if <variablename> is not set.",
        "520 End of proper usage.",
    ]
    data = MINIMAL_ENV + "\n".join(lines).encode() + b"\n200 result=1\n"
    for cut in range(len(MINIMAL_ENV), len(data)):
        codec = AgiCodec()
        messages = codec.feed(data[:cut]) + codec.feed(data[cut:])
        assert messages[1:] == [
            AgiReply(520, "", None, "\n".join(lines)),
            AgiReply(200, "1", None, "200 result=1"),
        ]


def test_hangup_line_is_a_signal_between_replies() -> None:
    codec = AgiCodec()
    codec.feed(MINIMAL_ENV)
    out = codec.feed(b"HANGUP\n511 Command Not Permitted on a dead channel\n")
    assert out[0] == AgiHangupSignal()
    assert isinstance(out[1], AgiReply) and out[1].code == 511


def test_eof_reports_partial_messages() -> None:
    codec = AgiCodec()
    codec.feed(b"agi_network_script: route\n")
    assert codec.in_environment and not codec.eof()
    codec.feed(b"\n200 resu")
    assert not codec.in_environment and not codec.eof()
    codec.feed(b"lt=1\n")
    assert codec.eof()


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\n",
        b"agi_channel PJSIP/x\n",
        b"\x00\x01\x02\n",
        MINIMAL_ENV + b"hello\n",
        MINIMAL_ENV + b"20 result=1\n",
    ],
)
def test_garbage_raises_protocol_error_and_poisons_the_codec(data: bytes) -> None:
    codec = AgiCodec()
    with pytest.raises(AgiProtocolError):
        codec.feed(data)
    with pytest.raises(AgiProtocolError):
        codec.feed(b"200 result=1\n")


def test_line_length_limit_applies_before_the_newline_arrives() -> None:
    codec = AgiCodec(max_line=100)
    codec.feed(b"agi_channel: " + b"x" * 80)
    with pytest.raises(AgiProtocolError, match="too long"):
        codec.feed(b"x" * 30)


def test_environment_size_limits() -> None:
    with pytest.raises(AgiProtocolError, match="environment too large"):
        AgiCodec(max_env_lines=10).feed(b"".join(b"agi_k%d: v\n" % i for i in range(11)))
    with pytest.raises(AgiProtocolError, match="environment too large"):
        AgiCodec(max_env_bytes=1000).feed(b"agi_a: " + b"v" * 600 + b"\nagi_b: " + b"v" * 600)


def test_multi_line_reply_limit() -> None:
    codec = AgiCodec(max_reply_lines=5)
    codec.feed(MINIMAL_ENV)
    with pytest.raises(AgiProtocolError, match="multi-line"):
        codec.feed(b"520-start\n" + b"usage\n" * 10)


def test_encoder_reproduces_the_recorded_commands() -> None:
    lines = [
        encode_command("VERBOSE", "callserver route: dnid=74951234567 callerid=79161234567", "1"),
        encode_command("GET", "VARIABLE", "AD_SOURCE"),
        encode_command("SET", "VARIABLE", "ROUTE_QUEUE", "reception"),
        encode_command("SET", "VARIABLE", "ROUTE_MODE", "queue"),
    ]
    assert b"".join(lines) == to_asterisk("agi-session.txt")


@pytest.mark.parametrize(
    ("value", "sent", "seen"),
    [
        ("x\nHANGUP", b'"x HANGUP"', "x HANGUP"),
        ('a" b', b'"a\\" b"', 'a" b'),
        ("a\\", b'"a\\\\"', "a\\"),
        ("x\r\nEXEC Dial PJSIP/evil", b'"x  EXEC Dial PJSIP/evil"', "x  EXEC Dial PJSIP/evil"),
        ("", b'""', ""),
        ("Иван", '"Иван"'.encode(), "Иван"),
        ("+79161234567", b"+79161234567", "+79161234567"),
        ("nul\x00byte", b'"nul byte"', "nul byte"),
    ],
)
def test_untrusted_values_stay_one_argument(value: str, sent: bytes, seen: str) -> None:
    line = encode_command("SET", "VARIABLE", "CALLER", value)
    assert line == b"SET VARIABLE CALLER " + sent + b"\n"
    assert asterisk_parse_args(line) == ["SET", "VARIABLE", "CALLER", seen]


@given(st.lists(st.text(max_size=30), min_size=1, max_size=6))
def test_any_parts_become_exactly_those_arguments(parts: list[str]) -> None:
    line = encode_command(*parts)
    expected = ["".join(" " if ord(c) < 32 or c == "\x7f" else c for c in p) for p in parts]
    assert asterisk_parse_args(line) == expected


def test_plain_words_go_bare_everything_else_quoted() -> None:
    assert quote_arg("ROUTE_QUEUE") == "ROUTE_QUEUE"
    assert quote_arg("agi://h:4573/x") == "agi://h:4573/x"
    assert quote_arg("two words") == '"two words"'
    assert quote_arg("tab\there") == '"tab here"'


def test_command_longer_than_asterisk_buffer_is_refused() -> None:
    fits = encode_command("VERBOSE", "x" * (MAX_COMMAND_BYTES - len("VERBOSE  1\n")), "1")
    assert len(fits) == MAX_COMMAND_BYTES
    with pytest.raises(AgiCommandTooLong):
        encode_command("VERBOSE", "x" * MAX_COMMAND_BYTES, "1")
    with pytest.raises(AgiCommandTooLong):
        encode_command("SET", "VARIABLE", "X", '"' * 1100)  # quoting doubles it
    with pytest.raises(ValueError):
        encode_command()


TRICKY_ENV = (
    b"agi_network_script: route\r\nagi_a:no-space\nagi_b:  two spaces\nagi_c: cr\rinside\r\n"
    b"agi_a: again\nagi_d: \xd0\x9a\xff\nagi_e:\n\r\n200 result=1\n"
)


@pytest.mark.parametrize("first", [0, 1, 27, 40])
def test_whole_environment_in_one_read_matches_line_by_line(first: int) -> None:
    """The one-pass parse of a complete environment (taken when a read holds its blank line)
    gives exactly what the line-by-line parse gives, after any already parsed first lines."""
    slow = feed_chunks(TRICKY_ENV, [1] * len(TRICKY_ENV))
    codec = AgiCodec()
    fast = codec.feed(TRICKY_ENV[:first]) + codec.feed(TRICKY_ENV[first:])
    assert fast == slow
    env = fast[0]
    assert isinstance(env, AgiEnvironment)
    assert dict(env.raw) == {
        "agi_network_script": "route", "agi_a": "again", "agi_b": " two spaces",
        "agi_c": "cr\rinside", "agi_d": "К\ufffd", "agi_e": "",
    }  # fmt: skip
    assert fast[1:] == [AgiReply(200, "1", None, "200 result=1")]


@pytest.mark.parametrize(
    "data",
    [
        b"agi_network_script: route\nagi_channel PJSIP/x\nagi_b: 1\n\n",
        b"agi_network_script: route\nx_agi_channel: y\n\n",
        b"agi_network_script: route\nagi_b: 1\n\r\n\r\n\n",
    ],
)
def test_garbage_inside_a_complete_environment_is_refused(data: bytes) -> None:
    codec = AgiCodec()
    with pytest.raises(AgiProtocolError):
        codec.feed(data)
        codec.feed(b"200 result=1\n")


def test_environment_limits_hold_when_it_arrives_whole() -> None:
    lines = b"".join(b"agi_k%d: v\n" % i for i in range(11))
    with pytest.raises(AgiProtocolError, match="environment too large"):
        AgiCodec(max_env_lines=10).feed(lines + b"\n")
    with pytest.raises(AgiProtocolError, match="environment too large"):
        AgiCodec(max_env_bytes=100).feed(lines + b"\n")
    with pytest.raises(AgiProtocolError, match="too long"):
        AgiCodec(max_line=50).feed(b"agi_a: 1\nagi_b: " + b"v" * 60 + b"\n\n")
    assert len(AgiCodec(max_line=50).feed(b"agi_a: 1\nagi_b: " + b"v" * 30 + b"\n\n")) == 1


@pytest.mark.parametrize(
    "data",
    [b"200 result=1\n", b"200 result=0\n", b"200 result=-1\n", b"200 result=1 (x y)\n"],
)
def test_common_replies_take_the_fast_paths_with_the_same_result(data: bytes) -> None:
    codec = AgiCodec()
    codec.feed(MINIMAL_ENV)
    expected = parse_reply([data[:-1].decode()])
    assert codec.feed(data) == [expected]
    assert codec.feed(data[:5]) == [] and codec.feed(data[5:]) == [expected]  # after a split
    assert codec.feed(data + data) == [expected, expected]
    assert codec.eof()
