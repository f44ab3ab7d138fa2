"""Shared fixtures: SoftHSM2 tokens and a throwaway PostgreSQL cluster (one per worker)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.softhsm import (
    SOFTHSM_MODULE,
    SoftHsmToken,
    activate,
    make_token,
    softhsm_directory,
)
from trustbridge._dev.postgres import PostgresCluster, PostgresUnavailableError

PKI_TOKEN = "pki-tests"
PKI_FRESH_TOKEN = "pki-tests-fresh"
PIN = "1234-user"
SO_PIN = "5678-officer"


@pytest.fixture(scope="session")
def _softhsm_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SoftHsmToken]]:
    """Both PKI test tokens, created together before SoftHSM is first loaded in the process."""
    directory = softhsm_directory(tmp_path_factory)
    tokens: dict[str, SoftHsmToken] = {}
    env: dict[str, str] = {}
    for label in (PKI_TOKEN, PKI_FRESH_TOKEN):
        env = make_token(directory, label, PIN, SO_PIN)
        tokens[label] = SoftHsmToken(
            module=SOFTHSM_MODULE,
            label=label,
            pin=PIN,
            so_pin=SO_PIN,
            conf=Path(env["SOFTHSM2_CONF"]),
        )
    with pytest.MonkeyPatch.context() as monkeypatch:
        activate(env, monkeypatch)
        yield tokens


@pytest.fixture(scope="session")
def softhsm_token(_softhsm_tokens: dict[str, SoftHsmToken]) -> SoftHsmToken:
    """A SoftHSM2 token for the whole test session (keys accumulate in it; use unique labels)."""
    return _softhsm_tokens[PKI_TOKEN]


@pytest.fixture(scope="session")
def softhsm_fresh_token(_softhsm_tokens: dict[str, SoftHsmToken]) -> SoftHsmToken:
    """A second token that only the test of a first, failing login uses."""
    return _softhsm_tokens[PKI_FRESH_TOKEN]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for this test process, removed at the end."""
    try:
        cluster = PostgresCluster()
    except PostgresUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(str(exc))
    with cluster:
        yield cluster


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database in the session's cluster."""
    return postgres_cluster.create_database(f"t{next(_databases)}")
