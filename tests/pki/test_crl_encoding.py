"""CRLs as ``build_crl`` encodes them: byte for byte what cryptography's builder makes, and
accepted by cryptography and ``openssl crl``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki.pkifactory import AT, DE_LEVELS, ca_name
from tests.softhsm import SoftHsmToken
from tests.tools import openssl
from trustbridge.errors import InputError
from trustbridge.pki.ca import CaLimits, build_root_certificate, url_distribution_point
from trustbridge.pki.keys import KeyType, generate_private_key, hash_for
from trustbridge.pki.pkcs11 import Pkcs11KeyRef, generate_key
from trustbridge.pki.revocation import CertStatus, CrlSpec, Reason, StatusEntry, build_crl
from trustbridge.pki.signers import FileSigner

DELTA_URL = "http://127.0.0.1:8080/pki/devices/delta-crl"


@dataclass(frozen=True)
class Issuer:
    certificate: x509.Certificate
    signer: FileSigner


def _issuer(key_type: KeyType) -> Issuer:
    signer = FileSigner(generate_private_key(key_type), source=f"test-{key_type}")
    certificate = build_root_certificate(
        signer=signer,
        name=ca_name(f"CRL Test CA {key_type}"),
        limits=CaLimits(levels=DE_LEVELS, path_length=0),
        at=AT,
        lifetime=timedelta(days=365 * 40),  # past 2050, for the dates below
    )
    return Issuer(certificate, signer)


@pytest.fixture(scope="module")
def p256() -> Issuer:
    return _issuer(KeyType.P256)


def _reference_crl(issuer: Issuer, entries: Sequence[StatusEntry], spec: CrlSpec) -> bytes:
    """The CRL as cryptography's builders make it (how ``build_crl`` worked before)."""
    delta = spec.delta_base is not None
    revoked = []
    for entry in entries:
        if entry.status is CertStatus.GOOD:
            if not delta or entry.revoked_at is None:
                continue
            flag = x509.ReasonFlags.remove_from_crl
            builder = x509.RevokedCertificateBuilder(entry.serial, entry.revoked_at)
            revoked.append(builder.add_extension(x509.CRLReason(flag), critical=False).build())
            continue
        assert entry.revoked_at is not None
        builder = x509.RevokedCertificateBuilder(entry.serial, entry.revoked_at)
        reason = Reason.CERTIFICATE_HOLD if entry.status is CertStatus.ON_HOLD else entry.reason
        if reason is not None and reason is not Reason.UNSPECIFIED:
            builder = builder.add_extension(x509.CRLReason(reason.flag), critical=False)
        if entry.invalidity_date is not None:
            date = x509.InvalidityDate(entry.invalidity_date)
            builder = builder.add_extension(date, critical=False)
        revoked.append(builder.build())
    ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    builder_crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(spec.this_update)
        .next_update(spec.next_update)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value),
            critical=False,
        )
        .add_extension(x509.CRLNumber(spec.number), critical=False)
    )
    if delta:
        assert spec.delta_base is not None
        builder_crl = builder_crl.add_extension(
            x509.DeltaCRLIndicator(spec.delta_base), critical=True
        )
    if spec.delta_url and not delta:
        point = url_distribution_point(spec.delta_url)
        builder_crl = builder_crl.add_extension(x509.FreshestCRL([point]), critical=False)
    for item in revoked:
        builder_crl = builder_crl.add_revoked_certificate(item)
    key = issuer.signer.private_key
    crl = builder_crl.sign(key, hash_for(issuer.signer.key_type))
    return crl.public_bytes(Encoding.DER)


def _at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


