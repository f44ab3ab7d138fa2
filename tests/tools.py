"""Helpers the test packages share: the `openssl` command and the `trustbridge` command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

#: The `trustbridge` command, run with the interpreter of the tests.
TB = [sys.executable, "-m", "trustbridge.cli.main"]


def openssl(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `openssl` command (the independent client); skips where it is not installed."""
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl command is not installed (apt install openssl)")
    return subprocess.run(
        [path, *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


def openssl_verify_policy(
    *,
    anchor: Path,
    untrusted: list[Path],
    leaf: Path,
    policy: str,
    work: Path,
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` with RFC 5280 policy processing (mapping included) for ``policy``."""
    bundle = work / "untrusted.pem"
    bundle.write_bytes(b"".join(p.read_bytes() for p in untrusted))
    return openssl(
        "verify", "-x509_strict", "-policy_check", "-explicit_policy", "-policy", policy,
        *extra, "-CAfile", anchor, "-untrusted", bundle, leaf,
    )  # fmt: skip


def run_cli(
    *args: str, cwd: Path, env: Mapping[str, str], ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `trustbridge ARGS`; with ``ok`` it must succeed. It never prints a traceback."""
    result = subprocess.run(
        [*TB, *args], cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    if ok:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result
