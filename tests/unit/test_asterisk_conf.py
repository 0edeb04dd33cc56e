"""asterisk-conf/ is what a clinic drops into /etc/asterisk: check it hangs together (contexts
that are jumped to exist, the AGI goes to the route script, every ROUTE_* variable routing sets
is used, the queues exist, the AMI/ARI users match the example config), that every file parses
as an Asterisk config, that docker-compose mounts them all, and (issue 15) where calls end up
when something is missing, by walking the dialplan (tests/unit/dialplan_walker.py) with the real
routing policy behind the AGI."""

from __future__ import annotations

import itertools
import re
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callserver.asterisk.agi_server import AgiEnvironment
from routing.agi_handler import request_from_agi, variables_to_send
from routing.models import MODES, Decision, Tracking
from routing.policy import PolicyInputs, decide
from routing.rules import load_rules
from tests.unit.dialplan_walker import Call, World, parse_dialplan, parse_globals

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "asterisk-conf"
LAB = ROOT / "tests" / "fixtures" / "asterisk" / "lab-config"
PLAN = parse_dialplan(CONF / "extensions.conf")
RULES = load_rules(ROOT / "routing" / "rules.example.toml")
MSK = ZoneInfo("Europe/Moscow")
DAY = datetime(2026, 12, 2, 12, 0, tzinfo=MSK)  # a Wednesday, the Moscow clinic is open
NIGHT = datetime(2026, 12, 2, 0, 30, tzinfo=MSK)  # closed: after_hours_mode = voicemail
CAMPAIGN_DID = "74951234567"  # rules: campaign yandex-implants-q4, source source-a


def parse_ini(path: Path) -> dict[str, list[tuple[str, str]]]:
    """An Asterisk config file: ``[section]`` or ``[section](templates)``, ``key = value`` /
    ``key => value`` lines, ``;`` comments. Raises AssertionError naming any other line."""
    out: dict[str, list[tuple[str, str]]] = {}
    current = None
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[([^\]]+)\](\([!\w,-]*\))?", line):
            current = m.group(1)
            out.setdefault(current, [])
        elif m := re.fullmatch(r"([\w(),.-]+)\s*=>?\s*(.*)", line):
            assert current is not None, f"{path.name}:{n}: a setting before any [section]"
            out[current].append((m.group(1), m.group(2)))
        else:
            raise AssertionError(f"{path.name}:{n}: not an Asterisk config line: {raw!r}")
    return out


def sections(name: str) -> dict[str, list[str]]:
    return {s: [f"{k} = {v}" for k, v in kv] for s, kv in parse_ini(CONF / name).items()}


def settings(name: str, section: str) -> dict[str, str]:
    return dict(parse_ini(CONF / name)[section])


def dial(world: World, did: str = CAMPAIGN_DID) -> Call:
    return Call(PLAN, world, variables=parse_globals(CONF / "extensions.conf")).run(
        "from-trunk", did
    )


def routing_agi(now: datetime, seen: list[Decision]) -> World:
    """A World whose AGI runs the real request building and policy with rules.example.toml."""

    def agi(call: Call, args: list[str]) -> str:
        env = AgiEnvironment(
            network_script="route", uniqueid="1700000000.1", channel="PJSIP/trunk-00000001",
            callerid="79161234567", language=call.language, args=tuple(args),
        )  # fmt: skip
        decision = decide(RULES, PolicyInputs(request=request_from_agi(env), now=now))
        seen.append(decision)
        call.variables.update(variables_to_send(decision))
        return "SUCCESS"

    return World(agi=agi)


def fake_agi(**variables: str) -> World:
    def agi(call: Call, args: list[str]) -> str:
        call.variables.update(variables)
        return "SUCCESS"

    return World(agi=agi)


# ------------------------------------------------------------ structure


def test_every_file_parses_as_an_asterisk_config() -> None:
    files = sorted(p for p in CONF.iterdir() if p.name != "README.md")
    assert {p.name for p in files} >= {
        "extensions.conf", "queues.conf", "features.conf", "musiconhold.conf", "modules.conf",
        "voicemail.conf", "manager.conf", "http.conf", "ari.conf", "pjsip.conf.example",
    }  # fmt: skip
    for path in files:
        assert parse_ini(path), path.name


