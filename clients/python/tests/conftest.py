"""Fixtures: a real ``prewarm upstream-sim`` and ``prewarm serve`` on free
loopback ports with a temporary state dir, started once per session.

The binary is ``$PREWARM_BIN``, else ``target/debug/prewarm`` of the
repository (``cargo build --bin prewarm``). Without it the tests fail:
they never skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
ADMIN_TOKEN = "py-admin-token"
ACCESS_TOKEN = "py-access-token"


def prewarm_bin() -> Path:
    path = Path(os.environ.get("PREWARM_BIN") or REPO / "target" / "debug" / "prewarm")
    if not path.is_file():
        pytest.fail(f"no prewarm binary at {path}: run `cargo build --bin prewarm` or set PREWARM_BIN")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, procs: List[subprocess.Popen], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"{p.args} exited with {p.returncode}")
        try:
            r = httpx.get(url, timeout=1.0)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            last = str(e)
        time.sleep(0.05)
    pytest.fail(f"{url} not up after {timeout_s} s: {last}")


@dataclass
class Daemon:
    url: str
    admin_url: str
    upstream_url: str
    state_dir: str


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    binary = prewarm_bin()
    state = tempfile.TemporaryDirectory(prefix="prewarm-py-")
    sim_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    logs = Path(state.name) / "logs"
    logs.mkdir()
    sim = subprocess.Popen(
        [str(binary), "upstream-sim", "--listen", f"127.0.0.1:{sim_port}", "--latency-ms", "1"],
        stdout=open(logs / "sim.out", "wb"),
        stderr=subprocess.STDOUT,
    )
    env = {
        **os.environ,
        "PREWARM_ADMIN_TOKEN": ADMIN_TOKEN,
        "PREWARM_ACCESS_TOKEN": ACCESS_TOKEN,
        "WARMING_OUTSIDE_SESSIONS": "run",
        # No strategy warms on its own (cycles asked for still run), so a
        # purged or never-read key stays a miss until a test reads it.
        "WARMING_STRATEGIES": "none",
        "RUST_LOG": "warn",
    }
    serve = subprocess.Popen(
        [
            str(binary),
            "serve",
            "--listen", f"127.0.0.1:{proxy_port}",
            "--admin-listen", f"127.0.0.1:{admin_port}",
            "--state-dir", str(Path(state.name) / "state"),
            "--upstream", f"http://127.0.0.1:{sim_port}/v1/quote/{{key}}",
        ],
        env=env,
        stdout=open(logs / "serve.out", "wb"),
        stderr=subprocess.STDOUT,
    )
    procs = [sim, serve]
    try:
        admin_url = f"http://127.0.0.1:{admin_port}"
        wait_until_up(f"{admin_url}/readyz", procs)
        wait_until_up(f"{admin_url}/warming/status", procs)
        yield Daemon(
            url=f"http://127.0.0.1:{proxy_port}",
            admin_url=admin_url,
            upstream_url=f"http://127.0.0.1:{sim_port}",
            state_dir=state.name,
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        state.cleanup()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