#: Every reason, a held one, invalidity dates, serials around the octet boundaries, dates
#: around the UTCTime/GeneralizedTime boundary of 2050, a fraction of a second, another zone.
ENTRIES: tuple[StatusEntry, ...] = (
    StatusEntry(1, CertStatus.REVOKED, _at(2026, 5, 1, 8, 0, 0), Reason.UNSPECIFIED),
    StatusEntry(0x7F, CertStatus.REVOKED, _at(2026, 5, 1, 8, 0, 1), None),
    StatusEntry(0x80, CertStatus.REVOKED, _at(2026, 5, 1, 8, 0, 2), Reason.KEY_COMPROMISE),
    StatusEntry(0xFF, CertStatus.REVOKED, _at(2026, 5, 2), Reason.CA_COMPROMISE),
    StatusEntry(0x100, CertStatus.REVOKED, _at(2026, 5, 3), Reason.AFFILIATION_CHANGED),
    StatusEntry(0x8000, CertStatus.REVOKED, _at(2026, 5, 4), Reason.SUPERSEDED),
    StatusEntry(2**64 + 5, CertStatus.REVOKED, _at(2026, 5, 5), Reason.CESSATION_OF_OPERATION),
    StatusEntry(2**159 - 1, CertStatus.REVOKED, _at(2026, 5, 6), Reason.PRIVILEGE_WITHDRAWN),
    StatusEntry(2**158 + 77, CertStatus.REVOKED, _at(2026, 5, 7), Reason.AA_COMPROMISE),
    StatusEntry(0x5562AD6BA569D8F1, CertStatus.ON_HOLD, _at(2026, 5, 8), Reason.CERTIFICATE_HOLD),
    StatusEntry(
        0x1234567890ABCDEF1234,
        CertStatus.REVOKED,
        _at(2026, 5, 9, 10, 11, 12),
        Reason.KEY_COMPROMISE,
        invalidity_date=_at(2026, 4, 30, 23, 59, 59),
    ),
    StatusEntry(
        0xABCDEF,
        CertStatus.REVOKED,
        datetime(2026, 5, 10, 12, 30, 45, 987654, tzinfo=timezone(timedelta(hours=2))),
        Reason.UNSPECIFIED,
        invalidity_date=datetime(2026, 5, 1, 1, 2, 3, 456789, tzinfo=UTC),
    ),
    StatusEntry(0xA1, CertStatus.REVOKED, _at(2049, 12, 31, 23, 59, 59), Reason.SUPERSEDED),
    StatusEntry(0xA2, CertStatus.REVOKED, _at(2050, 1, 1, 0, 0, 0), Reason.SUPERSEDED),
    StatusEntry(
        0xA3,
        CertStatus.REVOKED,
        _at(2051, 2, 3, 4, 5, 6),
        Reason.KEY_COMPROMISE,
        invalidity_date=_at(2049, 12, 31, 23, 59, 59),
    ),
    StatusEntry(0xA4, CertStatus.REVOKED, _at(1950, 1, 1), Reason.SUPERSEDED),
    # A good one: left off a full CRL; released from hold in a delta CRL.
    StatusEntry(0xB1, CertStatus.GOOD, _at(2026, 5, 20)),
    # Good and never revoked: on no CRL.
    StatusEntry(0xB2, CertStatus.GOOD),
)

FULL = CrlSpec(number=7, this_update=AT, next_update=AT + timedelta(hours=24), delta_url=DELTA_URL)
DELTA = CrlSpec(
    number=8,
    this_update=AT,
    next_update=AT + timedelta(hours=24),
    delta_base=7,
    delta_url=DELTA_URL,
)


def _entries(crl: x509.CertificateRevocationList) -> list[tuple[int, datetime, list[object]]]:
    return [
        (
            r.serial_number,
            r.revocation_date_utc,
            [(e.oid, e.critical, e.value) for e in r.extensions],
        )
        for r in crl
    ]


@pytest.mark.parametrize(
    "key_type", [KeyType.P256, KeyType.P384, KeyType.ED25519, KeyType.RSA2048], ids=str
)
@pytest.mark.parametrize("spec", [FULL, DELTA], ids=["full", "delta"])
def test_the_encoding_is_the_builders(key_type: KeyType, spec: CrlSpec) -> None:
    issuer = _issuer(key_type)
    ours = x509.load_der_x509_crl(
        build_crl(issuer=issuer.certificate, signer=issuer.signer, entries=ENTRIES, spec=spec)
    )
    theirs = x509.load_der_x509_crl(_reference_crl(issuer, ENTRIES, spec))
    assert ours.tbs_certlist_bytes == theirs.tbs_certlist_bytes
    assert ours.signature_algorithm_oid == theirs.signature_algorithm_oid
    assert ours.is_signature_valid(issuer.signer.public_key)
    assert _entries(ours) == _entries(theirs)
    assert list(ours.extensions) == list(theirs.extensions)
    if key_type is not KeyType.P256 and key_type is not KeyType.P384:
        # Deterministic signatures (Ed25519, RSA PKCS#1 v1.5): the whole CRL is the same.
        assert ours.public_bytes(Encoding.DER) == theirs.public_bytes(Encoding.DER)


