"""A test PKI of the reference scenario, built in code at a pinned time.

The German scheme ``de``: a P-384 root "DE Industrial Root CA" that certifies CAs only, an
issuing CA of "Rheintal Trust Services GmbH" for organizations and people (with roles) and one
for machines and software. Nothing here is committed as a blob: every key and certificate is
made fresh when a test asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from trustbridge import oids
from trustbridge.pki.ca import (
    CaLimits,
    CertificateAuthority,
    Endpoints,
    NameConstraintsSpec,
    build_root_certificate,
)
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
)
from trustbridge.pki.signers import FileSigner
from trustbridge.trust.reference import GERMANY

__all__ = [
    "AT",
    "BASE_URL",
    "DE_LEVELS",
    "IssuedIdentity",
    "ScenarioPki",
    "build_root",
    "build_scenario_pki",
    "certify_issuing_ca",
    "ca_name",
    "issue_identity",
    "machine_subject",
    "officer_subject",
    "organization_subject",
    "pem",
    "person_subject",
    "software_subject",
]

#: The pinned time every test PKI is built at.
AT = datetime(2026, 6, 1, tzinfo=UTC)
BASE_URL = "http://127.0.0.1:8080"
DE_LEVELS = tuple(level.oid for level in GERMANY.levels)

ROOT_LIFETIME = timedelta(days=20 * 365)
ISSUING_LIFETIME = timedelta(days=10 * 365)


@dataclass(frozen=True)
class IssuedIdentity:
    """An end-entity certificate and the private key that belongs to it."""

    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def signer(self) -> FileSigner:
        return FileSigner(self.key, source="test")


@dataclass(frozen=True)
class ScenarioPki:
    """The German scheme's root and its two issuing CAs."""

    root: CertificateAuthority
    #: Issues organizations and people, and may grant every role.
    people: CertificateAuthority
    #: Issues machines and software.
    devices: CertificateAuthority


def ca_name(common_name: str, *, organization: str = "Rheintal Trust Services GmbH") -> x509.Name:
    """A CA's distinguished name in the German scheme."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def build_root(
    *,
    common_name: str = "DE Industrial Root CA",
    slug: str = "de-root",
    at: datetime = AT,
    lifetime: timedelta = ROOT_LIFETIME,
    levels: tuple[x509.ObjectIdentifier, ...] = DE_LEVELS,
    path_length: int | None = 1,
) -> CertificateAuthority:
    """A self-signed P-384 root that certifies CAs only and may delegate every role."""
    signer = FileSigner(generate_private_key(KeyType.P384), source=slug)
    limits = CaLimits(levels=levels, roles=frozenset(Role), path_length=path_length)
    certificate = build_root_certificate(
        signer=signer,
        name=ca_name(common_name, organization="DE Industrial Trust Scheme"),
        limits=limits,
        at=at,
        lifetime=lifetime,
    )
    return CertificateAuthority(
        certificate=certificate,
        signer=signer,
        limits=limits,
        endpoints=Endpoints.for_ca(BASE_URL, slug),
    )


def certify_issuing_ca(
    parent: CertificateAuthority,
    *,
    common_name: str,
    slug: str,
    limits: CaLimits,
    at: datetime = AT,
    lifetime: timedelta = ISSUING_LIFETIME,
    key_type: KeyType = KeyType.P256,
    name_constraints: NameConstraintsSpec | None = None,
) -> CertificateAuthority:
    """A subordinate CA certified by ``parent`` with ``certify_ca``."""
    signer = FileSigner(generate_private_key(key_type), source=slug)
    certificate = parent.certify_ca(
        subject_name=ca_name(common_name),
        public_key=signer.public_key,
        limits=limits,
        at=at,
        lifetime=lifetime,
        name_constraints=name_constraints,
    )
    return CertificateAuthority(
        certificate=certificate,
        signer=signer,
        limits=limits,
        endpoints=Endpoints.for_ca(BASE_URL, slug),
        chain=(parent.certificate, *parent.chain),
    )


def build_scenario_pki(*, at: datetime = AT) -> ScenarioPki:
    """Root, people CA (organizations and people with all roles), devices CA."""
    root = build_root(at=at)
    people = certify_issuing_ca(
        root,
        common_name="Rheintal Trust Services People CA",
        slug="de-people",
        limits=CaLimits(
            levels=DE_LEVELS,
            kinds=frozenset({SubjectKind.ORGANIZATION, SubjectKind.PERSON}),
            roles=frozenset(Role),
        ),
        at=at,
    )
    devices = certify_issuing_ca(
        root,
        common_name="Rheintal Trust Services Devices CA",
        slug="de-devices",
        limits=CaLimits(
            levels=DE_LEVELS,
            kinds=frozenset({SubjectKind.MACHINE, SubjectKind.SOFTWARE}),
        ),
        at=at,
        key_type=KeyType.P384,
    )
    return ScenarioPki(root=root, people=people, devices=devices)


def issue_identity(
    ca: CertificateAuthority,
    subject: Subject,
    *,
    key_type: KeyType = KeyType.P256,
    level: x509.ObjectIdentifier = oids.DE_HIGH,
    at: datetime = AT,
    purpose: Purpose = Purpose.IDENTITY,
    lifetime: timedelta | None = None,
) -> IssuedIdentity:
    """A fresh key of ``key_type`` and a certificate for it from ``ca``."""
    key = generate_private_key(key_type)
    certificate = ca.issue(
        subject=subject,
        public_key=key.public_key(),
        level=level,
        at=at,
        purpose=purpose,
        lifetime=lifetime,
    )
    return IssuedIdentity(certificate=certificate, key=key)


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.PEM)


# -- subjects of the reference scenario --------------------------------------------------------


def organization_subject() -> OrganizationSubject:
    return OrganizationSubject(
        name="Muster Maschinenbau GmbH",
        country="DE",
        identifier="VATDE-123456789",
        locality="Stuttgart",
    )


def person_subject(*, roles: frozenset[Role] = frozenset()) -> PersonSubject:
    return PersonSubject(
        given_name="Erika",
        surname="Mustermann",
        country="DE",
        organization="Muster Maschinenbau GmbH",
        organization_identifier="VATDE-123456789",
        email="erika.mustermann@muster-maschinenbau.example",
        serial_number="PNODE-4711",
        roles=roles,
    )


def officer_subject() -> PersonSubject:
    """A registration officer of the TSP."""
    return PersonSubject(
        given_name="Jonas",
        surname="Becker",
        country="DE",
        organization="Rheintal Trust Services GmbH",
        organization_identifier="VATDE-987654321",
        email="jonas.becker@rheintal-trust.example",
        roles=frozenset({Role.REGISTRATION_OFFICER}),
    )


def machine_subject() -> MachineSubject:
    return MachineSubject(
        manufacturer="Muster Maschinenbau GmbH",
        model="MX-500 Press",
        serial_number="MX500-000042",
        country="DE",
        dns_names=("mx500-42.muster-maschinenbau.example",),
    )


def software_subject() -> SoftwareSubject:
    return SoftwareSubject(
        name="Line Controller",
        version="2.4.1",
        organization="Muster Maschinenbau GmbH",
        organization_identifier="VATDE-123456789",
        country="DE",
    )
