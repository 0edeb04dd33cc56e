"""pbxsim as a separate process for end-to-end tests (the way the demo and a real Asterisk run:
its own program on its own sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

from devtools.services import free_port, port_open


@dataclass
class Pbx:
    ami_port: int
    ari_port: int
    agi_port: int
    proc: asyncio.subprocess.Process
    log: IO[bytes]

    def output(self) -> str:
        """Everything pbxsim printed so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextlib.asynccontextmanager
async def run_pbxsim(
    scenario: str, *, speed: float, agi_port: int, extra: tuple[str, ...] = ()
) -> AsyncIterator[Pbx]:
    """Start ``python -m pbxsim`` (``--wait-for-ami --keep-running``); stop it on exit."""
    ami, ari = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONTRACEMALLOC"}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finally; a pipe could fill up
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pbxsim", "--scenario", scenario, "--speed", str(speed),
        "--ami", f"127.0.0.1:{ami}", "--ari", f"127.0.0.1:{ari}",
        "--agi", f"127.0.0.1:{agi_port}", "--wait-for-ami", "--keep-running", *extra,
        stdout=log, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        for _ in range(600):
            if port_open("127.0.0.1", ami, timeout=0.05) and port_open("127.0.0.1", ari, 0.05):
                break
            if proc.returncode is not None:
                raise AssertionError(f"pbxsim exited with {proc.returncode}")
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("pbxsim did not start listening")
        yield Pbx(ami, ari, agi_port, proc, log)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
