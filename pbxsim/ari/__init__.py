"""pbxsim's ARI: REST subset + events websocket + externalMedia RTP, shaped like Asterisk 22.

Wiring (``pbxsim.__main__`` does this for ``--ari HOST:PORT --ari-user --ari-password``)::

    ari = await start_ari(pbx.engine, AriConfig(port=8088, audio=Path("caller.wav")))
    ...
    await ari.aclose()

While a client holds ``GET /ari/events?app=NAME`` open, ``Stasis(NAME,…)`` in the engine
hands the channel to that client (StasisStart with the args); otherwise Stasis fails (or
the scenario's built-in app runs). REST: ``/asterisk/info``, ``/applications[/{name}]``,
``/channels`` (GET, ``/{id}`` GET/DELETE, ``answer``, ``continue``, ``variable`` GET/POST,
``play[/{playbackId}]``, ``externalMedia``), ``/bridges`` (GET/POST, ``/{id}`` GET/POST/
DELETE, ``addChannel``, ``removeChannel``, ``play[/{playbackId}]``), ``/playbacks/{id}``
(GET/DELETE). ARI events are derived from the engine's AMI events (``AriCore.on_ami``).
externalMedia binds a real UDP port (``UNICASTRTP_LOCAL_PORT``), streams the caller's WAV
(``PBXSIM_AUDIO`` channel variable, else ``AriConfig.audio``, else silence) in 20 ms
packets once bridged, and keeps what the bot sends (``AriServer.media(channel_id)``).
"""

from pbxsim.ari.server import AriConfig, AriServer, attach, start_ari

__all__ = ["AriConfig", "AriServer", "attach", "start_ari"]
