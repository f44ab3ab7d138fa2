"""The issuance path's shortcuts keep what it records: rows as SQLAlchemy stores them, log entries
as the certificate alone gives them, serial collisions retried, the credential's status read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, update

import trustbridge.home.home as home_module
import trustbridge.pki.ca as ca_module
from tests.home.test_home import count, issue_machine, issue_org
from tests.homes import MUSTER, NOW, PASSPHRASE_ENV, new_holder
from trustbridge.clock import FixedClock
from trustbridge.errors import DuplicateError, ValidationError
from trustbridge.home import EnrolmentProof, Home, KeySpec, ProductionBatch
from trustbridge.home.config import SecretSource
from trustbridge.home.log import certificate_entry
from trustbridge.home.records import RequestInfo
from trustbridge.ledger.entries import EntryKind, LogEntry
from trustbridge.pki.keys import KeyType
from trustbridge.store import tables as t
from trustbridge.trust.reference import GERMANY

from .conftest import Reference


def logged_certificates(home: Home) -> dict[str, dict[str, Any]]:
    """The bodies of the log's ``certificate.issued`` entries, by serial."""
    bodies = {}
    for _, data in home.log.entries(0, home.log.size):
        entry = LogEntry.from_bytes(data)
        if entry.kind is EntryKind.CERTIFICATE_ISSUED:
            bodies[entry.body["serial"]] = dict(entry.body)
    return bodies


def test_log_entries_are_what_the_certificate_alone_gives(ref: Reference) -> None:
    _, org = issue_org(ref)
    single = issue_machine(ref, org, "A-1").certificates[0]
    batch = ProductionBatch(
        ca="devices",
        manufacturer=MUSTER.name,
        model="AM-7",
        country="DE",
        serial_numbers=("B-1", "B-2", "B-3"),
        level="de-basic",
    )
    assert org.certificate is not None
    proof = EnrolmentProof.sign(org.certificate, org.signer, ref.home.batch_digest(batch))
    batched = [
        c for chunk, _ in ref.home.issue_machine_batch(batch, enrolment=proof) for c in chunk
    ]
    logged = logged_certificates(ref.home)
    for certificate in (single, *batched):
        # Computed from the certificate alone: its own DER encoding and decoded subject.
        expected = certificate_entry(certificate, ca="devices", kind="machine")
        assert logged[format(certificate.serial_number, "x")] == expected
    assert expected["subject"] == "CN=AM-7 B-3,2.5.4.5=B-3,O=Muster Maschinenbau GmbH,C=DE"


