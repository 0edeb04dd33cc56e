"""pbxsim's FastAGI command handling against Asterisk's res_agi (no sockets)."""

from __future__ import annotations

from pbxsim.agi_client import AgiRequest, AgiSession, split_args
from pbxsim.clock import Clock
from pbxsim.engine import Engine


def _session() -> tuple[AgiSession, list[bytes]]:
    events: list[bytes] = []
    eng = Engine(events.append, Clock(10.0))
    ch = eng.new_channel("PJSIP/trunk", context="route-inbound", exten="74951234567", state=6)
    return AgiSession(eng, ch, AgiRequest("route", ())), events


def _exec_end(events: list[bytes]) -> dict[str, str]:
    raw = events[-1].decode()
    assert raw.startswith("Event: AGIExecEnd\r\n")
    return dict(line.split(": ", 1) for line in raw.split("\r\n") if ": " in line)


def test_wrong_argument_count_is_520_usage_and_sets_nothing() -> None:
    """Bug: ``SET VARIABLE X a b`` (a value with a space the server forgot to quote) set X
    to "a"; res_agi's handle_setvariable wants exactly 4 args and answers 520 usage."""
    agi, events = _session()
    reply = agi.execute("SET VARIABLE ROUTE_QUEUE doctors desk")
    assert reply.startswith("520-Invalid command syntax.  Proper usage follows:\n")
    assert reply.endswith("\n520 End of proper usage.\n")
    assert "ROUTE_QUEUE" not in agi.ch.variables
    end = _exec_end(events)
    assert (end["ResultCode"], end["Result"]) == ("520", "Usage")
    assert agi.execute("GET VARIABLE ROUTE_QUEUE extra").startswith("520-")


def test_quoted_and_tab_separated_arguments_work() -> None:
    agi, _events = _session()
    assert agi.execute('SET VARIABLE ROUTE_QUEUE "doctors desk"') == "200 result=1\n"
    assert agi.ch.variables["ROUTE_QUEUE"] == "doctors desk"
    assert split_args("SET\tVARIABLE\tX\t1") == ["SET", "VARIABLE", "X", "1"]
    assert agi.execute("GET\tVARIABLE\tROUTE_QUEUE") == "200 result=1 (doctors desk)\n"


def test_unknown_command_is_510_with_asterisks_ami_result() -> None:
    agi, events = _session()
    assert agi.execute("FROB THE CHANNEL") == "510 Invalid or unknown command\n"
    end = _exec_end(events)
    assert (end["ResultCode"], end["Result"]) == ("510", "Invalid or unknown command")
