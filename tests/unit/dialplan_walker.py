"""A small walker for ``asterisk-conf/extensions.conf``: follows one call through the dialplan the
way Asterisk's pbx core does, so the unit tests can check where a call ends up when callserver,
the ARI app, a queue or voicemail is missing. No Asterisk here (none is packaged for this
machine), so this models only what our dialplan uses:

* ``${VAR}``/``${FUNC(args)}``/``$[expr]`` substituted innermost first over the whole
  application data before the application runs (as Asterisk does: ``ExecIf`` does not stop
  the functions in its branch from being evaluated);
* ``$[...]`` with ``=``, ``!=``, ``>``, ``<``, ``&``, ``|``, quoted strings and integers;
* the applications and functions in ``APPS``/``FUNCS`` below; ``_X.`` patterns; labels;
  ``Goto``/``GotoIf`` with 1, 2 or 3 parts; ``__VAR`` (inherited) set as ``VAR``.

What the outside world answers (the AGI, Queue, Dial, Stasis, VoiceMail) comes from the test's
``World``. Every application run is recorded in ``Call.trail`` as ``(app, substituted data)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Line = tuple[str, str, str]  # (label, app, data)
MAX_STEPS = 200


def parse_dialplan(path: Path) -> dict[str, dict[str, list[Line]]]:
    """context → extension → priorities 1.. as (label, app, raw data)."""
    contexts: dict[str, dict[str, list[Line]]] = {}
    context, exten = "", ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([\w-]+)\](\(.*\))?", line):
            context = m.group(1)
            contexts[context] = {}
        elif m := re.fullmatch(r"exten\s*=>\s*([^,]+),1,(\w+)\((.*)\)", line):
            exten = m.group(1)
            contexts[context][exten] = [("", m.group(2), m.group(3))]
        elif m := re.fullmatch(r"same\s*=>\s*n(?:\((\w+)\))?,(\w+)\((.*)\)", line):
            contexts[context][exten].append((m.group(1) or "", m.group(2), m.group(3)))
    return contexts


def parse_globals(path: Path) -> dict[str, str]:
    """The ``[globals]`` of extensions.conf: the variables every call starts with."""
    out: dict[str, str] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([\w-]+)\]", line):
            section = m.group(1)
        elif section == "globals" and "=" in line:
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip()
    return out


def split_top(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    parts, depth, quoted, cur = [], 0, False, ""
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not quoted and maxsplit != 0:
            parts.append(cur)
            cur = ""
            maxsplit -= 1
            continue
        cur += ch
    return [*parts, cur]


def evaluate(expr: str) -> str:
    """An Asterisk ``$[...]`` expression (the subset our dialplan uses)."""
    tokens = re.findall(r'"[^"]*"|!=|[=&|<>()]|[^\s"=&|<>()!]+', expr)
    pos = 0

    def atom() -> str:
        nonlocal pos
        tok = tokens[pos] if pos < len(tokens) else ""
        pos += 1
        if tok == "(":
            value = disj()
            pos += 1
            return value
        return tok.strip('"')

    def compare() -> str:
        nonlocal pos
        left = atom()
        while pos < len(tokens) and tokens[pos] in ("=", "!=", ">", "<"):
            op = tokens[pos]
            pos += 1
            right = atom()
            if left.lstrip("-").isdigit() and right.lstrip("-").isdigit():
                a, b = int(left), int(right)
                result = {"=": a == b, "!=": a != b, ">": a > b, "<": a < b}[op]
            else:
                result = {"=": left == right, "!=": left != right,
                          ">": left > right, "<": left < right}[op]  # fmt: skip
            left = "1" if result else "0"
        return left

    def conj() -> str:
        nonlocal pos
        left = compare()
        while pos < len(tokens) and tokens[pos] == "&":
            pos += 1
            right = compare()
            left = "1" if truthy(left) and truthy(right) else "0"
        return left

    def disj() -> str:
        nonlocal pos
        left = conj()
        while pos < len(tokens) and tokens[pos] == "|":
            pos += 1
            right = conj()
            left = "1" if truthy(left) or truthy(right) else "0"
        return left

    return disj()


def truthy(value: str) -> bool:
    value = value.strip()
    return value not in ("", "0")


@dataclass
class World:
    """What Asterisk's surroundings answer. ``agi`` gets the call and sets variables (or not);
    ``queue``/``dial``/``stasis``/``voicemail`` return the status variable's value."""

    agi: Callable[[Call, list[str]], str] = lambda call, args: "FAILURE"
    queues: dict[str, int] = field(default_factory=lambda: {"reception": 3, "doctors": 2})
    """Queues in queues.conf → members logged in."""
    queue: Callable[[str], str] = lambda name: ""
    dial: Callable[[str], str] = lambda target: "CHANUNAVAIL"
    stasis: str = "FAILED"
    modules: frozenset[str] = frozenset({"app_voicemail.so"})
    mailboxes: frozenset[str] = frozenset({"clinic@default"})
    voicemail: str = "SUCCESS"
    channeltype: str = "PJSIP"


