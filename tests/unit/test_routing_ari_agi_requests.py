"""RouteRequest construction from untrusted AGI environments and ARI StasisStart channels."""

from __future__ import annotations

import json
from pathlib import Path

from callserver.asterisk.agi_codec import AgiCodec, AgiEnvironment, build_environment
from routing.agi_handler import request_from_agi, variables_to_send
from routing.ari import ari_variables, request_from_stasis
from routing.models import Decision, Tracking
from tests.transcripts import from_asterisk

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"


def _transcript_env() -> AgiEnvironment:
    (env, *_) = AgiCodec().feed(from_asterisk("agi-session.txt"))
    assert isinstance(env, AgiEnvironment)
    return env


def test_request_from_recorded_agi_session() -> None:
    r = request_from_agi(_transcript_env())
    assert (r.uniqueid, r.linkedid, r.caller, r.did, r.source_hint, r.origin) == (
        "1795413075.4", "1795413075.4", "+79161234567", "74951234567", "source-a", "agi",
    )  # fmt: skip
    assert r.channel_language == "en"
    assert r.campaign_hint == r.ivr_digits == ""


def test_agi_arguments_campaign_digits_linkedid() -> None:
    env = build_environment({
        "agi_network_script": "route?campaign=ignored", "agi_uniqueid": "1.2",
        "agi_callerid": "8 (916) 123-45-67", "agi_dnid": "unknown",
        "agi_arg_1": "+7 495 765-43-21", "agi_arg_2": "", "agi_arg_3": "site-callback",
        "agi_arg_4": "3", "agi_arg_5": "1.1",
    })  # fmt: skip
    r = request_from_agi(env)
    assert (r.caller, r.did, r.campaign_hint, r.ivr_digits, r.linkedid) == (
        "+79161234567", "74957654321", "site-callback", "3", "1.1",
    )  # fmt: skip


def test_agi_untrusted_values_dropped() -> None:
    env = build_environment({
        "agi_uniqueid": "1.2\r\nHANGUP", "agi_callerid": "anonymous", "agi_dnid": "x",
        "agi_extension": "s", "agi_arg_1": "", "agi_arg_2": 'a" b', "agi_arg_3": "",
        "agi_arg_4": "1;2", "agi_language": "ru\n",
    })  # fmt: skip
    r = request_from_agi(env)
    assert (r.uniqueid, r.caller, r.did, r.source_hint, r.ivr_digits) == (
        "unknown", None, "", "", "",
    )  # fmt: skip
    assert r.channel_language == "ru"  # stripped, then a plain token


def test_query_parameters_as_fallback() -> None:
    env = build_environment({"agi_network_script": "route?campaign=promo&digits=2"})
    r = request_from_agi(env)
    assert (r.campaign_hint, r.ivr_digits) == ("promo", "2")


def test_request_from_recorded_stasis_start() -> None:
    line = (FIXTURES / "ari-stasis-call.jsonl").read_text(encoding="utf-8").splitlines()[0]
    event = json.loads(line)
    r = request_from_stasis(event["channel"], event["args"])
    assert (r.uniqueid, r.caller, r.did, r.origin, r.channel_language) == (
        "1795413228.13", "+79161234567", "74959990000", "ari", "en",
    )  # fmt: skip


def test_stasis_channelvars_and_garbage() -> None:
    channel: dict[str, object] = {
        "id": "9.9", "name": "PJSIP/x", "caller": {"number": 5},
        "dialplan": {"exten": "74951234567"},
        "channelvars": {"CAMPAIGN": "site-callback", "IVR_CHOICE": "4", "AD_SOURCE": "a\nb"},
    }  # fmt: skip
    r = request_from_stasis(channel)
    assert (r.did, r.caller, r.campaign_hint, r.ivr_digits, r.source_hint) == (
        "74951234567", None, "site-callback", "4", "",
    )  # fmt: skip
    assert request_from_stasis({}).uniqueid == "unknown"


def test_optional_variables_left_out_when_empty() -> None:
    d = Decision(queue="reception", rule_version="v", reasons=("default_queue",))
    names = [n for n, _ in variables_to_send(d)]
    assert names == [
        "ROUTE_QUEUE", "ROUTE_PRIORITY", "ROUTE_LANG", "ROUTE_MODE", "ROUTE_REASON",
        "ROUTE_RULES_VERSION",
    ]  # fmt: skip
    sticky = Decision(queue="q", preferred_agent="PJSIP/op1", sticky_seconds=20,
                      tracking=Tracking(campaign="c"))  # fmt: skip
    assert len(variables_to_send(sticky)) == 9
    assert ari_variables(sticky)["ROUTE_AGENT"] == "PJSIP/op1"
