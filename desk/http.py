"""The desk's HTTP and WebSocket API (thin: parse, check the role, call the service).

Pages: ``GET /desk``. Session: ``POST /api/desk/login`` (public), ``POST /api/desk/logout``,
``GET /api/desk/me``. Operator: ``GET /ws/desk``, ``GET /api/desk/pops``,
``POST /api/desk/status``, ``POST /api/desk/calls/{id}/outcome``, ``GET …/outcome``,
``POST …/new-patient``,
``POST /api/desk/pops/{id}/dismiss``, ``POST /api/desk/dial``. Everyone logged in:
``GET /api/desk/operators``, ``GET /api/desk/scripts``. Supervisor: ``PUT|DELETE
/api/desk/scripts/{segment}``. Admin: ``GET|POST /api/desk/users``, ``PUT /api/desk/users/{id}``,
``GET|POST /api/desk/tokens``, ``DELETE /api/desk/tokens/{id}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from callserver.web.auth import PRINCIPAL, require_role, same_origin
from callserver.web.body import json_body
from desk import policy
from desk.auth import COOKIE, SESSION, TOKEN_PREFIX, Session, SessionAuth
from desk.directory import OperatorDirectory
from desk.errors import DeskForbidden, DeskInvalid, DeskNotFound, LoginFailed
from desk.hub import OperatorHub
from desk.passwords import new_token, token_digest
from desk.screenpop import ScreenPop
from desk.scripts import ScriptBook
from desk.service import DeskService
from desk.status import StatusService

STATIC = Path(__file__).parent / "static"
PUBLIC_PATHS = ("/desk", "/api/desk/login")


@dataclass(frozen=True)
class UiSettings:
    timezone: str
    language: str
    cookie_secure: bool
    session_ttl: float


@dataclass(frozen=True)
class DeskParts:
    service: DeskService
    auth: SessionAuth
    pops: ScreenPop
    status: StatusService
    scripts: ScriptBook
    directory: OperatorDirectory
    hub: OperatorHub
    ui: UiSettings


def _dumps(o: Any) -> str:
    return json.dumps(o, ensure_ascii=False, default=str)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


async def _body(request: web.Request) -> dict[str, Any]:
    body = await json_body(request, max_bytes=64 * 1024)
    if not isinstance(body, dict):
        raise DeskInvalid(message="expected a JSON object", field="body")
    return body


def _session(request: web.Request) -> Session:
    if SESSION not in request:
        raise DeskForbidden(message="log in as a desk user (a token has no desk)")
    return request[SESSION]


class DeskHttp:
    def __init__(self, parts: DeskParts) -> None:
        self.p = parts

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/desk", self.page), web.post("/api/desk/login", self.login),
            web.post("/api/desk/logout", self.logout), web.get("/api/desk/me", self.me),
            web.get("/ws/desk", self.ws), web.get("/api/desk/pops", self.pops),
            web.post("/api/desk/status", self.set_status),
            web.post("/api/desk/calls/{call_id}/outcome", self.save_outcome),
            web.get("/api/desk/calls/{call_id}/outcome", self.read_outcome),
            web.post("/api/desk/calls/{call_id}/new-patient", self.new_patient),
            web.post("/api/desk/pops/{call_id}/dismiss", self.dismiss),
            web.post("/api/desk/dial", self.dial),
            web.get("/api/desk/operators", self.operators),
            web.get("/api/desk/scripts", self.scripts),
            web.put("/api/desk/scripts/{segment}", self.put_script),
            web.delete("/api/desk/scripts/{segment}", self.delete_script),
            web.get("/api/desk/users", self.users), web.post("/api/desk/users", self.create_user),
            web.put("/api/desk/users/{user_id}", self.update_user),
            web.get("/api/desk/tokens", self.tokens), web.post("/api/desk/tokens", self.new_token),
            web.delete("/api/desk/tokens/{token_id}", self.revoke_token),
        ]  # fmt: skip

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "desk.html")

    # session ----------------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.Response:
        if not same_origin(request):
            raise LoginFailed(message="login from another site refused")
        body = await _body(request)
        token, session = await self.p.service.login(str(body.get("login", "")),
                                                    str(body.get("password", "")))  # fmt: skip
        resp = _json(self._me(session))
        ui = self.p.ui
        resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=ui.cookie_secure, max_age=int(ui.session_ttl))  # fmt: skip
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        _session(request)
        await self.p.service.logout(request.cookies.get(COOKIE, ""))
        resp = _json({"logged_out": True})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def me(self, request: web.Request) -> web.Response:
        return _json(self._me(_session(request)))

    def _me(self, s: Session) -> dict[str, Any]:
        svc = self.p.service.settings
        return {"user": s.user.to_dict(), "csrf": s.csrf, "timezone": self.p.ui.timezone,
                "language": self.p.ui.language, "tags": list(svc.tags),
                "reasons": list(svc.reasons), "dialer": self.p.service.can_dial,
                "status": self.p.status.current(s.user.extension).to_dict()
                if s.user.extension else None}  # fmt: skip

    # operator ---------------------------------------------------------------------------
    async def ws(self, request: web.Request) -> web.StreamResponse:
        if not same_origin(request):
            raise DeskForbidden(message="WebSocket from another site refused")
        user = _session(request).user

        def hello() -> list[dict[str, Any]]:
            frames: list[dict[str, Any]] = [{"type": "hello", "user": user.name}]
            if user.extension:
                frames.append(self.p.status.current(user.extension).to_dict())
                frames.extend(p.frame() for p in self.p.pops.pops_of(user.extension))
            return frames

        return await self.p.hub.serve(request, user.extension, hello)

    async def pops(self, request: web.Request) -> web.Response:
        user = _session(request).user
        return _json({"pops": [p.frame() for p in self.p.pops.pops_of(user.extension)]
                      if user.extension else []})  # fmt: skip

    async def set_status(self, request: web.Request) -> web.Response:
        user = _session(request).user
        status, reason = policy.parse_status(await _body(request))
        state = await self.p.status.set(user.extension, status, reason)
        return _json(state.to_dict())

    async def save_outcome(self, request: web.Request) -> web.Response:
        s = _session(request)
        call_id = request.match_info["call_id"][:100]
        saved = await self.p.service.save_outcome(s.user, request[PRINCIPAL].roles, call_id,
                                                  await _body(request))  # fmt: skip
        return _json(saved)

    async def new_patient(self, request: web.Request) -> web.Response:
        s = _session(request)
        call_id = request.match_info["call_id"][:100]
        sent = await self.p.service.new_patient(s.user, request[PRINCIPAL].roles, call_id,
                                                await _body(request))  # fmt: skip
        return _json(sent)

    async def read_outcome(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        found = await self.p.service.store.outcome(request.match_info["call_id"][:100])
        if found is None:
            raise DeskNotFound(message="no outcome saved for this call")
        mine = principal.user_id and str(found["user_id"]) == principal.user_id
        if not mine and not principal.roles & {"supervisor", "admin", "marketer"}:
            raise DeskForbidden(message="not your call")
        return _json(found)

    async def dismiss(self, request: web.Request) -> web.Response:
        user = _session(request).user
        if not self.p.pops.close(user.extension, request.match_info["call_id"], "dismissed"):
            raise DeskNotFound(message="no such card on your screen")
        return _json({"dismissed": True})

    async def dial(self, request: web.Request) -> web.Response:
        user = _session(request).user
        return _json(self.p.service.dial(user, await _body(request)), status=202)

    async def operators(self, request: web.Request) -> web.Response:
        return _json({"operators": await self.p.directory.operators()})

    # supervisor: scripts ----------------------------------------------------------------
    async def scripts(self, request: web.Request) -> web.Response:
        return _json({"scripts": self.p.scripts.all()})

    async def put_script(self, request: web.Request) -> web.Response:
        principal = require_role(request, "supervisor", "admin")
        body = await _body(request)
        await self.p.scripts.put(request.match_info["segment"], str(body.get("title", "")),
                                 str(body.get("body", "")), principal.name)  # fmt: skip
        return _json({"saved": True})

    async def delete_script(self, request: web.Request) -> web.Response:
        require_role(request, "supervisor", "admin")
        await self.p.scripts.delete(request.match_info["segment"])
        return _json({"deleted": True})

    # admin: users and API tokens --------------------------------------------------------
    async def users(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return _json({"users": [u.to_dict() for u in await self.p.service.store.users()]})

    async def create_user(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        user = await self.p.service.create_user(await _body(request))
        return _json(user.to_dict(), status=201)

    async def update_user(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        user = await self.p.service.update_user(_int(request, "user_id"), await _body(request))
        return _json(user.to_dict())

    async def tokens(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return _json({"tokens": await self.p.service.store.tokens()})

    async def new_token(self, request: web.Request) -> web.Response:
        principal = require_role(request, "admin")
        name, roles = policy.parse_token_request(await _body(request))
        token = new_token(TOKEN_PREFIX)
        token_id = await self.p.service.store.create_token(name, roles, token_digest(token),
                                                           principal.name)  # fmt: skip
        # the only time the token is shown: only its digest is stored
        return _json({"id": token_id, "name": name, "roles": list(roles), "token": token}, 201)

    async def revoke_token(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        if not await self.p.service.store.revoke_token(_int(request, "token_id")):
            raise DeskNotFound(message="no such live token")
        self.p.auth.forget()
        return _json({"revoked": True})


def _int(request: web.Request, key: str) -> int:
    """A path id: an integer PostgreSQL's bigint holds (DeskInvalid otherwise)."""
    raw = request.match_info[key]
    try:
        value = int(raw) if len(raw) <= 20 else None
    except ValueError:
        value = None
    if value is None or not -(2**63) <= value < 2**63:
        raise DeskInvalid(message=f"{key}: expected an integer id", field=key)
    return value
