"""The storage layer on SQLite and on PostgreSQL (a throwaway cluster the tests start)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, inspect, select

from tests.homes import (
    MUSTER,
    PASSPHRASE,
    PASSPHRASE_ENV,
    Holder,
    build_reference_home,
    decide,
    issued,
    new_holder,
)
from trustbridge.errors import ApprovalError
from trustbridge.home import Home
from trustbridge.home.records import RequestInfo
from trustbridge.pki.keys import private_key_pem
from trustbridge.pki.release import Decision, sign_statement
from trustbridge.store import tables as t
from trustbridge.store.db import (
    HEAD_REVISION,
    _alembic_config,
    head_revision,
    migrate,
    schema_revision,
)

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Home, Holder]]:
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    home, officer = build_reference_home(tmp_path / "home", database_url=url)
    assert home.engine.dialect.name == ("sqlite" if url is None else "postgresql")
    yield home, officer
    home.close()


def test_schema_is_at_the_newest_migration(backend: tuple[Home, Holder]) -> None:
    home, _ = backend
    assert schema_revision(home.engine) == head_revision() == HEAD_REVISION


def test_a_database_behind_the_head_is_upgraded_on_open(backend: tuple[Home, Holder]) -> None:
    """Opening skips alembic only at exactly the head revision: anything else migrates."""
    from alembic import command

    home, _ = backend
    config = _alembic_config()
    with home.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")
    assert schema_revision(home.engine) == "0006"
    assert "log_entries" not in inspect(home.engine).get_table_names()
    migrate(home.engine)
    assert schema_revision(home.engine) == HEAD_REVISION
    assert "log_entries" in inspect(home.engine).get_table_names()
    # 0008: no index on holder; the status-change index is there (partial).
    indexes = {i["name"] for i in inspect(home.engine).get_indexes("certificates")}
    assert "ix_certificates_holder" not in indexes
    assert "ix_certificates_status_version" in indexes
    # 0009: the state index of requests holds the pending ones only.
    indexes = {i["name"] for i in inspect(home.engine).get_indexes("requests")}
    assert "ix_requests_state" not in indexes
    assert "ix_requests_pending" in indexes


def test_issuance_is_stored_with_aware_utc_times(backend: tuple[Home, Holder]) -> None:
    home, officer = backend
    pending = home.submit_request(
        ca="ids", subject=MUSTER, level="de-high", csr_data=new_holder().csr()
    )
    assert isinstance(pending, RequestInfo)
    certificate = issued(decide(home, pending.id, officer))
    record = home.certificate(format(certificate.serial_number, "x"))
    assert record.der == certificate.public_bytes(Encoding.DER)
    for value in (record.not_before, record.not_after, record.issued_at):
        assert isinstance(value, datetime)
        assert value.utcoffset() is not None and value.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert record.not_after == certificate.not_valid_after_utc
    assert home.request(pending.id).state == "issued"


def test_a_refused_decision_changes_nothing(backend: tuple[Home, Holder]) -> None:
    home, officer = backend
    pending = home.submit_request(
        ca="ids", subject=MUSTER, level="de-high", csr_data=new_holder().csr()
    )
    assert isinstance(pending, RequestInfo)
    statement = Decision(pending.id, "0" * 64, "approve", home.now())
    with pytest.raises(ApprovalError, match="different content"):
        home.decide(
            pending.id,
            decision=statement,
            signature=sign_statement(statement.payload(), officer.signer),
            officer=officer.certificate,  # type: ignore[arg-type]
        )
    assert home.request(pending.id).state == "pending"
    with home.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count())
                .select_from(t.certificates)
                .where(t.certificates.c.kind == "organization")
            ).scalar_one()
            == 0
        )


@pytest.mark.postgres
def test_concurrent_issuers_never_repeat_a_serial(postgres_url: str, tmp_path: Path) -> None:
    """Three processes issue production batches at once against one PostgreSQL database."""
    home, officer = build_reference_home(tmp_path / "home", database_url=postgres_url)
    holder = new_holder()
    pending = home.submit_request(ca="ids", subject=MUSTER, level="de-high", csr_data=holder.csr())
    assert isinstance(pending, RequestInfo)
    holder.certificate = issued(decide(home, pending.id, officer))
    credential = tmp_path / "credential.pem"
    credential.write_bytes(
        private_key_pem(holder.key) + holder.certificate.public_bytes(Encoding.PEM)
    )
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE, "PYTHONPATH": str(PROJECT)}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.store._worker",
                str(home.path),
                str(credential),
                f"W{n}",
                "150",
            ],
            cwd=PROJECT,
            env=env,
            stderr=subprocess.PIPE,
        )
        for n in range(3)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr.decode()
    machines = home.certificates(kind="machine")
    assert len(machines) == 450
    assert len({(m.ca, m.serial) for m in machines}) == 450
    assert len({m.holder for m in machines}) == 450
    home.close()
