"""callserver.store.catchup_rows: one call's facts from its CDR and queue_log rows, and which
stored facts they correct (pure; the database side is in tests/integration/test_store_catchup)."""

from __future__ import annotations

import dataclasses

from callserver.core.events import CallSnapshot
from callserver.store.catchup_rows import Cdr, QueueLog, call_truth, corrections, interface

CTX = ("from-trunk", "route-inbound")


def _cdr(uid: str, end: float, dstchannel: str, *, channel: str = "PJSIP/trunk-00000001",
         dst: str = "74951234567", dcontext: str = "route-inbound", seq: int = 1,
         disposition: str = "ANSWERED") -> Cdr:  # fmt: skip
    return Cdr(start=100.0, answer=100.2, end=end, src="79161234567", dst=dst,
               dcontext=dcontext, channel=channel, dstchannel=dstchannel,
               disposition=disposition, uniqueid=uid, linkedid="100.1",
               clid='"Лаб Пациент" <79161234567>', sequence=seq)  # fmt: skip


def _q(t: float, event: str, *data: str, agent: str = "NONE") -> QueueLog:
    padded = (*data, "", "", "", "", "")[:5]
    return QueueLog(t, "100.1", "reception", agent, event, padded)  # type: ignore[arg-type]


def test_answered_call() -> None:
    truth = call_truth(
        [_cdr("100.1", 115.4, "PJSIP/op101-0000002a")],
        [_q(101, "ENTERQUEUE", "", "79161234567", "1"),
         _q(104, "CONNECT", "3", "100.2", "1", agent="Operator 101"),
         _q(115.4, "COMPLETECALLER", "3", "11", "1", agent="Operator 101")], CTX)  # fmt: skip
    assert truth is not None
    assert (truth.caller, truth.caller_name, truth.did, truth.queue) == (
        "79161234567", "Лаб Пациент", "74951234567", "reception")
    assert (truth.agent, truth.agent_name, truth.state, truth.hangup_by) == (
        "PJSIP/op101", "Operator 101", "ended", "caller")
    assert (truth.answered_at, truth.wait_seconds, truth.ended_at) == (104, 3.0, 115.4)
    assert truth.talk_seconds is not None and abs(truth.talk_seconds - 11.4) < 1e-9
    assert truth.inbound and not truth.transferred


def test_blind_transfer_ends_with_the_target() -> None:
    cdrs = [_cdr("100.1", 110.0, "PJSIP/op101-0000002a", dst="102", dcontext="operators"),
            _cdr("100.1", 130.0, "PJSIP/op102-0000002c", dst="102", dcontext="operators",
                 seq=3),
            _cdr("100.2", 110.0, "", channel="PJSIP/op101-0000002a", seq=2)]  # fmt: skip
    qlog = [_q(101, "ENTERQUEUE", "", "79161234567", "1"),
            _q(104, "CONNECT", "3", "100.2", "1", agent="Operator 101"),
            _q(110, "BLINDTRANSFER", "102", "operators", "3", "6", "1", agent="Operator 101")]
    truth = call_truth(cdrs, qlog, CTX)
    assert truth is not None
    assert truth.agents == ("PJSIP/op101", "PJSIP/op102") and truth.agent == "PJSIP/op102"
    assert truth.agent_name == "" and truth.transferred
    assert truth.talk_seconds == 26.0  # end − connect: includes op102's ring time
    assert truth.did == "" and truth.inbound  # dst is the transfer target: no DID known


def test_abandoned_and_timeout() -> None:
    for event in ("ABANDON", "EXITWITHTIMEOUT"):
        truth = call_truth(
            [_cdr("100.1", 146.0, "", disposition="NO ANSWER")],
            [_q(101, "ENTERQUEUE", "", "79161234567", "2"), _q(146, event, "1", "2", "45")],
            CTX,
        )
        assert truth is not None
        assert (truth.state, truth.wait_seconds, truth.abandon_position, truth.agent) == (
            "abandoned", 45.0, 1, "")
        assert truth.answered_at is None and truth.talk_seconds is None


def test_no_first_channel_cdr_is_no_call() -> None:
    assert call_truth([_cdr("100.2", 110.0, "")], [], CTX) is None


def test_userfield_did_and_local_member_ignored() -> None:
    cdr = dataclasses.replace(_cdr("100.1", 120.0, "Local/op-bot@lab-local-00000000;1"),
                              userfield="+74951110001", dst="s")  # fmt: skip
    truth = call_truth([cdr], [_q(101, "ENTERQUEUE"), _q(103, "CONNECT", "2", agent="bot")], CTX)
    assert truth is not None and truth.did == "+74951110001" and truth.agent == ""
    assert interface("PJSIP/op101-0000002a") == "PJSIP/op101" and interface("") == ""


def _stored(**kw: object) -> CallSnapshot:
    base = CallSnapshot(
        id="100.1", linkedid="100.1", direction="inbound", state="ended", caller="79161234567",
        caller_name="", did="74951234567", ad_source="a", queue="reception",
        agent="PJSIP/op101", agent_name="Operator 101", started_at=100.0, queued_at=101.0,
        answered_at=104.0, ended_at=115.4, wait_seconds=3.0, talk_seconds=9.4,
        hold_seconds=2.0, hangup_by="caller",
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_corrections() -> None:
    truth = call_truth(
        [_cdr("100.1", 115.4, "PJSIP/op101-0000002a")],
        [_q(101, "ENTERQUEUE"), _q(104, "CONNECT", "3", agent="Operator 101"),
         _q(115.4, "COMPLETECALLER", "3", "11")], CTX)  # fmt: skip
    assert truth is not None
    # right (talk + hold = the records' talk): nothing to correct
    assert corrections(_stored(), 115.4, truth, resync_closed=False) == {}
    # resync closed it during the gap, unanswered, ended at the last event seen
    gap = _stored(agent="", answered_at=None, wait_seconds=None, talk_seconds=None,
                  hold_seconds=None, ended_at=None, hangup_by="")  # fmt: skip
    fix = corrections(gap, 102.0, truth, resync_closed=True)
    assert fix["agent"] == "PJSIP/op101" and fix["answered_at"] == 104
    assert fix["wait_seconds"] == 3.0 and fix["ended_at"] == 115.4
    assert abs(fix["talk_seconds"] - 11.4) < 1e-9 and fix["hangup_by"] == "caller"
    # still open in the store: ended and state fixed, the stored hold kept apart from talk
    fix = corrections(_stored(state="answered"), None, truth, resync_closed=False)
    assert fix == {"state": "ended", "ended_at": 115.4}
