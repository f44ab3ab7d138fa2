"""Revocation in a home: status changes, CRLs (full and delta), OCSP answers, service keys."""

from __future__ import annotations

import base64
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.homes import NOW, issued, new_holder
from trustbridge.clock import FixedClock
from trustbridge.errors import InputError, NotFoundError, ReleaseError
from trustbridge.home import Home
from trustbridge.pki.profiles import MachineSubject
from trustbridge.pki.revocation import Reason

from .conftest import Reference

#: RFC 5019 clients identify certificates by SHA-1 CertIDs: a name, not a security hash.
SHA1 = hashes.SHA1()  # noqa: S303


def _machine(ref: Reference, serial: str = "SN-1") -> x509.Certificate:
    holder = new_holder()
    return issued(
        ref.home.submit_request(
            ca="devices",
            subject=MachineSubject(
                manufacturer="Rheintal", model="RX-1", serial_number=serial, country="DE"
            ),
            level="de-basic",
            csr_data=holder.csr(),
            enrolment_token=ref.home.create_enrolment_token(organization="Rheintal"),
        )
    )


def _request(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    algorithm: hashes.HashAlgorithm,
    nonce: bytes | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def _verify_response(der: bytes, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    (responder,) = response.certificates
    responder.verify_directly_issued_by(issuer)
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    key = responder.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert response.signature_hash_algorithm is not None
    key.verify(
        response.signature,
        response.tbs_response_bytes,
        ec.ECDSA(response.signature_hash_algorithm),
    )
    return response


@pytest.fixture
def devices_ca(ref: Reference) -> x509.Certificate:
    return ref.home.authority("devices").certificate


def test_revoke_is_recorded_audited_and_final(ref: Reference) -> None:
    cert = _machine(ref)
    serial = format(cert.serial_number, "x")
    info = ref.home.status.revoke(
        serial, reason=Reason.KEY_COMPROMISE, invalidity_date=NOW - timedelta(days=1)
    )
    assert info.status == "revoked"
    assert info.revocation_reason == "key-compromise"
    assert info.revoked_at == NOW
    assert info.invalidity_date == NOW - timedelta(days=1)
    actions = [e.action for e in ref.home.audit_events(object_id=serial)]
    assert "certificate.revoke" in actions
    with pytest.raises(ReleaseError, match="revoked already"):
        ref.home.status.revoke(serial, reason=Reason.SUPERSEDED)
    with pytest.raises(ReleaseError, match="revoked already"):
        ref.home.status.resume(serial)
    with pytest.raises(ReleaseError, match="revoked already"):
        ref.home.status.suspend(serial)
    good = format(_machine(ref, "SN-2").serial_number, "x")
    with pytest.raises(ReleaseError, match="not on hold"):
        ref.home.status.resume(good)
    ref.home.status.suspend(good)
    with pytest.raises(ReleaseError, match="only a good certificate"):
        ref.home.status.suspend(good)


def test_bad_revocations_name_the_problem(ref: Reference) -> None:
    cert = _machine(ref)
    serial = format(cert.serial_number, "x")
    with pytest.raises(NotFoundError, match="no certificate with serial abc123"):
        ref.home.status.revoke("abc123")
    with pytest.raises(InputError, match="in the future"):
        ref.home.status.revoke(serial, invalidity_date=NOW + timedelta(hours=1))
    with pytest.raises(InputError, match="certificate-hold is not a revocation reason"):
        ref.home.status.revoke(serial, reason=Reason.CERTIFICATE_HOLD)
    with pytest.raises(InputError, match="unknown revocation reason 'stolen'"):
        Reason.parse("stolen")
    assert ref.home.certificate(serial).status == "good"


def test_crls_full_and_delta_follow_every_change(
    ref: Reference, devices_ca: x509.Certificate
) -> None:
    status = ref.home.status
    first = status.issue_crls("devices")
    assert [c.delta for c in first] == [False]  # no base yet: a full CRL only
    held, revoked = _machine(ref, "SN-H"), _machine(ref, "SN-R")
    status.suspend(format(held.serial_number, "x"))
    status.revoke(format(revoked.serial_number, "x"), reason=Reason.CESSATION_OF_OPERATION)

    full = x509.load_der_x509_crl(status.latest_crl("devices").der)
    assert full.is_signature_valid(devices_ca.public_key())  # type: ignore[arg-type]
    number = full.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    entry = full.get_revoked_certificate_by_serial_number(revoked.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.cessation_of_operation
    hold = full.get_revoked_certificate_by_serial_number(held.serial_number)
    assert hold is not None
    hold_reason = hold.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert hold_reason is x509.ReasonFlags.certificate_hold
    assert full.next_update_utc == NOW + timedelta(hours=24)
    aki = full.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = devices_ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    freshest = full.extensions.get_extension_for_class(x509.FreshestCRL).value
    assert freshest[0].full_name == [
        x509.UniformResourceIdentifier("http://127.0.0.1:8080/pki/devices/delta-crl")
    ]

    status.resume(format(held.serial_number, "x"))
    full_after = x509.load_der_x509_crl(status.latest_crl("devices").der)
    assert full_after.get_revoked_certificate_by_serial_number(held.serial_number) is None
    delta_info = status.latest_crl("devices", delta=True)
    delta = x509.load_der_x509_crl(delta_info.der)
    indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
    assert indicator.crl_number == delta_info.base_number
    assert delta_info.number > number
    released = delta.get_revoked_certificate_by_serial_number(held.serial_number)
    assert released is not None
    assert (
        released.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.remove_from_crl
    )
    # A full and a delta CRL issued together share their number (RFC 5280 5.2.3).
    assert delta_info.number == status.latest_crl("devices").number


def test_ocsp_answers_good_then_revoked_without_a_refresh(
    ref: Reference, devices_ca: x509.Certificate
) -> None:
    cert = _machine(ref)
    status = ref.home.status
    for algorithm in (SHA1, hashes.SHA256()):
        answer = status.answer(_request(cert, devices_ca, algorithm=algorithm))
        response = _verify_response(answer.der, devices_ca)
        assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert response.hash_algorithm.name == algorithm.name
        assert answer.next_update == NOW + timedelta(hours=24)
        # Pre-signed: asking again costs no signature and gives the same bytes.
        assert status.answer(_request(cert, devices_ca, algorithm=algorithm)).der == answer.der

    status.revoke(format(cert.serial_number, "x"), reason=Reason.KEY_COMPROMISE)
    answer = status.answer(_request(cert, devices_ca, algorithm=SHA1))
    response = _verify_response(answer.der, devices_ca)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.key_compromise
    assert response.revocation_time_utc == NOW


def test_a_second_node_on_the_same_database_sees_the_revocation(
    ref: Reference, devices_ca: x509.Certificate
) -> None:
    cert = _machine(ref)
    request = _request(cert, devices_ca, algorithm=hashes.SHA256())
    other = Home.open(ref.home.path, clock=FixedClock(NOW))
    try:
        good = ocsp.load_der_ocsp_response(other.status.answer(request).der)
        assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
        ref.home.status.revoke(format(cert.serial_number, "x"))
        after = ocsp.load_der_ocsp_response(other.status.answer(request).der)
        assert after.certificate_status is ocsp.OCSPCertStatus.REVOKED
    finally:
        other.close()


def test_ocsp_nonce_unknown_unauthorized_and_malformed(
    ref: Reference, devices_ca: x509.Certificate
) -> None:
    cert = _machine(ref)
    status = ref.home.status
    nonce = os.urandom(16)
    answer = status.answer(_request(cert, devices_ca, algorithm=hashes.SHA256(), nonce=nonce))
    response = _verify_response(answer.der, devices_ca)
    assert not answer.cacheable
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce

    unknown = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(*status.responder("devices").hashes["sha1"], 12345, SHA1)
        .build()
        .public_bytes(Encoding.DER)
    )
    assert (
        _verify_response(status.answer(unknown).der, devices_ca).certificate_status
        is ocsp.OCSPCertStatus.UNKNOWN
    )
    foreign = _request(cert, cert, algorithm=SHA1)  # issuer hashes of no CA of ours
    assert (
        ocsp.load_der_ocsp_response(status.answer(foreign).der).response_status
        is ocsp.OCSPResponseStatus.UNAUTHORIZED
    )
    assert (
        ocsp.load_der_ocsp_response(status.answer(b"\x30\x03junk").der).response_status
        is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    # A request for this CA at another CA's URL is not answered either.
    assert (
        ocsp.load_der_ocsp_response(
            status.answer(_request(cert, devices_ca, algorithm=SHA1), ca="ids").der
        ).response_status
        is ocsp.OCSPResponseStatus.UNAUTHORIZED
    )


def test_presign_covers_every_certificate_and_export_writes_get_paths(
    ref: Reference, devices_ca: x509.Certificate, tmp_path: Path
) -> None:
    certs = [_machine(ref, f"SN-{i}") for i in range(3)]
    status = ref.home.status
    signed = status.presign("devices")
    assert signed == 2 * len(certs)  # SHA-1 and SHA-256 CertIDs
    assert status.presign("devices") == 0  # nothing due
    out = tmp_path / "export"
    written = status.export_ocsp(out)
    assert written >= 2 * len(certs)
    request = _request(certs[0], devices_ca, algorithm=SHA1)
    path = out / "devices" / "ocsp" / base64.b64encode(request).decode()
    assert path.read_bytes() == status.answer(request).der


def test_responder_certificate_is_renewed_before_it_expires(ref: Reference) -> None:
    first = ref.home.status.responder("devices").certificate
    assert first.not_valid_after_utc == NOW + timedelta(days=30)
    later = Home.open(ref.home.path, clock=FixedClock(NOW + timedelta(days=25)))
    try:
        renewed = later.status.responder("devices").certificate
        assert renewed.serial_number != first.serial_number
        same = Home.open(ref.home.path, clock=FixedClock(NOW + timedelta(days=1)))
        try:
            assert same.status.responder("devices").certificate.serial_number in {
                first.serial_number,
                renewed.serial_number,
            }
        finally:
            same.close()
    finally:
        later.close()


def test_the_delta_crl_reads_changed_certificates_through_their_index(ref: Reference) -> None:
    """The delta CRL's query lets SQLite use the partial index of changed certificates
    (status_version > 0) instead of scanning every certificate of the CA."""
    from sqlalchemy import event

    status = ref.home.status
    status.issue_crls("devices")
    status.revoke(format(_machine(ref, "SN-IX").serial_number, "x"))
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "status_version >" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = ref.home.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        made = status.issue_crls("devices")
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert any(c.delta for c in made)
    assert seen, "no delta query was run"
    statement, parameters = seen[-1]
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_certificates_status_version" in details, details