def test_entries_say_what_the_status_says(p256: Issuer) -> None:
    full = x509.load_der_x509_crl(
        build_crl(issuer=p256.certificate, signer=p256.signer, entries=ENTRIES, spec=FULL)
    )
    assert len(full) == len(ENTRIES) - 2  # the good ones are left off
    assert full.get_revoked_certificate_by_serial_number(0xB1) is None

    def reason(serial: int, crl: x509.CertificateRevocationList = full) -> x509.ReasonFlags | None:
        entry = crl.get_revoked_certificate_by_serial_number(serial)
        assert entry is not None
        try:
            return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            return None

    assert reason(1) is None  # RFC 5280 5.3.1: "unspecified" is left out
    assert reason(0x80) is x509.ReasonFlags.key_compromise
    assert reason(0x5562AD6BA569D8F1) is x509.ReasonFlags.certificate_hold
    compromised = full.get_revoked_certificate_by_serial_number(0x1234567890ABCDEF1234)
    assert compromised is not None
    invalidity = compromised.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == _at(2026, 4, 30, 23, 59, 59)
    other_zone = full.get_revoked_certificate_by_serial_number(0xABCDEF)
    assert other_zone is not None
    assert other_zone.revocation_date_utc == _at(2026, 5, 10, 10, 30, 45)  # UTC, whole seconds
    assert full.extensions.get_extension_for_class(x509.FreshestCRL).value[0].full_name == [
        x509.UniformResourceIdentifier(DELTA_URL)
    ]
    with pytest.raises(x509.ExtensionNotFound):
        full.extensions.get_extension_for_class(x509.DeltaCRLIndicator)

    delta = x509.load_der_x509_crl(
        build_crl(issuer=p256.certificate, signer=p256.signer, entries=ENTRIES, spec=DELTA)
    )
    assert len(delta) == len(ENTRIES) - 1  # the one never revoked is on neither
    assert reason(0xB1, delta) is x509.ReasonFlags.remove_from_crl
    indicator = delta.extensions.get_extension_for_oid(x509.DeltaCRLIndicator.oid)
    assert indicator.critical
    assert indicator.value == x509.DeltaCRLIndicator(7)
    with pytest.raises(x509.ExtensionNotFound):
        delta.extensions.get_extension_for_class(x509.FreshestCRL)


def test_times_switch_to_generalized_time_in_2050(p256: Issuer) -> None:
    spec = CrlSpec(number=1, this_update=_at(2049, 12, 31, 12), next_update=_at(2050, 1, 1, 12))
    entries = [StatusEntry(0xA2, CertStatus.REVOKED, _at(2050, 1, 1), Reason.SUPERSEDED)]
    der = build_crl(issuer=p256.certificate, signer=p256.signer, entries=entries, spec=spec)
    # RFC 5280 5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050.
    assert b"\x17\x0d491231120000Z" in der
    assert b"\x18\x0f20500101120000Z" in der
    assert b"\x18\x0f20500101000000Z" in der
    crl = x509.load_der_x509_crl(der)
    assert crl.last_update_utc == spec.this_update
    assert crl.next_update_utc == spec.next_update
    theirs = x509.load_der_x509_crl(_reference_crl(p256, entries, spec))
    assert crl.tbs_certlist_bytes == theirs.tbs_certlist_bytes


def test_an_empty_crl_has_no_list(p256: Issuer) -> None:
    good = [StatusEntry(0xB1, CertStatus.GOOD, _at(2026, 5, 20))]
    der = build_crl(issuer=p256.certificate, signer=p256.signer, entries=good, spec=FULL)
    crl = x509.load_der_x509_crl(der)
    assert len(crl) == 0
    # RFC 5280 5.1.2.6: absent, not an empty SEQUENCE.
    assert (
        crl.tbs_certlist_bytes
        == x509.load_der_x509_crl(_reference_crl(p256, good, FULL)).tbs_certlist_bytes
    )


