"""AmiClient's event filters against the scripted AMI peer of ``test_ami_client``: added after
each login, and a refusal (at once or halfway) leaves the session connected."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callserver.asterisk.ami_connection import AmiClient
from tests.integration.test_ami_client import FakeAmi, Recorder, config, eventually

FILTERS = [("action(exclude),name(Newexten)", ""), ("", "!Variable: QUEUENAME")]


def filtering_client(peer: FakeAmi) -> AmiClient:
    rec = Recorder()
    return AmiClient(
        config(peer.port), on_event=rec.on_event, on_connected=rec.on_connected,
        event_filters=FILTERS,
    )  # fmt: skip


async def test_event_filters_are_added_after_each_login(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeAmi() as peer:
        peer.accept_filters = 10
        client = filtering_client(peer)
        with caplog.at_level(logging.INFO, logger="callserver.asterisk.ami_connection"):
            await client.start()
            try:
                await eventually(lambda: peer.accept_filters == 8)
                sent = [a for a in peer.actions if a["Action"] == "Filter"]
                got = [(a["Operation"], a.get("MatchCriteria", ""), a["Filter"]) for a in sent]
                assert got == [("Add", *f) for f in FILTERS]
                await eventually(lambda: "AMI event filters added: 2" in caplog.text)
                assert client.state == "connected" and peer.connections == 1
            finally:
                await client.aclose()


@pytest.mark.parametrize(("accepted", "log"), [(0, "after 0 of 2"), (1, "after 1 of 2")])
async def test_a_refused_filter_leaves_the_session_connected(
    accepted: int, log: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused at once or halfway: exclude filters only take away what nobody reads, so the
    session stays as it is (no reconnect, no retry) and the refusal is logged."""
    async with FakeAmi() as peer:
        peer.accept_filters = accepted
        client = filtering_client(peer)
        with caplog.at_level(logging.WARNING):
            await client.start()
            try:
                await eventually(lambda: log in caplog.text)
                await asyncio.sleep(0.1)
                assert [a["Action"] for a in peer.actions].count("Filter") == accepted + 1
                assert client.state == "connected" and peer.connections == 1
                assert "Permission denied" in caplog.text and "write = system" in caplog.text
            finally:
                await client.aclose()
