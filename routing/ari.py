"""The same routing decisions for calls that enter Stasis directly (the ARI line).

``request_from_stasis`` turns a StasisStart event's ``channel`` (and ``args``) into a
``RouteRequest``; the ivr/ARI session then calls ``RoutingService.route`` and acts on the
``Decision`` (``mode`` bot → keep the call in the bot; queue → set ``ari_variables`` on the
channel and continue in the dialplan). Pure: no ARI I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from callserver.core.phone import try_normalize
from callserver.logs import escape_control
from routing.models import Decision, RouteRequest, did_digits, ivr_digits, safe_token


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _sub(value: object, key: str) -> object:
    return value.get(key) if isinstance(value, Mapping) else None


def request_from_stasis(channel: Mapping[str, object], args: Sequence[str] = ()) -> RouteRequest:
    """A RouteRequest from a StasisStart ``channel`` dict.

    DID: ``args[1]`` when the dialplan passed ``Stasis(app,inbound,${DID})``, else the channel's
    ``dialplan.exten``. Ad source/campaign/IVR digits come from the channel variables the ARI app
    subscribed to (``channelvars``: ``AD_SOURCE``, ``CAMPAIGN``, ``IVR_CHOICE``). Never raises.
    """
    variables = channel.get("channelvars")
    did = did_digits(args[1]) if len(args) > 1 else ""
    did = did or did_digits(_text(_sub(channel.get("dialplan"), "exten")))
    uniqueid = safe_token(_text(channel.get("id"))) or "unknown"
    return RouteRequest(
        uniqueid=uniqueid,
        linkedid=uniqueid,
        channel=escape_control(_text(channel.get("name")))[:120],
        caller=try_normalize(_text(_sub(channel.get("caller"), "number"))[:40]),
        did=did,
        campaign_hint=safe_token(_text(_sub(variables, "CAMPAIGN"))),
        source_hint=safe_token(_text(_sub(variables, "AD_SOURCE"))),
        ivr_digits=ivr_digits(_text(_sub(variables, "IVR_CHOICE"))),
        channel_language=safe_token(_text(channel.get("language"))),
        origin="ari",
    )


def ari_variables(decision: Decision) -> dict[str, str]:
    """The ``ROUTE_*`` variables to set on the channel (ARI ``POST /channels/{id}/variable``)
    before ``continue``-ing it into the dialplan, same names as the FastAGI path."""
    return dict(decision.channel_variables())
