"""The ground-truth ledger (issue 9) against the AMI stream a plain client read.

pbxsim runs in-process a short generated traffic with holds, blind and attended transfers
and abandons; a test-local AMI reader (no callserver code) records every event. Each
ledger line must agree with what AMI showed for that caller's channel.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.scenario import load

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
Msg = dict[str, str]

SCENARIO = """
name = "ledger-mix"
[pbx]
dids = { "74951234567" = "source-a", "74957654321" = "source-b" }
[[queues]]
name = "reception"
members = ["op101", "op102", "op103"]
[agents]
count = 4
ring_s = [1.0, 3.0]
answer_prob = 0.9
talk_s = [8.0, 20.0]
wrapup_s = 1.0
agent_hangs_up = 0.3
[traffic]
calls_per_hour = 1500
duration_s = 150
patience_mean_s = 25
patience_min_s = 4
hold_prob = 0.4
hold_after_s = [1.0, 4.0]
hold_s = [2.0, 5.0]
blind_transfer_prob = 0.2
attended_transfer_prob = 0.2
transfer_to = ["104"]
transfer_after_s = [2.0, 6.0]
transferer_hangup_s = [1.0, 3.0]
"""


KEYS = {
    "direction", "uniqueid", "linkedid", "caller", "did", "ad_source", "route_mode", "queue",
    "outcome", "agents", "start", "answer", "abandon", "end", "wait_s", "talk_s", "hold_s",
    "hangup_cause", "transfers", "agi_status", "route_reason",
}  # fmt: skip


def _parse(raw: bytes) -> list[Msg]:
    out = []
    for block in raw.split(b"\r\n\r\n"):
        msg: Msg = {}
        for line in block.decode().split("\r\n"):
            k, _, v = line.partition(": ")
            msg.setdefault(k, v)
        if "Event" in msg:
            out.append(msg)
    return out


async def _run(tmp_path: Path) -> tuple[list[Msg], list[dict[str, Any]]]:
    path = tmp_path / "ledger-mix.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    ledger = tmp_path / "calls.jsonl"
    opts = PbxOptions(
        ami_port=0, agi_port=1, speed=40.0, agi_timeout_s=0.5, seed=7, ledger_path=str(ledger)
    )
    pbx = Pbx(load(str(path)), opts)
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    data = b""

    async def read() -> None:
        nonlocal data
        while chunk := await reader.read(65536):
            data += chunk

    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
        reading = asyncio.create_task(read())
        async with asyncio.timeout(60):
            await pbx.run_scenario()
        await asyncio.sleep(0.3)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    finally:
        writer.close()
        await pbx.aclose()
    lines = [json.loads(x) for x in ledger.read_text(encoding="utf-8").splitlines()]
    return _parse(data), lines


def _by_caller(evs: list[Msg]) -> dict[str, dict[str, list[Msg]]]:
    """Events of each trunk (caller) channel by name, plus transfer events by transferee."""
    out: dict[str, dict[str, list[Msg]]] = defaultdict(lambda: defaultdict(list))
    for e in evs:
        uid = e.get("TransfereeUniqueid") or e.get("Uniqueid", "")
        out[uid][e["Event"]].append(e)
    return out


async def test_ledger_matches_the_ami_stream(tmp_path: Path) -> None:
    evs, ledger = await _run(tmp_path)
    callers = {
        e["Uniqueid"]
        for e in evs
        if e["Event"] == "Newchannel" and e["Channel"].startswith("PJSIP/trunk")
    }
    assert len(ledger) == len(callers) >= 20
    assert {r["uniqueid"] for r in ledger} == callers
    per = _by_caller(evs)
    answered_by_linkedid: dict[str, set[str]] = defaultdict(set)
    for e in evs:
        answer = e["Event"] == "DialEnd" and e.get("DialStatus") == "ANSWER"
        if answer and e["DestChannel"].startswith("PJSIP/op"):
            answered_by_linkedid[e["DestLinkedid"]].add(e["DestChannel"].rsplit("-", 1)[0])
    for r in ledger:
        ev = per[str(r["uniqueid"])]
        connects, abandons = ev["AgentConnect"], ev["QueueCallerAbandon"]
        assert (r["outcome"] == "answered") == bool(connects), r
        if connects:
            assert r["wait_s"] == int(connects[0]["HoldTime"]), r
        elif abandons:
            assert r["outcome"] == "abandoned" and r["wait_s"] == int(abandons[0]["HoldTime"])
        agents = {a["interface"] for a in r["agents"]}
        assert agents == answered_by_linkedid[str(r["linkedid"])], r
        kinds = ["blind"] * len(ev["BlindTransfer"]) + ["attended"] * len(ev["AttendedTransfer"])
        assert sorted(t["kind"] for t in r["transfers"]) == sorted(kinds), r
        assert (r["hold_s"] > 0) == bool(ev["MusicOnHoldStart"]), r
        assert r["hangup_cause"] == int(ev["Hangup"][-1]["Cause"]), r
        if connects and not r["transfers"]:
            assert int(r["talk_s"]) == int(ev["AgentComplete"][0]["TalkTime"]), r
    outcomes = {str(r["outcome"]) for r in ledger}
    assert {"answered", "abandoned"} <= outcomes
    kinds_seen = {t["kind"] for r in ledger for t in r["transfers"]}
    assert kinds_seen == {"blind", "attended"}
    assert any(r["hold_s"] > 0 for r in ledger)
    for r in ledger:  # JSON shape: every documented key, times as floats
        assert set(r) == KEYS
        assert isinstance(r["end"], float) and r["end"] >= r["start"]


async def test_cli_ledger_option_records_the_hold_scenario(tmp_path: Path) -> None:
    """``python -m pbxsim --ledger PATH``: the hold scenario's one call, 5 s on hold, a
    16 s conversation with op101 (held seconds count as talk), answered after 3 s ringing."""
    ledger = tmp_path / "hold.jsonl"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pbxsim", "--scenario", "hold", "--speed", "20",
        "--ami", "127.0.0.1:0", "--ari", "127.0.0.1:0", "--agi", "127.0.0.1:1",
        "--log-level", "WARNING", "--ledger", str(ledger),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with asyncio.timeout(30):
        assert await proc.wait() == 0
    (rec,) = [json.loads(x) for x in ledger.read_text(encoding="utf-8").splitlines()]
    assert (rec["outcome"], rec["queue"], rec["did"], rec["caller"]) == (
        "answered", "reception", "74951234567", "79161234567",
    )  # fmt: skip
    assert rec["wait_s"] == 3 and rec["transfers"] == [] and rec["hangup_cause"] == 16
    assert [a["interface"] for a in rec["agents"]] == ["PJSIP/op101"]
    assert 4.8 <= rec["hold_s"] <= 5.5 and 15.8 <= rec["talk_s"] <= 16.8
    assert rec["answer"] - rec["start"] == pytest.approx(rec["wait_s"] + 1.4, abs=1.0)
