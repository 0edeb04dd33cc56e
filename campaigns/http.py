"""``/api/campaigns``: create, fill, run, pause, watch and export campaigns; the do-not-call
list; the waitlist. Supervisors and admins only (patients' data). Thin: parsing here, the work
in ``store``/``targets``/``reports``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import asyncpg
from aiohttp import web

from callserver.core.phone import PhoneNumberError, normalize_phone
from callserver.core.text import first_bad_text
from callserver.web.auth import require_role
from callserver.web.body import json_body, raw_body
from campaigns.errors import CampaignInvalid
from campaigns.models import KINDS, CampaignSettings, Target, parse_settings
from campaigns.reports import campaign_stats, export_csv, feedback_results
from campaigns.store import CampaignStore
from campaigns.targets import csv_targets, feedback_targets, recall_targets, reminder_targets

MAX_BODY = 8 * 1024 * 1024
ROLES = ("supervisor", "admin")


async def _body(request: web.Request) -> dict[str, Any]:
    data = await json_body(request, max_bytes=MAX_BODY)
    if not isinstance(data, dict):
        raise CampaignInvalid(message="body must be a JSON object", field="body")
    if (bad := first_bad_text(data)) is not None:
        raise CampaignInvalid(message=f"{bad[0]}: {bad[1]}", field=bad[0])
    return data


def _id(request: web.Request) -> int:
    text = request.match_info["cid"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # "¹".isdigit() is True
        raise CampaignInvalid(message="campaign id must be a number", field="id")
    return int(text)


def _date(source: dict[str, Any], key: str) -> date:
    try:
        return date.fromisoformat(str(source.get(key, "")))
    except ValueError:
        raise CampaignInvalid(message=f"source.{key}: expected YYYY-MM-DD", field=key) from None


class CampaignsApi:
    def __init__(
        self, store: CampaignStore, pool: asyncpg.Pool, clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:  # fmt: skip
        self._store, self._pool, self._clock, self._wake = store, pool, clock, wake

    def routes(self) -> list[web.RouteDef]:
        p = "/api/campaigns"
        return [
            web.get(p, self.list_campaigns), web.post(p, self.create),
            web.get(p + "/dnc", self.dnc), web.post(p + "/dnc", self.add_dnc),
            web.post(p + "/waitlist", self.add_waitlist),
            web.get(p + "/{cid}", self.get), web.post(p + "/{cid}/state", self.state),
            web.post(p + "/{cid}/csv", self.upload_csv),
            web.get(p + "/{cid}/export.csv", self.export),
        ]  # fmt: skip

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock()).astimezone()

    async def list_campaigns(self, request: web.Request) -> web.Response:
        require_role(request, *ROLES)
        items = await self._store.campaigns()
        for c in items:
            c["stats"] = await campaign_stats(self._pool, c["id"], with_crm=False)
        return web.json_response({"campaigns": items})

    async def get(self, request: web.Request) -> web.Response:
        require_role(request, *ROLES)
        campaign = await self._store.campaign(_id(request))
        campaign["stats"] = await campaign_stats(self._pool, campaign["id"])
        if campaign["kind"] == "feedback":
            campaign["feedback"] = await feedback_results(self._pool, campaign["id"])
        return web.json_response(campaign)

    async def create(self, request: web.Request) -> web.Response:
        """Body ``{name, kind, settings, source}``; the campaign starts paused."""
        principal = require_role(request, *ROLES)
        body = await _body(request)
        name, kind = str(body.get("name", "")).strip()[:200], body.get("kind")
        if not name or kind not in KINDS:
            raise CampaignInvalid(message=f"name and kind ({', '.join(KINDS)}) are required",
                                  field="kind" if name else "name")  # fmt: skip
        settings = parse_settings(body.get("settings", {}))
        targets = await self._targets(body.get("source") or {}, settings)
        cid = await self._store.create(name, str(kind), settings, principal.name)
        added = await self._store.add_targets(cid, targets)
        return web.json_response({"id": cid, "targets": added}, status=201)

    async def _targets(self, source: Any, settings: CampaignSettings) -> list[Target]:
        if not isinstance(source, dict):
            raise CampaignInvalid(message="source: expected an object", field="source")
        kind, now = source.get("type", "none"), self._now()
        if kind == "appointments":
            return await reminder_targets(self._pool, settings, now=now,
                                          date_from=_date(source, "date_from"),
                                          date_to=_date(source, "date_to"))  # fmt: skip
        if kind == "feedback":
            days = source.get("days_ago", 1)
            if not isinstance(days, int) or not 0 <= days <= 60:
                raise CampaignInvalid(message="source.days_ago: 0–60", field="days_ago")
            return await feedback_targets(self._pool, settings, days_ago=days, now=now)
        if kind == "recall":
            months = source.get("months", 6)
            if not isinstance(months, int) or not 1 <= months <= 36:
                raise CampaignInvalid(message="source.months: 1–36", field="months")
            return await recall_targets(self._pool, settings, months=months, now=now)
        if kind in ("none", "csv"):
            return []
        raise CampaignInvalid(message="source.type: appointments|feedback|recall|csv", field="type")

    async def upload_csv(self, request: web.Request) -> web.Response:
        require_role(request, *ROLES)
        campaign = await self._store.campaign(_id(request))
        # the whole upload, however many pieces it arrives in (413 past MAX_BODY)
        text = (await raw_body(request, max_bytes=MAX_BODY)).decode("utf-8-sig", errors="replace")
        if (bad := first_bad_text(text, "csv")) is not None:
            raise CampaignInvalid(message=f"csv: {bad[1]}", field="csv")
        settings = parse_settings(campaign["settings"])
        targets, errors = csv_targets(text, settings, now=self._now())
        added = await self._store.add_targets(campaign["id"], targets)
        self._wake()
        return web.json_response({"added": added, "errors": errors[:100]})

    async def state(self, request: web.Request) -> web.Response:
        """``{"state": "running"|"paused"|"cancelled"}``."""
        require_role(request, *ROLES)
        cid, body = _id(request), await _body(request)
        await self._store.set_state(cid, str(body.get("state", ""))[:20])
        self._wake()
        return web.json_response(await self._store.campaign(cid))

    async def export(self, request: web.Request) -> web.Response:
        require_role(request, *ROLES)
        campaign = await self._store.campaign(_id(request))
        text = await export_csv(self._pool, campaign["id"], campaign["settings"]["tz"],
                                feedback=campaign["kind"] == "feedback")
        return web.Response(
            text=text,
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="campaign-{campaign["id"]}.csv"'
            },
        )

    async def dnc(self, request: web.Request) -> web.Response:
        require_role(request, *ROLES)
        return web.json_response({"dnc": await self._store.dnc()})

    async def add_dnc(self, request: web.Request) -> web.Response:
        """``{"phones": [...], "source": "import"}``: bad numbers are reported, not stored."""
        require_role(request, *ROLES)
        body = await _body(request)
        phones, errors = [], []
        listed = body.get("phones", [])
        if not isinstance(listed, list):
            raise CampaignInvalid(message="phones: expected a list of numbers", field="phones")
        for raw in listed[:100_000]:
            try:
                phones.append(normalize_phone(str(raw)))
            except PhoneNumberError as e:
                errors.append({"phone": str(raw)[:40], "error": e.message})
        added = await self._store.add_dnc(phones, str(body.get("source", "import"))[:100])
        return web.json_response({"added": added, "errors": errors[:100]})

    async def add_waitlist(self, request: web.Request) -> web.Response:
        """``{"phone", "full_name", "doctor_id", "patient_id"}``: waits for a freed slot."""
        require_role(request, *ROLES)
        body = await _body(request)
        try:
            phone = normalize_phone(str(body.get("phone", "")))
        except PhoneNumberError as e:
            raise CampaignInvalid(message=f"phone: {e.message}", field="phone") from None
        doctor, patient = body.get("doctor_id"), body.get("patient_id")
        if not isinstance(doctor, int) or not (patient is None or isinstance(patient, int)):
            raise CampaignInvalid(message="doctor_id (and patient_id) must be integers",
                                  field="doctor_id")  # fmt: skip
        wid = await self._pool.fetchval(
            "INSERT INTO campaign_waitlist (patient_id, phone, full_name, doctor_id) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            patient, phone, str(body.get("full_name", ""))[:200], doctor,
        )  # fmt: skip
        return web.json_response({"id": wid}, status=201)
