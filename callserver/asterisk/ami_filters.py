"""AMI event filters callserver asks Asterisk for, so that what it never reads is never sent.

A queued call is ~170 AMI events; about 70% are ``VarSet`` of variables callserver ignores
(``BRIDGEPEER``, ``QUEUE*``, ``MEMBER*``, ``RTPAUDIOQOS*`` …), the rest includes ``Newexten``,
``DeviceStateChange``, ``NewConnectedLine``, ``DialBegin``, ``Cdr`` … that nothing here reads.
After each login the client adds two include filters to its session (AMI ``Filter`` action,
legacy form: a POSIX regular expression over the whole event, understood by every Asterisk
20/22); Asterisk then sends only the events matching one of them:

1. the events the translator and the client handle, by name;
2. ``VarSet`` of the variables the translator keeps (``_``/``__`` inheritance prefixes allowed).

Both are include filters, so a wrong match can only let an extra event through (the translator
ignores it), never hold one back. A header is anchored on the control character ending the line
before it, so text inside a value (a caller name saying ``Variable: DID``) cannot pose as a
header. Action responses and event lists (``CoreShowChannels`` …) are never filtered by
Asterisk. The ``Filter`` action needs ``write = system`` in ``manager.conf``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CNTRL = "[[:cntrl:]]"
NOT_CNTRL = "[^[:cntrl:]]"
SAFE_NAME = re.compile(r"[A-Za-z0-9_]+")


def event_filters(
    events: Iterable[str], variables: Iterable[str], prefixes: Iterable[str]
) -> list[str]:
    """The ``Filter`` values to add: ``events`` by name (``VarSet`` among them is ignored),
    ``VarSet`` only of ``variables`` or names starting with one of ``prefixes``. Empty (nothing
    filtered) when a name is not plain ``[A-Za-z0-9_]``."""
    names = sorted(set(events) - {"VarSet"})
    kept = sorted(set(variables))
    starts = sorted(set(prefixes))
    if not names or not all(SAFE_NAME.fullmatch(n) for n in (*names, *kept, *starts)):
        return []
    wanted = [*kept, *(f"{p}{NOT_CNTRL}*" for p in starts)]
    out = [f"^Event: ({'|'.join(names)}){CNTRL}"]
    if wanted:
        out.append(f"^Event: VarSet{CNTRL}.*{CNTRL}Variable: _*({'|'.join(wanted)}){CNTRL}")
    return out
