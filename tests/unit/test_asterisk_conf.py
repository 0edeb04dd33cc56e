"""asterisk-conf/ is what a clinic drops into /etc/asterisk: check it hangs together (contexts
that are jumped to exist, the AGI goes to the route script, every ROUTE_* variable routing sets
is used, the queues exist, the AMI/ARI users match the example config)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from routing.models import Decision, Tracking

CONF = Path(__file__).resolve().parents[2] / "asterisk-conf"


def sections(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for raw in (CONF / name).read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line):
            current = m.group(1)
            out.setdefault(current, [])
        else:
            out[current].append(line)
    return out


def test_every_goto_target_context_exists() -> None:
    contexts = sections("extensions.conf")
    text = "\n".join(line for lines in contexts.values() for line in lines)
    for target in re.findall(r"Goto\(([a-z][\w-]*),", text):
        assert target in contexts, f"Goto to missing context {target}"


def test_inbound_calls_go_through_the_route_agi_with_defaults_first() -> None:
    route = sections("extensions.conf")["route-inbound"]
    agi_at = next(i for i, line in enumerate(route) if "AGI(${ROUTING_AGI}" in line)
    defaults = " ".join(route[:agi_at])
    for var in ("ROUTE_QUEUE", "ROUTE_MODE", "ROUTE_PRIORITY"):
        assert f"Set({var}=" in defaults, f"{var} needs a default before the AGI"
    assert any(
        "agi://" in line and "/route" in line for line in sections("extensions.conf")["globals"]
    )


def test_every_variable_routing_sets_is_used_by_the_dialplan() -> None:
    text = (CONF / "extensions.conf").read_text(encoding="utf-8")
    decision = Decision(
        queue="reception",
        mode="queue",
        priority=5,
        preferred_agent="PJSIP/op101",
        sticky_seconds=15,
        language="ru",
        reasons=("paid",),
        rule_version="v1",
        tracking=Tracking(campaign="spring"),
    )
    names = {name for name, _ in decision.channel_variables()}
    assert {"ROUTE_QUEUE", "ROUTE_MODE", "ROUTE_AGENT", "ROUTE_STICKY"} <= names
    for name in names - {"ROUTE_RULES_VERSION"}:
        assert "${" + name + "}" in text, f"{name} is set by routing but unused"


def test_queues_and_users_match() -> None:
    queues = sections("queues.conf")
    assert {"reception", "doctors"} <= set(queues)
    assert "callserver" in sections("manager.conf")
    assert "callserver" in sections("ari.conf")
    example = tomllib.loads((CONF.parent / "callserver.example.toml").read_text())
    assert example["ami"]["username"] == "callserver"
    assert example["ari"]["app"] == "callserver"
    assert example["agi"]["port"] == 4573
