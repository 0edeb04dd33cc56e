"""External REST CRM: lookups by URL template, pushes to one webhook signed with HMAC-SHA256.

The JSON both ways is documented in ``crm_bridge/README.md``. Lookups retry connection failures
and 5xx answers up to ``retries`` times, all within one deadline of ``timeout`` seconds
(CrmTimeout past it). A push is one POST bounded by ``push_timeout`` seconds; the outbox retries
it: 408/425/429/5xx and network errors raise CrmUnavailable, other 4xx CrmRejected.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from callserver.core.backoff import exponential_delay
from callserver.core.phone import mask
from crm_bridge.config import CrmConfig
from crm_bridge.errors import CrmError, CrmRejected, CrmTimeout, CrmUnavailable
from crm_bridge.models import PatientCard
from crm_bridge.signing import HEADER, sign
from crm_bridge.wire import card_from_dict

_RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class RestSettings:
    lookup_url_template: str
    webhook_url: str
    hmac_secret: str
    auth_token: str = ""
    timeout: float = 0.5
    push_timeout: float = 5.0
    retries: int = 1

    @classmethod
    def from_config(cls, crm: CrmConfig) -> RestSettings:
        return cls(
            lookup_url_template=crm.lookup_url_template,
            webhook_url=crm.webhook_url,
            hmac_secret=crm.hmac_secret,
            auth_token=crm.auth_token,
            timeout=crm.timeout,
            push_timeout=crm.push_timeout,
            retries=crm.retries,
        )


class RestCrm:
    """``CrmBackend`` over HTTP. Uses ``session`` when given, else owns one (closed by aclose)."""

    def __init__(
        self, settings: RestSettings, *, session: aiohttp.ClientSession | None = None
    ) -> None:
        self._settings = settings
        self._session = session
        self._owns_session = session is None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "callserver-crm-bridge/1"}
        if self._settings.auth_token:
            headers["Authorization"] = f"Bearer {self._settings.auth_token}"
        return headers

    async def lookup(self, phone: str) -> PatientCard | None:
        """GET the lookup URL for E.164 ``phone``: 200 → card, 404 or JSON null → None.

        Raises CrmTimeout past ``timeout`` s, CrmUnavailable, CrmRejected (other 4xx), or
        CrmValidationError when the card JSON is malformed.
        """
        url = self._settings.lookup_url_template.format(phone=quote(phone, safe=""))
        s = self._settings
        try:
            async with asyncio.timeout(s.timeout):
                for attempt in range(s.retries + 1):
                    try:
                        return await self._lookup_once(url)
                    except CrmUnavailable:
                        if attempt == s.retries:
                            raise
                        await asyncio.sleep(
                            exponential_delay(attempt, minimum=0.05, maximum=s.timeout / 4)
                        )
        except TimeoutError:
            raise CrmTimeout(
                message=f"CRM lookup of {mask(phone)} timed out", timeout=s.timeout
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _lookup_once(self, url: str) -> PatientCard | None:
        try:
            async with self._http().get(url, headers=self._headers()) as resp:
                if resp.status == 404:
                    return None
                _check_status(resp.status, "lookup")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            if isinstance(exc, CrmError):
                raise
            raise CrmUnavailable(message=f"CRM lookup failed: {exc!r}") from exc
        return None if data is None else card_from_dict(data)

    async def deliver(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> None:
        """POST one signed push to the webhook (bounded by ``push_timeout`` s). Redirects are not
        followed: a 3xx raises CrmRejected (dead letter, visible), it is not a delivery."""
        body = json.dumps(
            {
                "type": kind,
                "idempotency_key": idempotency_key,
                "sent_at": datetime.now(UTC).isoformat(),
                "data": dict(data),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = self._headers() | {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": idempotency_key,
            "X-Callserver-Event": kind,
            HEADER: sign(self._settings.hmac_secret, body, now=time.time()),
        }
        try:
            async with asyncio.timeout(self._settings.push_timeout):
                async with self._http().post(  # a redirect is a misconfiguration (3xx →
                    self._settings.webhook_url,  # CrmRejected), never a GET taken for "stored"
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                ) as resp:
                    await resp.read()
                    if resp.status != 409:  # 409: the CRM already has this key
                        _check_status(resp.status, kind)
        except TimeoutError:
            raise CrmTimeout(
                message=f"CRM webhook {kind} timed out", timeout=self._settings.push_timeout
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CrmUnavailable(message=f"CRM webhook {kind} failed: {exc!r}") from exc


def _check_status(status: int, what: str) -> None:
    if 200 <= status < 300:
        return
    if status >= 500 or status in _RETRYABLE:
        raise CrmUnavailable(message=f"CRM {what}: HTTP {status}", status=status)
    raise CrmRejected(message=f"CRM {what}: HTTP {status}", status=status)
