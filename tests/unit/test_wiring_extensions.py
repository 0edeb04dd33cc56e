from typing import Any

from callserver.wiring import Extensions


async def test_one_failing_ari_handler_does_not_stop_the_others() -> None:
    seen: list[str] = []

    def broken(event: Any) -> None:
        raise RuntimeError("bug")

    async def recorder(event: Any) -> None:
        seen.append(event["type"])

    ext = Extensions(ari_handlers=[broken, recorder])
    await ext.on_ari_event({"type": "StasisStart"})
    assert seen == ["StasisStart"]
