"""Fixtures shared by the end-to-end tests: one run of the joint demonstrator per session."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from rich.console import Console

from trustbridge.demo.manifest import read_manifest
from trustbridge.demo.scenario import run_demo
from trustbridge.node.launcher import start_node, stop_node, wait_ready


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one demo run (``manifest.json``, ``nodes/``, ``artifacts/``).

    Shared by every end-to-end test of the session: read it, never change it.
    """
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    run_demo(out, console=Console(file=io.StringIO(), width=120), port_base=demo_port_base())
    return out


def demo_port_base() -> int:
    """Ports for this xdist worker's demo runs, apart from `make demo`'s and other workers'."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return 28_000 + 1_000 * (int(worker) if worker.isdigit() else 0)


@contextmanager
def served_copy_of(demo_out: Path, where: Path) -> Iterator[Path]:
    """A copy of the demo's output in ``where``, with all its nodes served again (on the demo's
    ports) until the block ends. Tests that change state (revoke, suspend) use a copy."""
    copy = where / "demo-out"
    shutil.copytree(demo_out, copy)
    with ExitStack() as stack:
        nodes = []
        for entry in read_manifest(copy)["nodes"]:
            node = start_node(
                copy / entry["home"],
                name=entry["node"],
                http_url=entry["http_url"],
                https_url=entry.get("https_url", ""),
                log=copy / "logs" / f"{entry['node']}-again.log",
            )
            stack.callback(stop_node, node)
            nodes.append(node)
        for node in nodes:
            wait_ready(node)
        yield copy
