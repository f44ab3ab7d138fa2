"""The homes and databases the benchmarks run on (setup, never timed).

Every benchmark's home is the reference scenario's German TSP in small: scheme ``de``, a P-256
root and a devices CA (machines and software), their keys in files whose passphrase comes from
:data:`PASSPHRASE_ENV`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench._common import in_ci
from trustbridge.home.config import SecretSource
from trustbridge.home.home import Home, KeySpec
from trustbridge.pki.keys import KeyType
from trustbridge.pki.profiles import SubjectKind
from trustbridge.pki.release import Principal
from trustbridge.trust.reference import GERMANY

__all__ = [
    "DEVICES_CA",
    "MANUFACTURER",
    "MODEL",
    "PASSPHRASE_ENV",
    "POSTGRESQL",
    "ROOT_CA",
    "SQLITE",
    "bench_environment",
    "ca_key",
    "database",
    "devices_home",
]

PASSPHRASE_ENV = "TB_BENCH_PP"  # noqa: S105 - the name of a variable, not a secret
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
ROOT_CA = "de-root"
DEVICES_CA = "de-devices"
MANUFACTURER = "Muster Maschinenbau GmbH"
MODEL = "MX-500 Press"
TSP = "Rheintal Trust Services GmbH"


def bench_environment() -> None:
    """A CA passphrase for this run; no inherited database URL (it would redirect SQLite)."""
    os.environ.pop("TRUSTBRIDGE_DATABASE_URL", None)
    os.environ.setdefault(PASSPHRASE_ENV, secrets.token_urlsafe(24))


def ca_key() -> KeySpec:
    return KeySpec(KeyType.P256, secret=SecretSource(env=PASSPHRASE_ENV))


def devices_home(
    path: Path, *, node_name: str, actor: Principal, database_url: str | None = None, **init: Any
) -> Home:
    """A home with scheme ``de``, root :data:`ROOT_CA` and devices CA :data:`DEVICES_CA`.

    ``init``: further :meth:`Home.init` arguments (ports, say).
    """
    home = Home.init(path, node_name=node_name, database_url=database_url, prompt=None, **init)
    home.create_scheme(GERMANY, actor=actor)
    home.create_root_ca(
        scheme="de",
        name="DE Industrial Root CA",
        slug=ROOT_CA,
        country="DE",
        organization="DE Industrial Trust Scheme",
        key=ca_key(),
        path_length=1,
        actor=actor,
    )
    home.create_issuing_ca(
        parent=ROOT_CA,
        name="Rheintal Trust Services Devices CA",
        slug=DEVICES_CA,
        country="DE",
        organization=TSP,
        kinds=(SubjectKind.MACHINE, SubjectKind.SOFTWARE),
        key=ca_key(),
        actor=actor,
    )
    return home


@contextmanager
def database(backend: str) -> Iterator[str | bool | None]:
    """The database URL for ``backend``: None for the home's SQLite file, a throwaway durable
    PostgreSQL cluster's URL, or False (after a clear message) where PostgreSQL cannot run."""
    if backend == SQLITE:
        yield None
        return
    from trustbridge._dev.postgres import PostgresCluster

    cluster: PostgresCluster | None = None
    try:
        # No server binaries: the helper raises its RuntimeError subclass.
        cluster = PostgresCluster(durable=True)
        cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if cluster is not None:
            cluster.stop()
        if in_ci():
            raise RuntimeError(f"PostgreSQL is required under CI=true: {exc}") from exc
        print(f"SKIP postgresql: cannot start a throwaway cluster ({exc})")
        yield False
        return
    try:
        yield cluster.url
    finally:
        cluster.stop()