def test_every_goto_target_exists() -> None:
    text = (CONF / "extensions.conf").read_text(encoding="utf-8")
    targets = re.findall(r"Goto\(([\w-]+),([^,)]+),([\w]+)\)", text)
    targets += re.findall(r"\?([\w-]+),([^,:)]+),([\w]+)\)", text)
    assert len(targets) > 10
    for context, exten, _ in targets:
        assert context in PLAN, f"jump to missing context {context}"
        if "${" not in exten:
            assert exten in PLAN[context] or "_X." in PLAN[context], f"{context},{exten}"


def test_inbound_calls_go_through_the_route_agi_with_defaults_first() -> None:
    route = [app + "(" + data for _, app, data in PLAN["route-inbound"]["_X."]]
    agi_at = next(i for i, line in enumerate(route) if "AGI(${ROUTING_AGI}" in line)
    defaults = " ".join(route[:agi_at])
    for var in ("ROUTE_QUEUE", "ROUTE_MODE", "ROUTE_PRIORITY", "ROUTE_LANG"):
        assert f"Set({var}=" in defaults, f"{var} needs a default before the AGI"
    assert "agi://" in settings("extensions.conf", "globals")["ROUTING_AGI"]


def test_every_variable_routing_sets_is_used_by_the_dialplan() -> None:
    text = (CONF / "extensions.conf").read_text(encoding="utf-8")
    decision = Decision(
        queue="reception", mode="queue", priority=5, preferred_agent="PJSIP/op101",
        sticky_seconds=15, language="ru", reasons=("paid",), rule_version="v1",
        tracking=Tracking(campaign="spring"),
    )  # fmt: skip
    names = {name for name, _ in decision.channel_variables()}
    assert {"ROUTE_QUEUE", "ROUTE_MODE", "ROUTE_AGENT", "ROUTE_STICKY"} <= names
    for name in names - {"ROUTE_RULES_VERSION"}:
        assert "${" + name + "}" in text, f"{name} is set by routing but unused"


def test_every_routing_mode_has_an_extension() -> None:
    assert set(MODES) == set(PLAN["route-mode"])
    assert set(MODES) <= set(PLAN["route-fallback"])


def test_queues_and_users_match() -> None:
    queues = sections("queues.conf")
    assert {"reception", "doctors"} <= set(queues)
    assert "callserver" in sections("manager.conf")
    assert "callserver" in sections("ari.conf")
    example = tomllib.loads((ROOT / "callserver.example.toml").read_text())
    assert example["ami"]["username"] == "callserver"
    assert example["ari"]["app"] == "callserver"
    assert example["agi"]["port"] == 4573


def test_queues_fill_free_operators_in_parallel() -> None:
    """Issue 15: autofill unset = one caller offered at a time however many operators are free."""
    assert settings("queues.conf", "general")["autofill"] == "yes"
    assert settings("queues.conf", "queue-common")["autofill"] == "yes"
    assert settings("queues.conf", "queue-common")["musicclass"] == "default"


def test_operators_can_transfer_queue_calls_from_the_phone() -> None:
    """Issue 15: Queue() without t and no features.conf: no transfer from the phone."""
    queue_calls = [d for ctx in PLAN.values() for ext in ctx.values()
                   for _, app, d in ext if app == "Queue"]  # fmt: skip
    assert len(queue_calls) >= 2
    for data in queue_calls:
        assert "t" in data.split(",")[1], f"Queue({data}) lacks option t"
    featuremap = settings("features.conf", "featuremap")
    assert featuremap == {"blindxfer": "#1", "atxfer": "*2"}
    assert featuremap == dict(parse_ini(LAB / "features.conf")["featuremap"])


def test_a_held_caller_hears_music() -> None:
    default = settings("musiconhold.conf", "default")
    assert default["mode"] == "files" and default["directory"]
    assert default == dict(parse_ini(LAB / "musiconhold.conf")["default"])


APP_MODULES = {
    "AGI": "res_agi.so", "Queue": "app_queue.so", "Dial": "app_dial.so",
    "Playback": "app_playback.so", "ExecIf": "app_exec.so", "Log": "app_verbose.so",
    "Stasis": "app_stasis.so", "VoiceMail": "app_voicemail.so", "IF": "func_logic.so",
    "CHANNEL": "func_channel.so", "CDR": "func_cdr.so", "IFMODULE": "func_module.so",
    "DIALPLAN_EXISTS": "func_dialplan.so", "QUEUE_EXISTS": "app_queue.so",
    "QUEUE_MEMBER": "app_queue.so", "VM_INFO": "app_voicemail.so",
    "PJSIP_HEADER": "res_pjsip_header_funcs.so", "CALLERID": "func_callerid.so",
    "Read": "app_read.so",
}  # fmt: skip
CORE_APPS = {"Set", "Goto", "GotoIf", "NoOp", "Answer", "Hangup"}


