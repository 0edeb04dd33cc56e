"""The desk's use cases: log in and out, save a call's outcome, click-to-call, manage users.

Handlers in ``http.py`` stay thin: they parse the request and call these methods, which raise
desk errors (mapped to HTTP by the core's one middleware).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callserver.core.phone import mask, try_normalize
from callserver.errors import CallserverError, ErrorCategory
from desk import policy
from desk.auth import Session, SessionAuth
from desk.directory import OperatorDirectory
from desk.errors import DeskForbidden, DeskInvalid, DeskNotFound, DialerUnavailable, LoginFailed
from desk.models import Outcome, User
from desk.passwords import hash_password, new_token, token_digest, verify_password
from desk.ports import CrmOutcomes, Dialer
from desk.screenpop import ScreenPop
from desk.store import DeskStore

log = logging.getLogger(__name__)
LOGIN_FAILURES = 5
LOGIN_WINDOW = 300.0


class CrmUnavailable(CallserverError):
    error_id = "desk-crm-unavailable"
    category = ErrorCategory.UNAVAILABLE
    public_message = "no CRM is enabled on this server"


class TooManyLogins(CallserverError):
    error_id = "desk-login-rate-limited"
    category = ErrorCategory.RATE_LIMITED


@dataclass(frozen=True)
class DeskSettings:
    session_ttl: float
    tags: tuple[str, ...]
    reasons: tuple[str, ...]
    recording_url: str
    caller_id: str
    dial_timeout: float


class DeskService:
    def __init__(self, store: DeskStore, auth: SessionAuth, directory: OperatorDirectory,
                 pops: ScreenPop, settings: DeskSettings, *, crm: CrmOutcomes | None,
                 dialer: Dialer | None) -> None:  # fmt: skip
        self.store, self._auth, self._directory, self._pops = store, auth, directory, pops
        self.settings, self._crm, self._dialer = settings, crm, dialer
        self._failures: dict[str, list[float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def can_dial(self) -> bool:
        return self._dialer is not None

    # sessions ---------------------------------------------------------------------------
    async def login(self, login: str, password: str) -> tuple[str, Session]:
        """A new session (cookie token, CSRF token). Raises LoginFailed, TooManyLogins."""
        login = login.strip().lower()[:64]
        now = time.monotonic()
        recent = [t for t in self._failures.get(login, []) if now - t < LOGIN_WINDOW]
        if len(recent) >= LOGIN_FAILURES:
            raise TooManyLogins(message="too many failed logins; wait five minutes")
        found = await self.store.credentials(login)
        if not await verify_password(found[1] if found else None, password[:200]) or not found:
            if len(self._failures) > 10_000:  # many distinct logins must not grow memory
                self._failures.clear()
            self._failures[login] = [*recent, now][-LOGIN_FAILURES:]
            raise LoginFailed(message="wrong login or password")
        self._failures.pop(login, None)
        token, csrf = new_token(), secrets.token_urlsafe(24)
        await self.store.create_session(found[0].id, token_digest(token), csrf,
                                        self.settings.session_ttl)  # fmt: skip
        return token, Session(found[0], csrf)

    async def logout(self, token: str) -> None:
        digest = token_digest(token)
        await self.store.delete_session(digest)
        self._auth.forget(digest)

    # users (admin) ----------------------------------------------------------------------
    async def create_user(self, body: Mapping[str, Any]) -> User:
        u = policy.parse_user(body, creating=True)
        user = await self.store.create_user(u, await hash_password(u.password))
        await self._directory.refresh()
        return user

    async def update_user(self, user_id: int, body: Mapping[str, Any]) -> User:
        u = policy.parse_user(body, creating=False)
        password = await hash_password(u.password) if u.password else None
        user = await self.store.update_user(user_id, u, password)
        self._auth.forget()
        await self._directory.refresh()
        return user

    async def bootstrap_admin(self, spec: str) -> User | None:
        """Create ``login:password`` as admin when there is no user at all (first start)."""
        if not spec or await self.store.count_users() > 0:
            return None
        login, _, password = spec.partition(":")
        u = policy.parse_user({"login": login, "name": login, "roles": ["admin"],
                               "password": password}, creating=True)  # fmt: skip
        user = await self.store.create_user(u, await hash_password(u.password))
        log.warning("desk: bootstrap admin %r created; remove [desk] bootstrap_admin", u.login)
        await self._directory.refresh()
        return user

    # outcomes ---------------------------------------------------------------------------
    async def save_outcome(self, user: User, roles: frozenset[str], call_id: str,
                           body: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
        """Store the outcome and queue it for the CRM. An operator may only tag calls that
        rang or were answered on their own phone (raises DeskForbidden / DeskNotFound)."""
        outcome = policy.parse_outcome(call_id, body, self.settings.tags, self.settings.reasons)
        phone, recording = await self._call_of(user, roles, call_id)
        await self.store.save_outcome(outcome, user, phone, recording)
        if self._crm is not None and phone:
            await self._crm.push_outcome(
                call_id=call_id, phone=phone, tags=list(outcome.tags), outcome=outcome.outcome,
                operator=user.name, comment=_crm_comment(outcome),
            )  # fmt: skip
        if user.extension:
            self._pops.close(user.extension, call_id, "saved")
        return {"call_id": call_id, "saved": True, "recording": recording}

    async def new_patient(self, user: User, roles: frozenset[str], call_id: str,
                          body: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
        """The "new patient" form of an unknown caller's card → an appointment request in the
        CRM (a person there books the slot). Raises DeskInvalid; CrmUnavailable when no CRM
        plugin is enabled; DeskForbidden when the call is not this user's."""
        if self._crm is None:
            raise CrmUnavailable(message="no plugin provides the 'crm_requests' port")
        phone = try_normalize(str(body.get("phone", ""))[:40])
        if phone is None:
            raise DeskInvalid(message="phone: not a phone number", field="phone")
        name, comment = (str(body.get(k, "") or "")[:n] for k, n in (("full_name", 120),
                                                                     ("comment", 500)))  # fmt: skip
        if user.extension and self._pops.pop(user.extension, call_id) is None:
            await self._call_of(user, roles, call_id)  # raises when not this user's call
        await self._crm.request_appointment(phone=phone, full_name=name.strip(),
                                            call_id=call_id, comment=comment)  # fmt: skip
        return {"call_id": call_id, "sent": True}

    async def _call_of(self, user: User, roles: frozenset[str], call_id: str) -> tuple[str, str]:
        """(phone E.164 or "", recording link) of a call this user may tag."""
        pop = self._pops.pop(user.extension, call_id) if user.extension else None
        if pop is not None and pop.state in ("talking", "wrapup"):
            return _e164(str(pop.card.get("caller", ""))), str(pop.extra.get("recording", ""))
        facts = await self.store.call_facts(call_id)
        if facts is None:
            raise DeskNotFound(message=f"no call {call_id}")
        agent, caller, variables = facts
        own = bool(user.extension) and agent.lower() == user.extension.lower()
        if not own and not roles & {"supervisor", "admin"}:
            raise DeskForbidden(message="this call was not answered on your phone")
        return _e164(caller), policy.recording_link(variables, self.settings.recording_url)

    # click-to-call ----------------------------------------------------------------------
    def dial(self, user: User, body: Mapping[str, Any]) -> dict[str, Any]:
        """Start an agent-first call to ``body['phone']``; the result is pushed to the
        operator's browser (``dial_result`` frame, and onto the card of ``call_id``).
        Raises DialerUnavailable (no dialer), DeskForbidden (no phone), DeskInvalid."""
        if self._dialer is None:
            raise DialerUnavailable(message="no plugin provides the 'dialer' port")
        if not user.extension:
            raise DeskForbidden(message="no phone extension is bound to this user")
        phone = try_normalize(str(body.get("phone", ""))[:40])
        if phone is None:
            raise DeskInvalid(message="phone: not a phone number", field="phone")
        ref = {k: str(body.get(k, ""))[:80] for k in ("call_id", "job_id")}
        task = asyncio.get_running_loop().create_task(self._dial(user, phone, ref))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"status": "dialing", "phone": phone, **ref}

    async def _dial(self, user: User, phone: str, ref: dict[str, str]) -> None:
        assert self._dialer is not None
        context = {"source": "desk", "user_id": str(user.id), **{k: v for k, v in ref.items() if v}}
        try:
            result = await self._dialer.dial(
                operator=user.extension, phone=phone, caller_id=self.settings.caller_id,
                context=context, timeout=self.settings.dial_timeout)  # fmt: skip
        except CallserverError as exc:
            log.warning("click-to-call %s for %s failed: %s", mask(phone), user.login, exc)
            result = {"result": "failed", "error": exc.error_id}
        frame = {"type": "dial_result", "phone": phone, **ref,
                 "result": str(result.get("result", "failed")),
                 "attempt_id": str(result.get("attempt_id", ""))}  # fmt: skip
        if ref["call_id"]:
            self._pops.annotate(user.extension, ref["call_id"], dial=frame)
        self._pops.notify(user.extension, frame)

    async def aclose(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def start(self) -> None:
        return None


def _e164(raw: str) -> str:
    return try_normalize(raw) or ""


def _crm_comment(o: Outcome) -> str:
    parts = [f"reason: {o.reason}"] if o.reason else []
    if o.notes:
        parts.append(o.notes)
    return "\n".join(parts)