def test_a_repeated_serial_is_retried_and_the_first_attempt_leaves_nothing(
    ref: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, org = issue_org(ref)
    taken = issue_machine(ref, org, "A-1").certificates[0].serial_number
    fresh = ca_module.random_serial()
    serials = iter([taken, fresh])
    monkeypatch.setattr(ca_module, "random_serial", lambda: next(serials))
    requests, audit = count(ref.home, t.requests), count(ref.home, t.audit_events)
    result = issue_machine(ref, org, "A-2")
    assert result.certificates[0].serial_number == fresh
    assert count(ref.home, t.requests) == requests + 1
    assert count(ref.home, t.audit_events) == audit + 2  # submitted and issued, once each


def test_a_serial_that_stays_taken_stores_nothing(
    ref: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, org = issue_org(ref)
    taken = issue_machine(ref, org, "A-1").certificates[0].serial_number
    monkeypatch.setattr(ca_module, "random_serial", lambda: taken)
    before = [count(ref.home, table) for table in (t.requests, t.certificates, t.log_entries)]
    with pytest.raises(DuplicateError, match="could not be stored"):
        issue_machine(ref, org, "A-2")
    after = [count(ref.home, table) for table in (t.requests, t.certificates, t.log_entries)]
    assert after == before


def test_a_revoked_enrolment_credential_releases_nothing(ref: Reference) -> None:
    credential, org = issue_org(ref)
    issue_machine(ref, org, "A-1")  # valid a moment ago: its path check is cached
    with ref.home.engine.begin() as conn:
        conn.execute(
            update(t.certificates)
            .where(t.certificates.c.serial == format(credential.serial_number, "x"))
            .values(status="revoked")
        )
    before = [count(ref.home, table) for table in (t.requests, t.certificates, t.audit_events)]
    with pytest.raises(ValidationError, match="revoked"):
        issue_machine(ref, org, "A-2")
    after = [count(ref.home, table) for table in (t.requests, t.certificates, t.audit_events)]
    assert after == before


def test_pending_requests_are_listed_from_their_partial_index(ref: Reference) -> None:
    """Only pending requests are in the state index (migration 0009); the officers' list
    reads it, oldest first, and other states are still found."""
    home = ref.home
    _credential, org = issue_org(ref)
    issue_machine(ref, org, "B-1")  # released by its rule: stored issued, never pending
    first = home.submit_request(
        ca="ids", subject=MUSTER, level="de-high", csr_data=new_holder().csr()
    )
    second = home.submit_request(
        ca="ids", subject=MUSTER, level="de-high", csr_data=new_holder().csr()
    )
    assert isinstance(first, RequestInfo) and isinstance(second, RequestInfo)
    listed = home.requests(state="pending")
    assert [r.id for r in listed] == [first.id, second.id]
    assert all(r.state == "pending" for r in listed)
    issued = home.requests(state="issued")
    assert issued and all(r.state == "issued" for r in issued)
    assert {r.id for r in home.requests()} >= {r.id for r in (*listed, *issued)}

    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM requests" in statement:
            seen.append((statement, parameters))

    event.listen(home.engine, "before_cursor_execute", capture)
    try:
        home.requests(state="pending")
    finally:
        event.remove(home.engine, "before_cursor_execute", capture)
    assert seen, "no request query was run"
    statement, parameters = seen[-1]
    with home.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_requests_pending" in details, details


# -- prepared inserts store what SQLAlchemy stores ------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def bare_home(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Home]:
    """A home with one root CA (rows can refer to it), on each backend."""
    monkeypatch.setenv(PASSPHRASE_ENV, "prepared-inserts")
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    home = Home.init(tmp_path / "home", database_url=url, clock=FixedClock(NOW))
    home.create_scheme(GERMANY)
    home.create_root_ca(
        scheme="de",
        name="DE Industrial Root CA",
        slug="de-root",
        country="DE",
        key=KeySpec(KeyType.P256, secret=SecretSource(env=PASSPHRASE_ENV)),
    )
    yield home
    home.close()


def _stored(home: Home, table: Any, key: str, values: list[str], *, skip: set[str]) -> list[Any]:
    """Rows with ``key`` in ``values`` as the driver returns them (no conversion by
    SQLAlchemy's types on the way out), without the columns in ``skip``."""
    names = ", ".join(c.name for c in table.columns if c.name not in skip | {key})
    with home.engine.connect() as conn:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sql = f"SELECT {names} FROM {table.name} WHERE {key} = {mark}"  # noqa: S608
        return [tuple(conn.exec_driver_sql(sql, (value,)).one()) for value in values]


def test_prepared_inserts_store_what_sqlalchemy_stores(
    bare_home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = bare_home
    home.authority("de-root")
    ca_id = home._ca_ids["de-root"]
    # Aware times in another zone with microseconds, one repeated; JSON with non-ASCII text,
    # nesting, floats and null; binary; integers and NULLs.
    east = timezone(timedelta(hours=9))
    at = datetime(2026, 11, 26, 17, 30, 5, 123456, tzinfo=east)

    def request_row(prefix: str) -> dict[str, Any]:
        return {
            "id": f"{prefix}-request",
            "ca_id": ca_id,
            "kind": "machine",
            "purpose": "identity",
            "level_oid": "2.25.1",
            "subject": {"kind": "machine", "model": "Präzision 7", "ips": ["::1"], "uri": None},
            "csr_der": b"\x30\x82\x00\xff",
            "public_key_der": bytes(range(91)),
            "key_fingerprint": prefix * 32,
            "key_origin": "holder",
            "key_type": "p256",
            "lifetime_days": None,
            "batch_size": 1,
            "digest": "d" * 64,
            "state": "issued",
            "requested_by": "identity:abc",
            "requested_by_display": "CN=Muster Maschinenbau GmbH",
            "requested_at": at,
            "decided_by": "rule:enrolment-credential",
            "decided_by_display": "approval rule",
            "decided_at": at,
            "decision_rule": "enrolment-credential",
            "decision_reason": "released by rule",
            "renewal_of": None,
        }

    def certificate_row(prefix: str) -> dict[str, Any]:
        return {
            "ca_id": ca_id,
            "serial": prefix,
            "request_id": f"{prefix}-request",
            "kind": "machine",
            "purpose": "identity",
            "holder": "AM-7 Ä-1",
            "level_oid": "2.25.1",
            "not_before": at,
            "not_after": at + timedelta(days=365, microseconds=1),
            "key_fingerprint": prefix * 32,
            "fingerprint": prefix * 32,
            "der": bytes(range(256)) * 4,
            "key_origin": "holder",
            "issued_at": datetime(2026, 11, 26, 8, 30, 5, 123456, tzinfo=UTC),
            "issued_by": "rule:enrolment-credential",
            "renewal_of": None,
        }

    def audit_row(object_id: str) -> dict[str, Any]:
        return {
            "at": at,
            "actor": "rule:enrolment-credential",
            "actor_display": "approval rule enrolment-credential",
            "action": "certificate.issue",
            "object_type": "certificate",
            "object_id": object_id,
            "details": {"ca": "devices", "holder": "AM-7 Ä-1", "rule": None, "n": [1, 2.5]},
        }

    def store(prefix: str) -> None:
        with home._tx() as conn:
            home._insert(conn, t.requests, [request_row(prefix)])
            home._insert(conn, t.certificates, [certificate_row(prefix)])
            home._insert(conn, t.audit_events, [audit_row(f"{prefix}1"), audit_row(f"{prefix}2")])

    store("aa")  # prepared, on the transaction's cursor
    with home._tx() as conn:  # what SQLAlchemy itself stores
        conn.execute(insert(t.requests), request_row("bb"))
        conn.execute(insert(t.certificates), certificate_row("bb"))
        conn.execute(insert(t.audit_events), [audit_row("bb1"), audit_row("bb2")])
    monkeypatch.setattr(home_module, "_MARKS", {})  # a driver without a prepared form
    home._inserts.clear()
    store("cc")

    prefixes = ["aa", "bb", "cc"]
    requests = _stored(
        home, t.requests, "id", [f"{p}-request" for p in prefixes], skip={"key_fingerprint"}
    )
    certificates = _stored(
        home,
        t.certificates,
        "serial",
        prefixes,
        skip={"id", "request_id", "key_fingerprint", "fingerprint"},
    )
    objects = [f"{p}{n}" for p in prefixes for n in (1, 2)]
    audit = _stored(home, t.audit_events, "object_id", objects, skip={"id"})
    for rows in (requests, certificates, audit):
        assert all(row == rows[0] for row in rows), rows
    # Read back through the tables' types: aware UTC times, JSON as given.
    record = home.request("aa-request")
    assert record.requested_at == at
    assert record.requested_at.utcoffset() == timedelta(0)
    assert record.subject["model"] == "Präzision 7"


def test_driver_errors_surface_as_sqlalchemy_errors(bare_home: Home) -> None:
    """A constraint violation on a prepared insert is SQLAlchemy's IntegrityError (which the
    issuance path maps to its own errors), and the transaction is rolled back."""
    from sqlalchemy.exc import IntegrityError

    home = bare_home
    row = {
        "at": NOW,
        "actor": "local:x",
        "actor_display": "x",
        "action": "test",
        "object_type": "test",
        "object_id": None,  # NOT NULL
        "details": {},
    }
    before = count(home, t.audit_events)

    def store() -> None:
        with home._tx() as conn:
            home._insert(conn, t.audit_events, [{**row, "object_id": "fine"}])
            home._insert(conn, t.audit_events, [row])

    with pytest.raises(IntegrityError):
        store()
    assert count(home, t.audit_events) == before
