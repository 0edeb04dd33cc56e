"""The ground-truth ledger: one JSON line per generated inbound call, written when the
call ends (and flushed), so a test can compare what callserver recorded with what really
happened. Format: ``pbxsim/README.md`` "Ledger". Times are ``clock.wall()`` (Unix seconds
of scenario time: the wall clock at ``--speed 1``); durations are scenario seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from pbxsim.engine import Call
from pbxsim.wire import PbxsimError


class LedgerError(PbxsimError):
    """The ledger file cannot be opened or written."""


def _outcome(call: Call) -> str:
    if call.answered_at is not None:
        return "answered"
    if call.abandoned_at is not None:
        return "abandoned"
    return "other"


def record(call: Call, did: str) -> dict[str, Any]:
    """The ledger line of one ended call (see the README for every key)."""
    ch = call.channel
    agents: dict[str, float] = {}
    for interface, seconds in call.talks:
        agents[interface] = round(agents.get(interface, 0.0) + seconds, 3)
    return {
        "direction": "inbound",
        "uniqueid": ch.uniqueid,
        "linkedid": ch.linkedid,
        "caller": ch.cid_num,
        "did": did,
        "ad_source": ch.variables.get("AD_SOURCE", ""),
        "route_mode": ch.variables.get("ROUTE_MODE", ""),
        "route_reason": ch.variables.get("ROUTE_REASON", ""),
        "agi_status": ch.variables.get("AGISTATUS", ""),
        "queue": call.queue,
        "outcome": _outcome(call),
        "agents": [{"interface": k, "talk_s": v} for k, v in agents.items()],
        "start": round(call.started_at, 3),
        "answer": None if call.answered_at is None else round(call.answered_at, 3),
        "abandon": None if call.abandoned_at is None else round(call.abandoned_at, 3),
        "end": round(ch.ended, 3),
        "wait_s": call.wait_s,
        "talk_s": round(sum(s for _, s in call.talks), 3),
        "hold_s": round(call.held_s, 3),
        "hangup_cause": ch.cause,
        "transfers": [{"kind": k, "from": f, "to": t} for k, f, t in call.transfers],
    }


class Ledger:
    """JSON-lines file, one object per ended call, flushed after each line.

    Raises:
        LedgerError: the file cannot be opened (constructor) or written (``write``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lines = 0
        try:
            self._file: TextIO = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise LedgerError(message=f"cannot open ledger {self.path}: {exc}") from exc

    def write(self, rec: dict[str, Any]) -> None:
        try:
            self._file.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self._file.flush()
        except OSError as exc:
            raise LedgerError(message=f"cannot write ledger {self.path}: {exc}") from exc
        self.lines += 1

    def close(self) -> None:
        self._file.close()
