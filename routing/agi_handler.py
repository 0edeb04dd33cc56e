"""The FastAGI ``route`` handler: the only routing module that knows ``AgiSession``.

Dialplan: ``AGI(agi://callserver:4573/route,${DID},${AD_SOURCE},${CAMPAIGN},${IVR_CHOICE},
${CHANNEL(linkedid)})`` — every argument optional (see ``routing/dialplan-snippet.conf``). The
handler builds a ``RouteRequest`` from the environment (caller ID normalised to E.164, every other
value reduced to a safe token, so nothing untrusted reaches a channel variable), asks the service,
and sets the ``ROUTE_*`` variables. ``ROUTE_AGENT``/``ROUTE_STICKY``/``ROUTE_CAMPAIGN`` are not
sent when empty or 0 (no sticky agent, no campaign): an unset channel variable reads as empty in
the dialplan, and each variable costs a round trip (Asterisk reads AGI commands strictly one at a
time, so they cannot be pipelined).

It never leaves the caller hanging: on any failure it stops setting variables and returns, the
server closes the session, and the dialplan's defaults carry the call.
"""

from __future__ import annotations

import logging

from callserver.asterisk.agi_server import AgiEnvironment, AgiHandler, AgiSession
from callserver.asterisk.errors import AgiError, AgiHangup
from callserver.core.phone import mask, try_normalize
from callserver.logs import escape_control
from routing.models import Decision, RouteRequest, did_digits, ivr_digits, safe_token
from routing.service import RoutingService

log = logging.getLogger(__name__)

DECISION_WAIT = 0.05
"""Seconds the route script waits, before it sets ``ROUTE_REASON``, for the stored decision."""
DURABLE_BEFORE = "ROUTE_REASON"
"""The variable sent only once the decision is written (or ``DECISION_WAIT`` has passed)."""
OPTIONAL_VARIABLES = frozenset({"ROUTE_AGENT", "ROUTE_STICKY", "ROUTE_CAMPAIGN"})
"""Not sent when empty or ``0``: unset reads as empty in the dialplan (no sticky agent)."""


def _arg(env: AgiEnvironment, index: int) -> str:
    return env.args[index] if len(env.args) > index else ""


def request_from_agi(env: AgiEnvironment) -> RouteRequest:
    """A RouteRequest from the AGI environment. Arguments: 1 DID (else ``agi_dnid``, else
    ``agi_extension``), 2 ad source, 3 campaign, 4 IVR digits, 5 linkedid; the script's query
    parameters ``campaign``/``digits`` work too (``route?campaign=x``). Never raises."""
    did = did_digits(_arg(env, 0)) or did_digits(env.dnid) or did_digits(env.extension)
    digits = _arg(env, 3) or env.params.get("digits", "")
    return RouteRequest(
        uniqueid=safe_token(env.uniqueid) or "unknown",
        linkedid=safe_token(_arg(env, 4)) or safe_token(env.uniqueid),
        channel=escape_control(env.channel)[:120],
        caller=try_normalize(env.callerid[:40]),
        did=did,
        campaign_hint=safe_token(_arg(env, 2) or env.params.get("campaign", "")),
        source_hint=safe_token(_arg(env, 1)),
        ivr_digits=ivr_digits(digits),
        channel_language=safe_token(env.language),
        origin="agi",
    )


def variables_to_send(decision: Decision) -> list[tuple[str, str]]:
    """The ``ROUTE_*`` (name, value) pairs to SET, in order, optional empty ones left out."""
    return [
        (name, value)
        for name, value in decision.channel_variables()
        if name not in OPTIONAL_VARIABLES or value not in ("", "0")
    ]


def make_route_handler(service: RoutingService) -> AgiHandler:
    """The handler to register as ``handlers["route"]`` on ``FastAgiServer``."""

    async def route(session: AgiSession) -> None:
        try:
            request = request_from_agi(session.env)
        except Exception as exc:  # a bug here must still leave the dialplan defaults in charge
            log.error("AGI route request not built: %r; caller=%s", exc, mask(session.env.callerid))
            return
        decision = await service.route(request)
        try:
            for name, value in variables_to_send(decision):
                if name == DURABLE_BEFORE:
                    # the call tracking record is durable before ROUTE_REASON is set (the write
                    # ran while the other variables went out; never longer than DECISION_WAIT:
                    # a slow or absent PostgreSQL does not hold the caller), so a call whose
                    # channel carries a ROUTE_REASON has its decision stored even when
                    # callserver is killed the next instant
                    await service.decision_written(request.uniqueid, DECISION_WAIT)
                await session.set_variable(name, value)
        except AgiHangup:
            log.info("caller hung up while routing; uniqueid=%s", request.uniqueid)
        except AgiError as exc:
            log.warning(
                "ROUTE_* variables not all set (%s), dialplan defaults apply; uniqueid=%s",
                escape_control(exc.message),
                request.uniqueid,
            )

    return route
