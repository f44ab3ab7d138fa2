"""Fixtures shared by the end-to-end tests: one run of the joint demonstrator per session."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from trustbridge.assessment.policy import shipped_policy
from trustbridge.demo.scenario import run_demo, serve_again


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
    with serve_again(copy):
        yield copy


def strict_policy(path: Path) -> Path:
    """The safety-component policy with thresholds Hayabusa's evidence cannot reach (95/90),
    written to ``path``."""
    policy = yaml.safe_load(shipped_policy("safety-component-supplier-high").read_text())
    policy["policy"] = "safety-component-supplier-strict"
    policy["thresholds"] = {"accept": 95, "conditions": 90}
    policy.pop("suppliers", None)
    path.write_text(yaml.safe_dump(policy))
    return path
