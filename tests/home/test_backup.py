"""Backup and restore: the restored home serves the same CRLs and OCSP answers and can sign."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from tests.homes import NOW, issued, new_holder
from trustbridge.clock import FixedClock
from trustbridge.errors import DuplicateError, InputError, PassphraseError
from trustbridge.home import Home
from trustbridge.home.backup import backup_home, restore_home
from trustbridge.pki.profiles import MachineSubject
from trustbridge.pki.revocation import Reason

from .conftest import Reference

SECRET = b"backup passphrase of the test"


def _machine(home: Home, serial: str) -> x509.Certificate:
    return issued(
        home.submit_request(
            ca="devices",
            subject=MachineSubject(
                manufacturer="Rheintal", model="RX-1", serial_number=serial, country="DE"
            ),
            level="de-basic",
            csr_data=new_holder().csr(),
            enrolment_token=home.create_enrolment_token(organization="Rheintal"),
        )
    )


def _request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
    return builder.build().public_bytes(Encoding.DER)


@pytest.fixture
def populated(ref: Reference) -> tuple[Home, x509.Certificate, x509.Certificate]:
    home = ref.home
    good, bad = _machine(home, "B-1"), _machine(home, "B-2")
    home.status.revoke(format(bad.serial_number, "x"), reason=Reason.KEY_COMPROMISE)
    home.status.presign("devices")
    return home, good, bad


def test_restore_serves_the_same_status_and_keeps_signing(
    populated: tuple[Home, x509.Certificate, x509.Certificate], tmp_path: Path
) -> None:
    home, good, bad = populated
    archive = tmp_path / "rheintal.tbbackup"
    info = backup_home(home, archive, SECRET)
    assert info["rows"]["certificates"] == len(home.certificates())
    assert b"BEGIN" not in archive.read_bytes()  # encrypted, keys included
    issuer = home.authority("devices").certificate
    crl_before = home.status.latest_crl("devices").der
    answers = {c.serial_number: home.status.answer(_request(c, issuer)).der for c in (good, bad)}

    restored_path = tmp_path / "restored"
    restore_home(archive, restored_path, SECRET)
    restored = Home.open(restored_path, clock=FixedClock(NOW))
    try:
        assert restored.config.http_port == home.config.http_port
        assert restored.status.latest_crl("devices").der == crl_before
        for cert in (good, bad):
            assert restored.status.answer(_request(cert, issuer)).der == answers[cert.serial_number]
        assert [c.serial for c in restored.certificates()] == [
            c.serial for c in home.certificates()
        ]
        # The CA keys came along: the restored node issues and revokes.
        fresh = _machine(restored, "B-3")
        fresh.verify_directly_issued_by(issuer)
        restored.status.revoke(format(fresh.serial_number, "x"))
        actions = [e.action for e in restored.audit_events()]
        assert "home.restore" in actions
    finally:
        restored.close()
    assert "home.backup" in [e.action for e in home.audit_events()]


def test_a_sqlite_backup_restores_onto_postgresql(
    populated: tuple[Home, x509.Certificate, x509.Certificate],
    tmp_path: Path,
    postgres_url: str,
) -> None:
    home, good, _ = populated
    archive = tmp_path / "b.tbbackup"
    backup_home(home, archive, SECRET)
    restore_home(archive, tmp_path / "on-pg", SECRET, database_url=postgres_url)
    restored = Home.open(tmp_path / "on-pg", clock=FixedClock(NOW))
    try:
        assert restored.config.database_url == postgres_url
        assert restored.certificate(format(good.serial_number, "x")).status == "good"
        _machine(restored, "PG-1")  # sequences continue after the restored rows
    finally:
        restored.close()


def test_wrong_passphrase_tampering_and_refusals(
    populated: tuple[Home, x509.Certificate, x509.Certificate], tmp_path: Path
) -> None:
    home, _, _ = populated
    archive = tmp_path / "b.tbbackup"
    backup_home(home, archive, SECRET)
    with pytest.raises(DuplicateError, match="exists already"):
        backup_home(home, archive, SECRET)
    with pytest.raises(InputError, match="at least 12 characters"):
        backup_home(home, tmp_path / "short", b"short")
    with pytest.raises(PassphraseError, match="wrong passphrase, or the file was changed"):
        restore_home(archive, tmp_path / "x", b"not the passphrase!")
    assert not (tmp_path / "x").exists()
    data = bytearray(archive.read_bytes())
    data[-40] ^= 1
    tampered = tmp_path / "tampered"
    tampered.write_bytes(bytes(data))
    with pytest.raises(PassphraseError, match="changed"):
        restore_home(tampered, tmp_path / "y", SECRET)
    (tmp_path / "notes.txt").write_text("no backup")
    with pytest.raises(InputError, match="not a trustbridge backup"):
        restore_home(tmp_path / "notes.txt", tmp_path / "z", SECRET)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "file").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        restore_home(archive, occupied, SECRET)
