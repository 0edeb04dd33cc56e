"""AMI event filters callserver asks Asterisk for, so that what it never reads is never sent.

A queued call is ~170 AMI events; about 70% are ``VarSet`` of variables callserver ignores
(``BRIDGEPEER``, ``QUEUE*``, ``MEMBER*``, ``RTPAUDIOQOS*`` …), the rest includes ``Newexten``,
``DeviceStateChange``, ``NewConnectedLine``, ``DialBegin``, ``Cdr`` … that nothing here reads.
After each login the client adds include filters to its session (AMI ``Filter`` action with
``MatchCriteria``, Asterisk 20.10 / 21.5 / 22.0 and later); Asterisk then sends only the events
matching one of them:

- ``action(include),name(X)`` for each event the translator and the client handle (Asterisk
  compares a hash of the name: no regular expression runs on those);
- ``action(include),name(VarSet),header(Variable),method(regex)`` for the variables the
  translator keeps (``_``/``__`` inheritance prefixes allowed), matched on the ``Variable``
  header's value only, so text elsewhere in the event cannot pose as it.

The first filter sent names an event and has no pattern. An Asterisk older than advanced
filters ignores ``MatchCriteria`` and compiles the empty pattern as a regular expression that
matches every event: every later include filter then changes nothing, and callserver receives
everything, as without filters. Only include filters are used, so no version of Asterisk can
hold back an event callserver reads. Action responses and event lists (``CoreShowChannels`` …)
are never filtered. The ``Filter`` action needs ``write = system`` in ``manager.conf``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SAFE_NAME = re.compile(r"[A-Za-z0-9_]+")
Filter = tuple[str, str]
"""(``MatchCriteria``, ``Filter``) of one ``Filter`` action."""


def event_filters(
    events: Iterable[str], variables: Iterable[str], prefixes: Iterable[str]
) -> list[Filter]:
    """The filters to add, in order: one per event of ``events`` (``VarSet`` among them is
    ignored), then ``VarSet`` of ``variables`` or of names starting with one of ``prefixes``.
    Empty (nothing filtered) when a name is not plain ``[A-Za-z0-9_]``."""
    names = sorted(set(events) - {"VarSet"})
    kept = sorted(set(variables))
    starts = sorted(set(prefixes))
    if not names or not all(SAFE_NAME.fullmatch(n) for n in (*names, *kept, *starts)):
        return []
    out = [(f"action(include),name({name})", "") for name in names]
    wanted = [*kept, *(f"{p}[A-Za-z0-9_]*" for p in starts)]
    if wanted:
        pattern = f"^_*({'|'.join(wanted)})([^A-Za-z0-9_]|$)"
        out.append(("action(include),name(VarSet),header(Variable),method(regex)", pattern))
    return out