@dataclass
class Call:
    """One channel walking the dialplan."""

    plan: dict[str, dict[str, list[Line]]]
    world: World
    variables: dict[str, str] = field(default_factory=dict)
    language: str = "en"  # Asterisk's built-in default (asterisk.conf defaultlanguage)
    trail: list[tuple[str, str]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    context: str = ""
    exten: str = ""
    index: int = 0
    hung_up: bool = False

    def apps(self, name: str) -> list[str]:
        """The substituted data of every run of application ``name``, in order."""
        return [data for app, data in self.trail if app == name]

    def extension(self, context: str, exten: str) -> str | None:
        exts = self.plan.get(context, {})
        if exten in exts:
            return exten
        for pattern in exts:
            if pattern == "_X." and len(exten) >= 2 and exten[0].isdigit():
                return pattern
        return None

    def goto(self, target: str) -> None:
        parts = [p.strip() for p in target.split(",")]
        if len(parts) == 1:
            parts = [self.context, self.exten, parts[0]]
        elif len(parts) == 2:
            parts = [self.context, *parts]
        context, exten, prio = parts
        pattern = self.extension(context, exten)
        assert pattern is not None, f"Goto to missing {context},{exten}"
        lines = self.plan[context][pattern]
        if prio.isdigit():
            index = int(prio) - 1
        else:
            labels = [label for label, _, _ in lines]
            assert prio in labels, f"Goto to missing label {prio} in {context},{exten}"
            index = labels.index(prio)
        self.context, self.exten, self.index = context, exten, index - 1  # run() adds 1

    def run(self, context: str, exten: str) -> Call:
        """Walk from ``context,exten,1`` until Hangup or the end of an extension."""
        self.goto(f"{context},{exten},1")
        for _ in range(MAX_STEPS):
            self.index += 1
            lines = self.plan[self.context][self.extension(self.context, self.exten) or ""]
            if self.hung_up or self.index >= len(lines):
                return self
            _, app, data = lines[self.index]
            self.execute(app, substitute(self, data))
        raise AssertionError(f"more than {MAX_STEPS} steps: a loop? {self.trail[-12:]}")

    def execute(self, app: str, data: str) -> None:
        self.trail.append((app, data))
        APPS[app](self, data)


def substitute(call: Call, text: str) -> str:
    """Replace innermost ``${...}`` / ``$[...]`` first, until none is left."""
    pattern = re.compile(r"\$\{([^${}\[\]]*)\}|\$\[([^${}\[\]]*)\]")
    while m := pattern.search(text):
        value = lookup(call, m.group(1)) if m.group(1) is not None else evaluate(m.group(2))
        text = text[: m.start()] + value + text[m.end() :]
    return text


def lookup(call: Call, name: str) -> str:
    if m := re.fullmatch(r"(\w+)\((.*)\)", name, re.S):
        return FUNCS[m.group(1)](call, m.group(2))
    if name == "EXTEN":
        return call.exten
    return call.variables.get(name, "")


def _if(call: Call, arg: str) -> str:
    cond, _, branches = arg.partition("?")
    yes, _, no = branches.partition(":")
    return yes if truthy(cond) else no


def _channel(call: Call, arg: str) -> str:
    return {"language": call.language, "channeltype": call.world.channeltype,
            "linkedid": "1700000000.1"}[arg]  # fmt: skip


def _queue_member(call: Call, arg: str) -> str:
    queue, option = arg.split(",")
    assert queue in call.world.queues, f"QUEUE_MEMBER of a missing queue {queue!r}"
    assert option == "logged", option
    return str(call.world.queues[queue])


def _vm_info(call: Call, arg: str) -> str:
    assert "app_voicemail.so" in call.world.modules, "VM_INFO without app_voicemail loaded"
    box, attr = arg.split(",")
    assert attr == "exists"
    return "1" if box in call.world.mailboxes else "0"


def _pjsip_header(call: Call, arg: str) -> str:
    assert call.world.channeltype == "PJSIP", "PJSIP_HEADER on a non-PJSIP channel"
    return ""


FUNCS: dict[str, Callable[[Call, str], str]] = {
    "IF": _if,
    "CHANNEL": _channel,
    "CALLERID": lambda call, arg: call.variables.get("CALLERID_num", ""),
    "PJSIP_HEADER": _pjsip_header,
    "QUEUE_EXISTS": lambda call, arg: "1" if arg in call.world.queues else "0",
    "QUEUE_MEMBER": _queue_member,
    "DIALPLAN_EXISTS": lambda call, arg: (
        "1" if call.extension(*arg.split(",")[:2]) is not None else "0"
    ),
    "IFMODULE": lambda call, arg: "1" if arg in call.world.modules else "0",
    "VM_INFO": _vm_info,
}


def _set(call: Call, data: str) -> None:
    name, _, value = data.partition("=")
    if name == "CHANNEL(language)":
        call.language = value
    elif not name.startswith("CDR("):
        call.variables[name.lstrip("_")] = value


def _gotoif(call: Call, data: str) -> None:
    cond, _, labels = data.partition("?")
    yes, _, no = labels.partition(":")
    target = yes if truthy(cond) else no
    if target:
        call.goto(target)


def _execif(call: Call, data: str) -> None:
    cond, _, app_call = data.partition("?")
    if truthy(cond):
        m = re.fullmatch(r"(\w+)\((.*)\)", app_call, re.S)
        assert m, app_call
        call.execute(m.group(1), m.group(2))


def _log(call: Call, data: str) -> None:
    level, _, message = data.partition(",")
    call.logs.append((level, message))


def _hangup(call: Call, data: str) -> None:
    call.hung_up = True


def _agi(call: Call, data: str) -> None:
    call.variables["AGISTATUS"] = call.world.agi(call, split_top(data, ",")[1:])


def _queue(call: Call, data: str) -> None:
    call.variables["QUEUESTATUS"] = call.world.queue(split_top(data, ",")[0])


def _dial(call: Call, data: str) -> None:
    call.variables["DIALSTATUS"] = call.world.dial(split_top(data, ",")[0])


def _stasis(call: Call, data: str) -> None:
    call.variables["STASISSTATUS"] = call.world.stasis


def _voicemail(call: Call, data: str) -> None:
    assert "app_voicemail.so" in call.world.modules, "VoiceMail() without app_voicemail"
    call.variables["VMSTATUS"] = call.world.voicemail


APPS: dict[str, Callable[[Call, str], None]] = {
    "Set": _set,
    "GotoIf": _gotoif,
    "Goto": lambda call, data: call.goto(data),
    "ExecIf": _execif,
    "NoOp": lambda call, data: None,
    "Answer": lambda call, data: None,
    "Playback": lambda call, data: None,
    "Log": _log,
    "Hangup": _hangup,
    "AGI": _agi,
    "Queue": _queue,
    "Dial": _dial,
    "Stasis": _stasis,
    "VoiceMail": _voicemail,
}
