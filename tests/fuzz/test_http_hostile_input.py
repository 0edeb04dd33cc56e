"""Every HTTP route of a real server (all installed plugins, real PostgreSQL and Redis) gets
hostile JSON bodies, query strings and path segments: deep nesting, huge numbers, NUL, lone
surrogates, wrong types, huge strings, bytes that are not UTF-8. The answer is never a 5xx, and
every refusal has the one error body ``{"error_id", "message", "details"}``.

Routes are read from the running app's router, so a route a plugin adds later is covered
without touching this file."""

from __future__ import annotations

import http.client
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.services import Services
from tests.fuzz.live_thread import TOKEN, ThreadedServer, threaded_server
from tests.fuzz.strategies import bodies, path_values, queries

EXAMPLES = 30
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)  # fmt: skip
SKIP_METHODS = {"HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    """The canonical path, ``{name}``/``{name:regex}`` placeholders kept."""

    def path(self, values: list[str]) -> str:
        it = iter(values)
        return re.sub(r"\{[^}]+\}", lambda _m: next(it, "1"), self.template)

    @property
    def params(self) -> int:
        return len(re.findall(r"\{[^}]+\}", self.template))


@pytest.fixture(scope="module")
def live(services: Services) -> Iterator[ThreadedServer]:
    with threaded_server(services, f"csfuzz_{uuid.uuid4().hex[:10]}") as server:
        yield server


def routes_of(live: ThreadedServer) -> list[Route]:
    assert live.server is not None and live.server._runner is not None
    found = []
    for route in live.server._runner.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path")
        if template is None or route.method in SKIP_METHODS:
            continue  # static folders: files, not handlers
        found.append(Route(route.method, template))
    return sorted(set(found), key=lambda r: (r.template, r.method))


def send(live: ThreadedServer, method: str, target: str, body: bytes | None = None,
         extra: dict[str, str] | None = None) -> tuple[int, bytes, str]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Connection": "close", **(extra or {})}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Type", "")
    finally:
        conn.close()


def check_answer(route: Route, target: str, status: int, raw: bytes, ctype: str) -> None:
    where = f"{route.method} {target[:200]}"
    assert status < 500, f"{where} answered {status}: {raw[:300]!r}"
    if status < 400:
        return
    assert ctype.startswith("application/json"), f"{where}: {status} not JSON: {raw[:200]!r}"
    body = json.loads(raw)
    assert set(body) == {"error_id", "message", "details"}, f"{where}: {body}"
    assert isinstance(body["error_id"], str) and body["error_id"]
    assert isinstance(body["message"], str) and isinstance(body["details"], dict)


def test_the_server_exposes_the_routes_of_every_plugin(live: ThreadedServer) -> None:
    templates = {r.template for r in routes_of(live)}
    for expected in ("/api/calls", "/api/routing/overrides", "/api/crm/patients", "/healthz"):
        assert expected in templates


def body_check(live: ThreadedServer, route: Route) -> Callable[[], None]:
    @FUZZ
    @given(body=bodies, params=st.lists(path_values, min_size=route.params,
                                        max_size=route.params))  # fmt: skip
    def check(body: bytes, params: list[str]) -> None:
        target = route.path(params)
        check_answer(route, target, *send(live, route.method, target, body))

    return check


def query_check(live: ThreadedServer, route: Route) -> Callable[[], None]:
    @FUZZ
    @given(query=queries, params=st.lists(path_values, min_size=route.params,
                                          max_size=route.params))  # fmt: skip
    def check(query: dict[str, str], params: list[str]) -> None:
        target = route.path(params) + "?" + "&".join(f"{k}={v}" for k, v in query.items())
        body = b"{}" if route.method in ("POST", "PUT", "PATCH") else None
        check_answer(route, target, *send(live, route.method, target, body))

    return check


HEADER_NAMES = ("X-Actor", "Cookie", "Origin", "Accept-Language", "X-Forwarded-For",
                "Content-Type", "Accept", "User-Agent")  # fmt: skip
# what a raw client can put in a header value: any byte but CR and LF (latin-1 on the wire)
header_values = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=300)


def header_check(live: ThreadedServer, route: Route) -> Callable[[], None]:
    @settings(FUZZ, max_examples=EXAMPLES // 2)
    @given(headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=4))
    def check(headers: dict[str, str]) -> None:
        target = route.path(["1"] * route.params)
        body = b"{}" if route.method in ("POST", "PUT", "PATCH") else None
        status, raw, ctype = send(live, route.method, target, body, headers)
        if any(_control(v) for v in headers.values()) and not ctype.startswith("application/json"):
            # aiohttp's parser refuses most of these before any route runs: plain text, a 4xx
            assert 400 <= status < 500, f"{route.method} {target}: {status} {raw[:200]!r}"
        else:
            check_answer(route, target, status, raw, ctype)

    return check


def _control(value: str) -> bool:
    return any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value)


def test_hostile_headers_never_get_a_5xx(live: ThreadedServer) -> None:
    checked = 0
    for route in routes_of(live):
        if not route.template.startswith("/ws/"):
            header_check(live, route)()
            checked += 1
    assert checked >= 20


def test_hostile_json_bodies_never_get_a_5xx(live: ThreadedServer) -> None:
    checked = 0
    for route in routes_of(live):
        if route.method in ("POST", "PUT", "PATCH", "DELETE"):
            body_check(live, route)()
            checked += 1
    assert checked >= 10


def test_hostile_query_strings_and_path_segments_never_get_a_5xx(live: ThreadedServer) -> None:
    checked = 0
    for route in routes_of(live):
        if not route.template.startswith("/ws/"):  # WebSocket: its own test below
            query_check(live, route)()
            checked += 1
    assert checked >= 20


def test_a_websocket_request_without_upgrade_is_a_4xx_with_the_error_body(
    live: ThreadedServer,
) -> None:
    route = Route("GET", "/ws/live")
    check_answer(route, "/ws/live", *send(live, "GET", "/ws/live?token=%00%ED%A0%BD"))


def test_an_overlong_request_line_or_header_is_refused_by_the_http_parser_with_a_4xx(
    live: ThreadedServer,
) -> None:
    """Beyond 8190 bytes aiohttp's parser refuses before any handler (plain text: no route
    ran, so no error body); never a 5xx."""
    status, _, _ = send(live, "GET", "/api/calls?limit=" + "9" * 20_000)
    assert 400 <= status < 500
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    try:
        conn.request("GET", "/api/calls", headers={"X-Big": "y" * 20_000})
        assert 400 <= conn.getresponse().status < 500
    finally:
        conn.close()
