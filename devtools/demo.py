"""The one-command demo: ``./run demo``.

Uses PostgreSQL and Redis on their default ports if they answer, else private throwaway
instances; creates a fresh ``callserver_demo`` database; starts callserver and pbxsim (scenario
``clinic-day`` at a speed factor) on free ports; prints the URL to open. Ctrl-C stops everything
it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from devtools.services import Services, ensure_services, free_port, port_open

DEMO_DB = "callserver_demo"
ROOT = Path(__file__).resolve().parent.parent


async def _fresh_database(admin_dsn: str) -> str:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DEMO_DB}"')
    finally:
        await conn.close()
    return admin_dsn.rpartition("/")[0] + "/" + DEMO_DB


def _config_text(ports: dict[str, int], dsn: str, redis_url: str, token: str) -> str:
    return f"""
[ami]
host = "127.0.0.1"
port = {ports["ami"]}
username = "callserver"
secret = "callserver"
reconnect_max = 2.0

[ari]
url = "http://127.0.0.1:{ports["ari"]}/ari"
username = "callserver"
password = "callserver"
app = "callserver"

[agi]
host = "127.0.0.1"
port = {ports["agi"]}

[database]
dsn = "{dsn}"

[redis]
url = "{redis_url}"
prefix = "callserver-demo:"

[http]
host = "127.0.0.1"
port = {ports["http"]}
api_token = "{token}"

[routing]
rules_file = "{ROOT / "devtools" / "demo-rules.toml"}"
"""


def _wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: callserver exited with code {proc.returncode}; see above")
        if port_open("127.0.0.1", port):
            return
        time.sleep(0.2)
    raise SystemExit("demo: callserver did not start listening in time")


def _stop(procs: list[subprocess.Popen[bytes]], svc: Services) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in reversed(procs):
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    svc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="./run demo")
    parser.add_argument("--speed", type=float, default=30.0, help="pbxsim speed factor")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port of the board")
    parser.add_argument("--scenario", default="clinic-day")
    args = parser.parse_args()

    svc = ensure_services()
    dsn = asyncio.run(_fresh_database(svc.pg_dsn))
    http_port = args.port if not port_open("127.0.0.1", args.port) else free_port()
    ports = {"ami": free_port(), "ari": free_port(), "agi": free_port(), "http": http_port}
    token = secrets.token_urlsafe(16)
    conf = Path(tempfile.mkdtemp(prefix="callserver-demo-")) / "callserver.toml"
    conf.write_text(_config_text(ports, dsn, svc.redis_url, token))
    py = sys.executable
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate = [py, "-m", "callserver", "migrate", "--config", str(conf)]
        subprocess.run(migrate, check=True, env=env)
        subprocess.run([py, "-m", "crm_bridge", "seed-demo", "--dsn", dsn], check=True, env=env)
        procs.append(
            subprocess.Popen(
                [
                    py,
                    "-m",
                    "pbxsim",
                    "--scenario",
                    args.scenario,
                    "--speed",
                    str(args.speed),
                    "--ami",
                    f"127.0.0.1:{ports['ami']}",
                    "--ari",
                    f"127.0.0.1:{ports['ari']}",
                    "--agi",
                    f"127.0.0.1:{ports['agi']}",
                    "--wait-for-ami",
                ],
                env=env,
            )
        )
        procs.append(
            subprocess.Popen([py, "-m", "callserver", "run", "--config", str(conf)], env=env)
        )
        _wait_http(ports["http"], procs[-1])
        url = f"http://127.0.0.1:{ports['http']}/#token={token}"
        print("\n" + "=" * 72)
        print(f" callserver demo is running (pbxsim '{args.scenario}' at {args.speed:g}x speed)")
        print(f"   live board:  {url}")
        print(f"   API token:   {token}   (curl -H 'Authorization: Bearer {token}' ...)")
        print(f"   calls API:   http://127.0.0.1:{ports['http']}/api/calls")
        print(f"   health:      http://127.0.0.1:{ports['http']}/healthz")
        print(f"   metrics:     http://127.0.0.1:{ports['http']}/metrics")
        print(" Ctrl-C stops everything the demo started.")
        print("=" * 72 + "\n", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("demo: a process exited; stopping the rest", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ndemo: stopping…", file=sys.stderr)
    finally:
        _stop(procs, svc)


if __name__ == "__main__":
    main()
