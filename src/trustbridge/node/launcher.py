"""Start `trustbridge serve` for a home as a separate process, wait until it is ready, stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from trustbridge.errors import ConfigError

__all__ = ["NodeProcess", "free_port", "running", "start_node", "stop_node", "wait_ready"]


@dataclass(frozen=True)
class NodeProcess:
    name: str
    http_url: str
    https_url: str
    log: Path
    process: subprocess.Popen[bytes]


def wait_ready(node: NodeProcess, timeout: float = 60) -> None:
    """Wait until the node's /health says ready; raise if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise ConfigError(
                f"node {node.name} exited with code {node.process.returncode} before it was "
                f"ready: {node.log.read_text(errors='replace').strip()[-600:]}"
            )
        try:
            response = httpx.get(f"{node.http_url}/health", timeout=1)
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == 200:
            answered = response.json().get("node")
            if answered != node.name:  # another process holds the port
                raise ConfigError(
                    f"{node.http_url} is served by node {answered!r}, not {node.name!r}",
                    hint="stop the other node, or choose other ports",
                )
            return
        time.sleep(0.1)
    raise ConfigError(f"node {node.name} was not ready after {timeout:.0f} s (log: {node.log})")


def stop_node(node: NodeProcess, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    process = node.process
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_node(
    home: Path,
    *,
    name: str,
    http_url: str,
    https_url: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> NodeProcess:
    """Start ``trustbridge --home HOME serve`` in its own process group; see :func:`wait_ready`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trustbridge.cli.main",
                "--home",
                str(home),
                "serve",
                *extra_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # Ctrl-C in the terminal reaches us; we stop the node
        )
    return NodeProcess(name, http_url, https_url, log, process)


@contextmanager
def running(node: NodeProcess, timeout: float = 60) -> Iterator[NodeProcess]:
    """Wait until a started node is ready; stop it when the block ends (errors, Ctrl-C too).

    ``with running(start_node(home, ...)) as node: ...``
    """
    try:
        wait_ready(node, timeout)
        yield node
    finally:
        stop_node(node)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (for tests and benchmarks)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
