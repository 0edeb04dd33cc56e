"""After ``aclose`` the ARI REST client refuses requests instead of opening a new HTTP session
that nobody would close (a Stasis task still running at shutdown used to leak one: an
"Unclosed client session" in the end-to-end tests)."""

from __future__ import annotations

import pytest

from callserver.asterisk.ari_rest import AriRest
from callserver.asterisk.errors import AriConnectionError
from callserver.config import AriConfig


async def test_a_request_after_aclose_raises_and_opens_no_session() -> None:
    rest = AriRest(AriConfig(url="http://127.0.0.1:9/ari"))
    await rest.aclose()
    with pytest.raises(AriConnectionError):
        await rest.continue_in_dialplan("chan-1")
    assert rest._session is None