def test_a_large_crl_takes_long_lengths(p256: Issuer) -> None:
    entries = [
        StatusEntry(2**150 + i, CertStatus.REVOKED, AT - timedelta(minutes=i), Reason.SUPERSEDED)
        for i in range(3000)
    ]
    der = build_crl(issuer=p256.certificate, signer=p256.signer, entries=entries, spec=FULL)
    crl = x509.load_der_x509_crl(der)
    assert len(crl) == 3000
    assert crl.is_signature_valid(p256.signer.public_key)
    assert (
        crl.tbs_certlist_bytes
        == x509.load_der_x509_crl(_reference_crl(p256, entries, FULL)).tbs_certlist_bytes
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (StatusEntry(0, CertStatus.REVOKED, AT), "serial 0 is not a positive number"),
        (StatusEntry(-5, CertStatus.REVOKED, AT), "serial -5 is not a positive number"),
        (StatusEntry(2**159, CertStatus.REVOKED, AT), "at most 20 octets"),
        (StatusEntry(0x42, CertStatus.REVOKED, None), "revoked serial 42 has no revocation time"),
        (StatusEntry(0x42, CertStatus.REVOKED, _at(1949, 12, 31)), "its dates start in 1950"),
    ],
)
def test_entries_a_crl_cannot_state_are_refused(
    p256: Issuer, entry: StatusEntry, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        build_crl(issuer=p256.certificate, signer=p256.signer, entries=[entry], spec=FULL)


@pytest.mark.parametrize("key_type", [KeyType.P256, KeyType.ED25519, KeyType.RSA2048], ids=str)
@pytest.mark.parametrize("spec", [FULL, DELTA], ids=["full", "delta"])
def test_openssl_verifies_the_crl(key_type: KeyType, spec: CrlSpec, tmp_path: Path) -> None:
    issuer = _issuer(key_type)
    der = build_crl(issuer=issuer.certificate, signer=issuer.signer, entries=ENTRIES, spec=spec)
    (tmp_path / "crl.der").write_bytes(der)
    (tmp_path / "ca.pem").write_bytes(issuer.certificate.public_bytes(Encoding.PEM))
    checked = openssl(
        "crl", "-inform", "DER", "-in", tmp_path / "crl.der", "-CAfile", tmp_path / "ca.pem"
    )
    assert checked.returncode == 0, checked.stderr
    assert "verify OK" in checked.stderr + checked.stdout
    text = openssl("crl", "-inform", "DER", "-in", tmp_path / "crl.der", "-noout", "-text")
    assert text.returncode == 0, text.stderr
    assert "Serial Number: 1234567890ABCDEF1234" in text.stdout
    assert "Certificate Hold" in text.stdout
    if spec.delta_base is not None:
        assert "Remove From CRL" in text.stdout


@pytest.mark.softhsm
@pytest.mark.parametrize("key_type", [KeyType.P256, KeyType.P384, KeyType.RSA2048], ids=str)
def test_a_token_signs_the_crl(
    softhsm_token: SoftHsmToken, key_type: KeyType, tmp_path: Path
) -> None:
    ref = Pkcs11KeyRef(
        module=softhsm_token.module, token=softhsm_token.label, label=f"crl-ca-{key_type}"
    )
    signer = generate_key(ref, key_type, softhsm_token.pin)
    certificate = build_root_certificate(
        signer=signer,
        name=ca_name(f"CRL Token CA {key_type}"),
        limits=CaLimits(levels=DE_LEVELS, path_length=0),
        at=AT,
        lifetime=timedelta(days=365 * 40),
    )
    der = build_crl(issuer=certificate, signer=signer, entries=ENTRIES, spec=FULL)
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(signer.public_key)
    assert len(crl) == len(ENTRIES) - 2
    (tmp_path / "crl.der").write_bytes(der)
    (tmp_path / "ca.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    checked = openssl(
        "crl", "-inform", "DER", "-in", tmp_path / "crl.der", "-CAfile", tmp_path / "ca.pem"
    )
    assert "verify OK" in checked.stderr + checked.stdout, checked.stderr
