"""SoftHSM2 tokens for tests.

SoftHSM reads ``SOFTHSM2_CONF`` and scans its token directory once, when the module is
initialised (``C_Initialize``) - in trustbridge, the first time a process opens a PKCS#11 key.
So a test session must create every token it needs and set ``SOFTHSM2_CONF`` before that:
:func:`make_token` writes one configuration per directory and adds tokens to it, and
:func:`activate` sets the environment variable for the whole process and refuses a second,
different configuration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "SOFTHSM_MODULE",
    "SoftHsmToken",
    "activate",
    "make_token",
    "require_softhsm",
    "softhsm_directory",
    "token_labels",
]

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

_activated_conf: str | None = None


@dataclass(frozen=True)
class SoftHsmToken:
    """An initialised SoftHSM2 token and what it takes to use it."""

    module: str
    label: str
    pin: str
    so_pin: str
    conf: Path


def require_softhsm() -> str:
    """The path of ``softhsm2-util``; skips the test without SoftHSM2, fails if env CI=true."""
    util = shutil.which("softhsm2-util")
    missing = []
    if util is None:
        missing.append("softhsm2-util")
    if not Path(SOFTHSM_MODULE).is_file():
        missing.append(SOFTHSM_MODULE)
    if missing:
        message = f"SoftHSM2 is not installed (missing {', '.join(missing)}); apt install softhsm2"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert util is not None
    return util


def softhsm_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one directory of this test process's SoftHSM2 configuration and tokens.

    Fixed per session (and per xdist worker), so that every fixture that makes tokens adds them
    to the same configuration.
    """
    return tmp_path_factory.getbasetemp() / "softhsm"


def _conf_path(directory: Path) -> Path:
    """Write (once) a softhsm2.conf keeping its tokens in ``directory/tokens``."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    if not conf.exists():
        conf.write_text(
            f"directories.tokendir = {tokens}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n",
            encoding="utf-8",
        )
    return conf


def make_token(directory: Path, label: str, pin: str, so_pin: str) -> dict[str, str]:
    """Initialise a token ``label`` in the SoftHSM2 configuration kept in ``directory``.

    Several tokens can share one directory. Changes nothing globally: returns the environment
    entries (``SOFTHSM2_CONF``) under which the token is visible; see :func:`activate`.
    """
    util = require_softhsm()
    if not label or len(label.encode("utf-8")) > 32:
        raise ValueError(f"SoftHSM2 token label {label!r} must have 1 to 32 bytes")
    env = {"SOFTHSM2_CONF": str(_conf_path(directory))}
    if label in token_labels(env):
        raise ValueError(f"a SoftHSM2 token labelled {label!r} exists already in {directory}")
    result = subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"softhsm2-util could not initialise token {label!r} in {directory}: "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return env


def token_labels(env: dict[str, str]) -> list[str]:
    """The labels of the initialised tokens under the configuration ``env`` names."""
    result = subprocess.run(
        [require_softhsm(), "--show-slots"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    labels = []
    for line in result.stdout.splitlines():
        name, _, value = line.strip().partition(":")
        if name == "Label" and value.strip():
            labels.append(value.strip())
    return labels


def activate(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the environment from :func:`make_token` for this process, through ``monkeypatch``.

    Call before the first PKCS#11 key is opened. A second call must name the same
    configuration, since SoftHSM would silently keep reading the first one.
    """
    global _activated_conf  # noqa: PLW0603 - one configuration per process, by design
    conf = env["SOFTHSM2_CONF"]
    if _activated_conf is not None and _activated_conf != conf:
        raise RuntimeError(
            f"SoftHSM2 already uses {_activated_conf} in this process; cannot switch to {conf} "
            "(create all test tokens in one directory)"
        )
    _activated_conf = conf
    for name, value in env.items():
        monkeypatch.setenv(name, value)
