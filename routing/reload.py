"""The current rules and their hot reload (file change or SIGHUP).

A reload parses the whole file first and swaps one reference only when it is valid, so a call
being decided keeps the ``RuleSet`` it started with and no call is ever dropped or half-routed;
an invalid file is logged (naming the rule) and the previous rules stay in force.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from routing.errors import RulesError
from routing.rules import RuleSet, load_rules, minimal_rules

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Stamp:
    mtime_ns: int
    size: int
    inode: int


def _stamp(path: Path) -> _Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _Stamp(st.st_mtime_ns, st.st_size, st.st_ino)


class RulesHolder:
    """Holds the current ``RuleSet``; ``check()`` reloads it when the file changed.

    ``path=None`` (no rules file configured) keeps ``minimal_rules(default_queue)`` forever.
    Counters: ``reloads`` (successful), ``reload_errors``; ``last_error`` is the last failure.
    """

    def __init__(self, path: str | Path | None, *, default_queue: str = "reception") -> None:
        self.path = Path(path) if path is not None else None
        self.current: RuleSet = minimal_rules(default_queue)
        self.reloads = 0
        self.reload_errors = 0
        self.last_error: str = ""
        self._stamp: _Stamp | None = None

    def load_initial(self) -> RuleSet:
        """Load the file at start-up. Raises RulesError: a bad file must stop start-up."""
        if self.path is not None:
            self._stamp = _stamp(self.path)
            self.current = load_rules(self.path)
            log.info("routing rules %s loaded from %s", self.current.version, self.path)
        return self.current

    def check(self) -> bool:
        """Reload if the file's mtime/size/inode changed; True when new rules took effect."""
        if self.path is None:
            return False
        stamp = _stamp(self.path)
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        return self.reload()

    def reload(self) -> bool:
        """Re-read the file now. True when the new rules took effect; False (old rules kept,
        error logged and kept in ``last_error``) when the file is invalid or unreadable."""
        if self.path is None:
            return False
        try:
            rules = load_rules(self.path)
        except RulesError as exc:
            self.reload_errors += 1
            self.last_error = exc.message
            log.error("routing rules NOT reloaded, keeping %s: %s", self.current.version, exc)
            return False
        old, self.current = self.current, rules
        self.reloads += 1
        self.last_error = ""
        log.info("routing rules reloaded: %s -> %s", old.version, rules.version)
        return True
