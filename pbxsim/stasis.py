"""The Stasis hook: how an ARI front end (``pbxsim/ari/``, added later) takes over channels.

When a channel executes ``Stasis(app,args)`` the engine looks ``app`` up in
``Engine.stasis`` (a ``StasisRegistry``). If nobody registered it, ``STASISSTATUS`` becomes
``FAILED`` and the dialplan goes on, like Asterisk with no ARI websocket for that app.
Otherwise the engine builds a ``StasisSession`` and awaits ``app.run(session)``: the
channel stays in Stasis until ``run`` returns (StasisEnd) or the caller hangs up.

The session's methods (``answer``, ``play``, ``create_bridge``, ``add_to_bridge``,
``external_media``, ``hangup`` …) perform the channel operations and emit the AMI events a
real Asterisk emits for the corresponding ARI requests; the ARI server maps its REST calls
onto them and turns ``session.events`` (DTMF from the caller, caller hangup) into websocket
events. ``StasisSession`` itself lives in ``pbxsim.stasis_session`` (engine-bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pbxsim.stasis_session import StasisSession


@dataclass(frozen=True)
class StasisEvent:
    """Something the caller side did while in Stasis.

    kind: ``"dtmf"`` (``digit``, ``duration_ms``) or ``"hangup"`` (``cause``).
    """

    kind: str
    digit: str = ""
    duration_ms: int = 0
    cause: int = 16


class StasisApp(Protocol):
    """A Stasis application: the ARI server's adapter, or the built-in scripted one."""

    async def run(self, session: StasisSession) -> None:
        """Control ``session.channel`` until done; return to end Stasis (StasisEnd).

        Called on the engine's event loop; must not block. Raising ends Stasis too (the
        engine logs the error and continues the dialplan).
        """
        ...


class StasisRegistry:
    """Registered Stasis applications by name (ARI: ``/ari/events?app=NAME``)."""

    def __init__(self) -> None:
        self._apps: dict[str, StasisApp] = {}

    def register(self, name: str, app: StasisApp) -> None:
        self._apps[name] = app

    def unregister(self, name: str, app: StasisApp | None = None) -> None:
        """Forget ``name`` (only if it still maps to ``app`` when given)."""
        if app is None or self._apps.get(name) is app:
            self._apps.pop(name, None)

    def get(self, name: str) -> StasisApp | None:
        return self._apps.get(name)

    def names(self) -> list[str]:
        return sorted(self._apps)
