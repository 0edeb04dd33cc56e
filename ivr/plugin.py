"""The voice bot plugin (issue 12): calls routing sends to ``bot`` are answered over ARI.

Requires ``crm_requests`` (appointment and callback requests through the CRM outbox); uses
``callback_jobs`` (callbacks plugin) for callbacks when some plugin provides it, and
``campaign_calls`` (campaigns plugin) to speak answered campaign calls (``ivr.campaign_calls``).
Contributes the Stasis handlers, a quick ARI event handler, a bus subscriber (operators freeing
up), the shared recogniser (a component), ``GET /api/ivr/calls`` (supervisor, admin) and
``/metrics`` gauges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from callserver.plugin_api import Contribution, Metric, PluginDeps, StasisHandler
from callserver.web.auth import require_role
from ivr.asr import SharedRecognizer
from ivr.campaign_calls import CampaignStasisHandler
from ivr.campaign_dialog import CampaignCallsPort, CampaignDialog
from ivr.config import IvrConfig, validate_ivr
from ivr.media import CallMedia, CommentLimits, MediaEvent
from ivr.models import DialogSettings, Lang
from ivr.outcomes import CallbackJobs, CrmRequests, PortOutcomes
from ivr.rtp import PortPool
from ivr.runtime import BotStasisHandler, EventRouter, OperatorWatch
from ivr.session import AriPort, BotSession, CallInfo, MediaFactory, SessionSettings
from ivr.spoken import SpokenTexts
from recognition.vad import VadSettings


def _media_factory(config: IvrConfig, recognizer: SharedRecognizer) -> MediaFactory:
    vad = VadSettings(trailing_pause_ms=config.trailing_pause_ms,
                      max_utterance_ms=config.max_utterance_ms)
    vad = replace(vad, sample_rate=16000) if config.codec == "slin16" else vad

    async def media(lang: str, emit: Callable[[MediaEvent], None]) -> CallMedia | None:
        if lang != recognizer.language or not await recognizer.ensure():
            return None  # keypad-only: no recogniser, or none for the caller's language
        stream = await recognizer.open_stream()
        if stream is None:
            return None
        return CallMedia(config.codec, stream, lang=lang, vad=vad, emit=emit,
                         dictation=recognizer.dictation)

    return media


def _routes(handler: BotStasisHandler, recognizer: SharedRecognizer) -> list[web.RouteDef]:
    async def calls(request: web.Request) -> web.Response:
        require_role(request, "supervisor", "admin")
        return web.json_response({
            "recognition": {"available": recognizer.available, "reason": recognizer.reason,
                            "language": recognizer.language,
                            "audio_s": round(recognizer.audio_seconds, 3)},
            "active": handler.active, "calls_total": handler.calls_total,
            "refused": handler.refused, "outcomes": dict(handler.outcomes),
            "calls": list(reversed(handler.recent)),
            "active_calls": handler.live(),
        })  # fmt: skip

    return [web.get("/api/ivr/calls", calls)]


def _metrics(handler: BotStasisHandler, watch: OperatorWatch,
             recognizer: SharedRecognizer) -> list[Metric]:
    return [
        Metric("callserver_ivr_active_calls", "bot calls running", lambda: handler.active),
        Metric("callserver_ivr_calls_total", "bot calls started",
               lambda: handler.calls_total),
        Metric("callserver_ivr_refused_total", "bot calls over max_calls sent back",
               lambda: handler.refused),
        Metric("callserver_ivr_operator_freed_total", "bot calls returned to a queue",
               lambda: watch.freed_total),
        Metric("callserver_ivr_recognition_available", "1 when speech recognition runs",
               lambda: int(recognizer.available)),
    ]


class IvrPlugin:
    name = "ivr"
    config_type = IvrConfig
    migrations: Path | None = None
    requires: tuple[str, ...] = ("crm_requests",)
    optional: tuple[str, ...] = ("callback_jobs", "route_decisions", "campaign_calls")
    """``route_decisions`` is not called: listing it orders routing's Stasis handler (which sets
    ``ROUTE_*`` on the channel) before ours. ``campaign_calls`` (campaigns plugin): the bot
    speaks the answered campaign calls (``ivr.campaign_calls``); without it, inbound only."""
    provides: tuple[str, ...] = ()

    def validate(self, config: IvrConfig) -> None:
        validate_ivr(config)

    def build(self, config: IvrConfig, deps: PluginDeps) -> Contribution:
        if not config.enabled:
            return Contribution()
        recognizer = SharedRecognizer(config)
        router = EventRouter()
        watch = OperatorWatch(router)
        outcomes = PortOutcomes(deps.ports.get("crm_requests", CrmRequests),
                                deps.ports.maybe("callback_jobs", CallbackJobs))
        ports = PortPool(config.rtp_port_min, config.rtp_port_max)
        base = SessionSettings(
            app=deps.server.ari_app, prompts=config.prompts, rtp_host=config.rtp_host,
            codec=config.codec, max_call_s=config.max_call_s,
            dialog=DialogSettings(silence_s=config.silence_s,
                                  priority_boost=config.priority_boost),
            recordings_dir=config.recordings_dir,
            comment=CommentLimits(pause_ms=config.comment_pause_ms, max_s=config.comment_max_s),
        )  # fmt: skip
        media = _media_factory(config, recognizer)
        ari: AriPort = deps.ari

        def make(call: CallInfo) -> BotSession:
            settings = replace(base, dialog=replace(base.dialog, lang=call.lang))
            return BotSession(call, ari, outcomes, settings, media, ports.candidates)

        lang: Lang = "ru" if config.language == "ru" else "en"
        handler = BotStasisHandler(ari, router, watch, make, max_calls=config.max_calls,
                                   language=lang, use_route_language=config.use_route_language)
        stasis: list[StasisHandler] = [handler]
        campaign_calls = deps.ports.maybe("campaign_calls", CampaignCallsPort)
        if campaign_calls is not None:
            spoken = SpokenTexts(config.sounds_dir, config.prompts)

            def make_campaign(call: CallInfo, dialog: CampaignDialog) -> BotSession:
                settings = replace(base, dialog=replace(base.dialog, lang=call.lang))
                return BotSession(call, ari, outcomes, settings, media, ports.candidates,
                                  dialog=dialog, sound=spoken.media)  # fmt: skip

            stasis.insert(0, CampaignStasisHandler(campaign_calls, make_campaign,
                                                   handler.run_session, silence_s=config.silence_s))
        return Contribution(
            routes=_routes(handler, recognizer),
            components=[recognizer],
            stasis_handlers=stasis,
            ari_event_handlers=[router],
            subscribers=[watch],
            metrics=_metrics(handler, watch, recognizer),
        )


plugin = IvrPlugin()
