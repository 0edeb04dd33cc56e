"""pbxsim's ARI server: REST + events websocket + externalMedia RTP (see ``server``)."""

from pbxsim.ari.server import AriConfig, AriServer, attach, start_ari

__all__ = ["AriConfig", "AriServer", "attach", "start_ari"]