def test_modules_conf_loads_every_module_the_dialplan_uses() -> None:
    modules = parse_ini(CONF / "modules.conf")["modules"]
    wanted = {v for k, v in modules if k in ("require", "load")}
    unwanted = {v for k, v in modules if k == "noload"}
    assert dict(modules)["autoload"] == "yes"
    text = (CONF / "extensions.conf").read_text(encoding="utf-8")
    used = set(re.findall(r"\b([A-Za-z_]+)\(", text)) & (set(APP_MODULES) | CORE_APPS)
    assert {"Queue", "Stasis", "VoiceMail", "IFMODULE", "DIALPLAN_EXISTS", "Log"} <= used
    for name in used - CORE_APPS:
        assert APP_MODULES[name] in wanted, f"{name}() needs {APP_MODULES[name]}"
        assert APP_MODULES[name] not in unwanted
    assert {"res_musiconhold.so", "chan_pjsip.so", "res_ari.so"} <= wanted


def test_the_callbacks_contexts_are_the_callbacks_snippet() -> None:
    """A clinic dropping asterisk-conf/ in gets exactly the dialplan the callbacks plugin's
    README documents (``callbacks/dialplan-snippet.conf``)."""
    snippet = parse_dialplan(ROOT / "callbacks" / "dialplan-snippet.conf")
    assert set(snippet) == {"callbacks-dial", "callbacks-patient-first", "callbacks-vhold",
                            "callbacks-vhold-slot"}  # fmt: skip
    for context, extens in snippet.items():
        assert PLAN[context] == extens, context
    globals_ = parse_globals(CONF / "extensions.conf")
    assert globals_["CALLSERVER_AGI"].startswith("agi://") and globals_["QUEUE_WAIT"]


def test_docker_compose_mounts_every_conf_file() -> None:
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    mounts = dict(re.findall(r"- \./asterisk-conf/(\S+):/etc/asterisk/(\S+?):ro", compose))
    files = {p.name for p in CONF.iterdir() if p.name != "README.md"}
    assert set(mounts) == files
    for src, dst in mounts.items():
        assert dst == src.removesuffix(".example")


# ------------------------------------------------------------ calls walked through the dialplan


def test_prompts_are_in_the_default_language_with_callserver_up() -> None:
    """Issue 15: agi_language was Asterisk's built-in "en", routing took it as the caller's
    choice, so ROUTE_LANG came back "en" although DEFAULT_LANG and the rules say "ru"."""
    seen: list[Decision] = []
    call = dial(routing_agi(DAY, seen))
    assert call.variables["AGISTATUS"] == "SUCCESS"
    assert seen[0].language == "ru" and call.variables["ROUTE_LANG"] == "ru"
    assert call.language == "ru"
    assert call.apps("Queue") == ["reception,rt,,,300"]


def test_prompts_are_in_the_default_language_with_callserver_down() -> None:
    call = dial(World())
    assert call.language == "ru"
    assert call.apps("Queue") == ["reception,rt,,,300"]
    assert any(level == "WARNING" and "routing AGI FAILURE" in m for level, m in call.logs)


def test_a_language_menu_choice_reaches_routing() -> None:
    seen: list[Decision] = []
    world = routing_agi(DAY, seen)
    call = Call(PLAN, world, variables=parse_globals(CONF / "extensions.conf"))
    call.variables["CALLER_LANG"] = "en"
    call.run("from-trunk", CAMPAIGN_DID)
    assert seen[0].language == "en" and call.language == "en"


def test_the_ad_source_of_a_did_is_routings_not_a_made_up_direct() -> None:
    """Issue 15: AD_SOURCE=direct on every carrier call hid the DID's source-a."""
    seen: list[Decision] = []
    call = dial(routing_agi(DAY, seen))
    agi_args = call.apps("AGI")[0].split(",")
    assert agi_args[2] == "" and "AD_SOURCE" not in call.variables
    assert seen[0].tracking.source == "source-a"
    call = dial(fake_agi(ROUTE_SOURCE="source-a"))
    assert call.variables["AD_SOURCE"] == "source-a"


