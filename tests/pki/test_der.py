"""Certificates the CA puts together from DER: the same bytes as CertificateBuilder writes.

The CA composes an end-entity certificate from DER pieces (``trustbridge.pki.der``) once the
first certificate of an extension set, built both ways, came out the same. These tests hold
the pieces and the whole against ``cryptography`` and ``asn1crypto`` on many inputs, check
that composed certificates verify (also with the ``openssl`` command, in test_ca.py), and that
a disagreement falls back to the builder.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import core as asn1
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pki.pkifactory import (
    AT,
    build_root,
    certify_issuing_ca,
    issue_identity,
    machine_subject,
    organization_subject,
    person_subject,
    software_subject,
)
from trustbridge import oids
from trustbridge.errors import InputError
from trustbridge.pki import der
from trustbridge.pki.ca import CaLimits, CertificateAuthority
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.profiles import (
    MachineSubject,
    OrganizationSubject,
    PersonSubject,
    Purpose,
    Role,
    SoftwareSubject,
    Subject,
    SubjectKind,
    profile_for,
)

# -- the pieces ------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**200))
def test_integer_is_the_der_of_asn1crypto(value: int) -> None:
    assert der.integer(value) == asn1.Integer(value).dump()


def test_negative_integer_is_refused() -> None:
    with pytest.raises(InputError, match="negative"):
        der.integer(-1)


@given(st.binary(max_size=70_000))
def test_lengths_are_definite_and_minimal(content: bytes) -> None:
    assert der.tlv(0x04, content) == asn1.OctetString(content).dump()


@given(
    st.datetimes(
        min_value=datetime(1950, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.just(UTC),
    )
)
def test_time_is_utctime_until_2049_then_generalized(value: datetime) -> None:
    encoded = der.time(value)
    whole = value.replace(microsecond=0)
    if value.year < 2050:
        assert encoded == asn1.UTCTime(whole).dump()
    else:
        assert encoded == asn1.GeneralizedTime(whole).dump(force=True)


def test_time_without_zone_is_utc_and_before_1950_is_refused() -> None:
    assert der.time(datetime(2030, 1, 1)) == der.time(datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(InputError, match="its dates start in 1950"):
        der.time(datetime(1949, 12, 31, 23, 59, tzinfo=UTC))


@pytest.mark.parametrize("key_type", list(KeyType))
def test_key_identifier_is_cryptographys(key_type: KeyType) -> None:
    public_key = generate_private_key(key_type).public_key()
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    expected = x509.Extension(
        x509.SubjectKeyIdentifier.oid, False, x509.SubjectKeyIdentifier.from_public_key(public_key)
    )
    assert der.key_identifier_extension(spki) == der.extension(expected.value)
    assert der.extension(expected.value) == _extension_der(expected)


@pytest.mark.parametrize(
    "value",
    [
        x509.BasicConstraints(ca=False, path_length=None),
        x509.KeyUsage(True, True, False, False, False, False, False, False, False),
        x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
        x509.CertificatePolicies([x509.PolicyInformation(oids.DE_HIGH, None)]),
    ],
)
@pytest.mark.parametrize("critical", [True, False])
def test_extensions_are_cryptographys(value: x509.ExtensionType, critical: bool) -> None:
    expected = x509.Extension(value.oid, critical, value)
    assert der.extension(value, critical=critical) == _extension_der(expected)


@pytest.mark.parametrize(
    "spki",
    [b"", b"\x30", b"\x04\x00", b"\x30\x03\x02\x01\x00", b"\x30\x05\x30\x00\x03\x01\x01"],
)
def test_a_broken_public_key_info_is_refused(spki: bytes) -> None:
    with pytest.raises(InputError):
        der.subject_public_key(spki)


def _extension_der(extension: x509.Extension[x509.ExtensionType]) -> bytes:
    """The extension as it appears in a certificate cryptography builds."""
    key = generate_private_key(KeyType.P256)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(AT)
        .not_valid_after(AT + timedelta(days=1))
        .add_extension(extension.value, critical=extension.critical)
        .sign(key, hashes.SHA256())
    )
    tbs = asn1_x509.TbsCertificate.load(certificate.tbs_certificate_bytes)
    return bytes(tbs["extensions"][0].dump())


# -- subject names ---------------------------------------------------------------------------

#: Text with the characters RFC 4514 escapes, non-ASCII letters and inner spaces.
_TEXT = st.text(
    alphabet=st.sampled_from(list('abcXYZ019 #+,;<>"\\=äßé日本-.')), min_size=1, max_size=30
).filter(lambda s: s.strip() != "")
#: X.520 serial numbers are PrintableStrings (with some characters RFC 4514 escapes).
_SERIAL = st.text(
    alphabet=st.sampled_from(list("AZaz09 '()+,-./:=?")), min_size=1, max_size=20
).filter(lambda s: s.strip() != "")
_COUNTRY = st.sampled_from(["DE", "JP", "FR"])
_ORG_ID = st.sampled_from(["VATDE-123456789", "NTRJP-1234567890123", "LEIXG-5299ABC"])


def _subjects() -> st.SearchStrategy[Subject]:
    organizations = st.builds(
        OrganizationSubject,
        name=_TEXT,
        country=_COUNTRY,
        identifier=_ORG_ID,
        locality=st.none() | _TEXT,
    )
    people = st.builds(
        PersonSubject,
        given_name=_TEXT,
        surname=_TEXT,
        country=_COUNTRY,
        organization=_TEXT,
        organization_identifier=st.none() | _ORG_ID,
        serial_number=st.none() | _SERIAL,
        roles=st.frozensets(st.sampled_from(list(Role))),
    )
    machines = st.builds(
        MachineSubject, manufacturer=_TEXT, model=_TEXT, serial_number=_SERIAL, country=_COUNTRY
    )
    software = st.builds(
        SoftwareSubject,
        name=_TEXT,
        version=st.sampled_from(["1.0", "2.4.1-rc1"]),
        organization=_TEXT,
        organization_identifier=_ORG_ID,
        country=_COUNTRY,
    )
    return organizations | people | machines | software


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(_subjects())
def test_subject_name_der_and_rfc4514_are_cryptographys(subject: Subject) -> None:
    name = subject.x509_name()
    assert subject.name_der() == name.public_bytes()
    assert subject.dn == name.rfc4514_string()


def test_subject_with_special_characters() -> None:
    subject = OrganizationSubject(
        name='#1 "Werk", Teil+Sohn; <a>\\b', country="DE", identifier="VATDE-123456789"
    )
    assert subject.dn == subject.x509_name().rfc4514_string()
    assert subject.dn.startswith('CN=\\#1 \\"Werk\\"\\, Teil\\+Sohn\\; \\<a\\>\\\\b')


# -- alternative names -----------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_GENERAL_NAMES = st.one_of(
    st.builds(lambda ls: x509.DNSName(".".join(ls)), st.lists(_LABEL, min_size=1, max_size=4)),
    st.builds(lambda u, h: x509.RFC822Name(f"{u}@{h}.example"), _LABEL, _LABEL),
    st.builds(lambda p: x509.UniformResourceIdentifier(f"urn:x:{p}"), _LABEL),
    st.builds(x509.IPAddress, st.ip_addresses()),
    st.builds(
        lambda serial: x509.OtherName(
            oids.ID_ON_HARDWARE_MODULE_NAME,
            der.sequence(der.oid(oids.ID_ON_HARDWARE_MODULE_NAME), der.tlv(0x04, serial)),
        ),
        st.binary(min_size=1, max_size=300),
    ),
    st.builds(
        lambda text: x509.DirectoryName(
            x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, text)])
        ),
        _TEXT,
    ),
)


def _san_der(names: list[x509.GeneralName]) -> bytes:
    return _extension_der(
        x509.Extension(
            x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
            False,
            x509.SubjectAlternativeName(names),
        )
    )


@settings(max_examples=300)
@given(st.lists(_GENERAL_NAMES, min_size=1, max_size=8))
def test_subject_alt_names_are_cryptographys(names: list[x509.GeneralName]) -> None:
    assert der.subject_alt_name_extension(names) == _san_der(names)


def test_alternatives_the_writer_leaves_to_cryptography_are_still_written() -> None:
    names: list[x509.GeneralName] = [
        x509.DNSName("a.example"),
        x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
        x509.IPAddress(ipaddress.ip_network("192.0.2.0/24")),
    ]
    assert der.subject_alt_name_extension(names) == _san_der(names)


@pytest.mark.parametrize(
    "subject",
    [
        MachineSubject(
            manufacturer="Hayashi Seiki",
            model="HS-7",
            serial_number="A-1",
            country="JP",
            application_uri="urn:hayashi:hs7:a1",
            dns_names=("hs7-a1.hayashi.example",),
            ip_addresses=("192.0.2.7", "2001:db8::7"),
        ),
        MachineSubject(manufacturer="M", model="X", serial_number="1", country="DE"),
        PersonSubject(
            given_name="Erika",
            surname="Muster",
            country="DE",
            organization="Werk",
            email="erika@werk.example",
        ),
        SoftwareSubject(
            name="mes",
            version="2.1",
            organization="Werk",
            organization_identifier="VATDE-123456789",
            country="DE",
            dns_names=("mes.werk.example",),
        ),
    ],
    ids=["machine-all", "machine", "person", "software"],
)
def test_subjects_alt_names_der_is_cryptographys(subject: Subject) -> None:
    assert subject.alt_names_der() == _san_der(subject.alt_names())


@pytest.mark.parametrize("value", [b"\x04\x05ab", b"\x04\x01a\x04\x01b", b""])
def test_an_other_name_that_is_not_one_der_element_is_refused(value: bytes) -> None:
    """Not written as given: left to cryptography, which refuses it as the builder would."""
    name = x509.OtherName(oids.ID_ON_HARDWARE_MODULE_NAME, value)
    with pytest.raises(ValueError, match="valid DER"):
        x509.SubjectAlternativeName([name]).public_bytes()
    with pytest.raises(ValueError, match="valid DER"):
        der.subject_alt_name_extension([name])


def test_subject_without_alt_names_has_no_extension() -> None:
    subject = OrganizationSubject(name="Werk", country="DE", identifier="VATDE-123456789")
    assert subject.alt_names() == []
    assert subject.alt_names_der() == b""


# -- whole certificates ----------------------------------------------------------------------


def _ca(key_type: KeyType) -> CertificateAuthority:
    root = build_root()
    return certify_issuing_ca(
        root,
        common_name=f"Composition {key_type.value} CA",
        slug=f"compose-{key_type.value}",
        limits=CaLimits(
            levels=(oids.DE_HIGH,), kinds=frozenset(SubjectKind), roles=frozenset(Role)
        ),
        key_type=key_type,
    )


_SUBJECTS: dict[str, tuple[Subject, KeyType]] = {
    "organization": (organization_subject(), KeyType.P256),
    "person": (person_subject(roles=frozenset({Role.AUTHORIZED_SIGNATORY})), KeyType.ED25519),
    "machine": (machine_subject(), KeyType.RSA2048),
    "software": (software_subject(), KeyType.P384),
}


@pytest.mark.parametrize("ca_key", [KeyType.P256, KeyType.P384, KeyType.ED25519, KeyType.RSA3072])
@pytest.mark.parametrize("case", list(_SUBJECTS))
def test_composed_certificate_is_the_builders(ca_key: KeyType, case: str) -> None:
    ca = _ca(ca_key)
    subject, key_type = _SUBJECTS[case]
    first = issue_identity(ca, subject, key_type=key_type)
    # After the first certificate of the set (built both ways and compared), the CA composes.
    assert list(ca._composed.values()) == [True]
    key = generate_private_key(key_type)
    certificate, encoded = ca.issue_encoded(
        subject=subject, public_key=key.public_key(), level=oids.DE_HIGH, at=AT, serial=4711
    )
    assert encoded == certificate.public_bytes(Encoding.DER)
    certificate.verify_directly_issued_by(ca.certificate)
    # The builder, given the same certificate's fields, writes the same tbsCertificate.
    template = ca._template(
        subject,
        profile_for(subject.kind, Purpose.IDENTITY),
        key_type,
        oids.DE_HIGH,
        AT,
        certificate.not_valid_after_utc,
    )
    built = ca._build(template, subject, key.public_key(), 4711)
    assert built.tbs_certificate_bytes == certificate.tbs_certificate_bytes
    # And it carries the extensions of the first (built) certificate, with its own key's SKI.
    assert [(e.oid, e.critical) for e in certificate.extensions] == [
        (e.oid, e.critical) for e in first.certificate.extensions
    ]
    assert certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value == x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def test_many_composed_certificates_are_distinct_and_valid() -> None:
    ca = _ca(KeyType.P256)
    subjects = [
        MachineSubject(
            manufacturer="Fuji Präzision", model="FX-9", serial_number=f"S{i}", country="JP"
        )
        for i in range(20)
    ]
    keys = [generate_private_key(KeyType.P256).public_key() for _ in subjects]
    issued = ca.issue_many(subjects=subjects, public_keys=keys, level=oids.DE_HIGH, at=AT)
    assert list(ca._composed.values()) == [True]
    serials = set()
    for subject, key, (certificate, encoded) in zip(subjects, keys, issued, strict=True):
        assert x509.load_der_x509_certificate(encoded) == certificate
        certificate.verify_directly_issued_by(ca.certificate)
        assert certificate.subject == subject.x509_name()
        assert certificate.public_key() == key
        serials.add(certificate.serial_number)
    assert len(serials) == len(subjects)


def test_a_disagreement_with_the_builder_falls_back_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = _ca(KeyType.P256)
    # A composition that differs from the builder's (here: a wrong subject encoding).
    monkeypatch.setattr(MachineSubject, "name_der", lambda self: b"\x30\x00")
    _assert_the_builder_issues(ca)


def test_a_signature_that_does_not_verify_keeps_the_builder() -> None:
    ca = _ca(KeyType.P256)
    # A signer whose composed signatures would not verify with the CA's key.
    key = ca.signer.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    ca.__dict__["_sign_tbs"] = lambda data: key.sign(data + b"x", ec.ECDSA(hashes.SHA256()))
    _assert_the_builder_issues(ca)


def _assert_the_builder_issues(ca: CertificateAuthority) -> None:
    """The CA gave up composing its machine certificates, and still issues valid ones."""
    first = issue_identity(ca, machine_subject())
    assert list(ca._composed.values()) == [False]
    second = issue_identity(ca, machine_subject())
    for issued in (first, second):
        issued.certificate.verify_directly_issued_by(ca.certificate)
        assert issued.certificate.subject == machine_subject().x509_name()