def test_after_hours_goes_to_voicemail() -> None:
    seen: list[Decision] = []
    call = dial(routing_agi(NIGHT, seen))
    assert seen[0].mode == "voicemail" and "after_hours" in seen[0].reasons
    assert call.apps("VoiceMail") == ["clinic@default,s"] and call.apps("Queue") == []


def test_bot_without_the_ari_app_falls_back_to_the_queue_at_once_logged() -> None:
    """Issue 15: mode bot with no Stasis app was dead air and nothing in the log."""
    call = dial(fake_agi(ROUTE_MODE="bot", ROUTE_QUEUE="doctors"))
    assert call.apps("Stasis") == [f"callserver,inbound,{CAMPAIGN_DID},bot"]
    assert call.apps("Queue") == ["doctors,rt,,,300"]
    assert call.variables["ROUTE_FALLBACK"] == "queue"  # callserver sees where it went
    assert any(lvl == "WARNING" and "not registered" in m for lvl, m in call.logs)


def test_bot_without_the_app_nor_operators_goes_to_voicemail() -> None:
    world = fake_agi(ROUTE_MODE="bot")
    world.queues = {"reception": 0, "doctors": 0}
    call = dial(world)
    assert call.apps("Queue") == [] and call.apps("VoiceMail") == ["clinic@default,s"]
    assert call.variables["ROUTE_FALLBACK"] == "voicemail"


def test_voicemail_without_app_voicemail_falls_back_logged() -> None:
    world = fake_agi(ROUTE_MODE="voicemail")
    world.modules = frozenset()
    call = dial(world)
    assert call.apps("VoiceMail") == [] and call.apps("Queue") == ["reception,rt,,,300"]
    assert any(lvl == "WARNING" and "voicemail clinic@default unavailable" in m
               for lvl, m in call.logs)  # fmt: skip


def test_a_queue_unknown_to_queues_conf_becomes_the_default_queue() -> None:
    call = dial(fake_agi(ROUTE_QUEUE="surgery-night"))
    assert call.apps("Queue") == ["reception,rt,,,300"]
    assert any("surgery-night" in m for lvl, m in call.logs if lvl == "WARNING")


def test_an_unknown_mode_goes_to_the_queue_logged() -> None:
    call = dial(fake_agi(ROUTE_MODE="stasis"))
    assert call.apps("Queue") == ["reception,rt,,,300"]
    assert any("unknown ROUTE_MODE stasis" in m for lvl, m in call.logs if lvl == "WARNING")


def test_the_sticky_operator_is_rung_first_and_may_transfer() -> None:
    call = dial(fake_agi(ROUTE_AGENT="PJSIP/op102", ROUTE_STICKY="20"))
    assert call.apps("Dial") == ["PJSIP/op102,20,t"]
    assert call.apps("Queue") == ["reception,rt,,,300"]


COMBINATIONS = list(
    itertools.product(MODES, ("FAILED", "SUCCESS"), (True, False), ("TIMEOUT", "JOINEMPTY"), (0, 2))
)


@pytest.mark.parametrize(("mode", "stasis", "vm", "queue_status", "logged"), COMBINATIONS)
def test_every_failure_combination_ends_the_call_without_a_loop(
    mode: str, stasis: str, vm: bool, queue_status: str, logged: int
) -> None:
    """Each target tried at most once, each failure logged, and the call always ends."""
    world = fake_agi(ROUTE_MODE=mode)
    world.stasis, world.queue = stasis, lambda name: queue_status
    world.modules = frozenset({"app_voicemail.so"} if vm else ())
    world.queues = {"reception": logged, "doctors": logged}
    call = dial(world)
    assert call.hung_up
    assert len(call.apps("Stasis")) <= 1 and len(call.apps("Queue")) <= 1
    assert len(call.apps("VoiceMail")) <= 1
    failures = len(call.apps("Stasis")) + len(call.apps("Queue"))  # each one gave up here
    failures += 1 if call.variables.get("TRIED_VOICEMAIL") and not vm else 0
    warned = [m for lvl, m in call.logs if lvl in ("WARNING", "NOTICE")]
    assert len(warned) >= failures, (failures, call.logs)
    if len(call.apps("Stasis")) + len(call.apps("Queue")) + len(call.apps("VoiceMail")) > 1:
        assert call.variables.get("ROUTE_FALLBACK"), "a fallback not told to callserver"
    if call.apps("Playback")[-1:] == ["ss-noservice"]:
        assert any(lvl == "ERROR" for lvl, _ in call.logs)
