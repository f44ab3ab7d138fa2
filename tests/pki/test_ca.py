"""Certificate authorities: root and subordinate CAs, issuance, limits, and openssl interop."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from tests.pki.pkifactory import (
    AT,
    BASE_URL,
    DE_LEVELS,
    IssuedIdentity,
    ScenarioPki,
    build_root,
    build_scenario_pki,
    certify_issuing_ca,
    issue_identity,
    machine_subject,
    organization_subject,
    pem,
    person_subject,
    software_subject,
)
from trustbridge import oids
from trustbridge.errors import InputError, LimitError, ProfileError
from trustbridge.pki.ca import (
    CaLimits,
    CertificateAuthority,
    Endpoints,
    NameConstraintsSpec,
    certificate_fingerprint,
    key_fingerprint,
    random_serial,
)
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.profiles import (
    MachineSubject,
    OrganizationSubject,
    PersonSubject,
    Purpose,
    Role,
    Subject,
    SubjectKind,
    profile_for,
    roles_of,
    subject_kind_of,
)

_E = TypeVar("_E", bound=x509.ExtensionType)

PERSON_ROLES = frozenset({Role.REGISTRATION_OFFICER, Role.OPERATOR})


@dataclass(frozen=True)
class LeafCase:
    """One end-entity certificate to issue from the scenario PKI."""

    ca: str  # "people" or "devices"
    subject: Subject
    key_type: KeyType
    purpose: Purpose = Purpose.IDENTITY


LEAF_CASES = {
    "organization": LeafCase("people", organization_subject(), KeyType.P256),
    "person": LeafCase("people", person_subject(roles=PERSON_ROLES), KeyType.ED25519),
    "machine-rsa": LeafCase("devices", machine_subject(), KeyType.RSA2048),
    "machine-ec": LeafCase("devices", machine_subject(), KeyType.P384),
    "software": LeafCase("devices", software_subject(), KeyType.P256),
    "organization-key-agreement": LeafCase(
        "people", organization_subject(), KeyType.P256, Purpose.KEY_AGREEMENT
    ),
}
CASE_NAMES = list(LEAF_CASES)

EXPECTED_EKU = {
    SubjectKind.ORGANIZATION: [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
    SubjectKind.PERSON: [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION],
    SubjectKind.MACHINE: [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
    SubjectKind.SOFTWARE: [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
}


def _issuer(pki: ScenarioPki, name: str) -> CertificateAuthority:
    ca: CertificateAuthority = getattr(pki, name)
    return ca


@pytest.fixture(scope="module")
def pki() -> ScenarioPki:
    return build_scenario_pki()


@pytest.fixture(scope="module")
def leaves(pki: ScenarioPki) -> dict[str, IssuedIdentity]:
    """One certificate of each case as the CA issues all but the first of a kind: put
    together from DER (the first is built by CertificateBuilder as well and compared)."""
    issued = {}
    for name, case in LEAF_CASES.items():
        ca = _issuer(pki, case.ca)
        for _ in range(2):
            issued[name] = issue_identity(
                ca, case.subject, key_type=case.key_type, purpose=case.purpose
            )
    for ca in (pki.people, pki.devices):
        assert ca._composed and all(ca._composed.values())
    return issued


@pytest.fixture(scope="module")
def restricted_ca(pki: ScenarioPki) -> CertificateAuthority:
    """A CA for people at the basic level only, which may grant the operator role only."""
    return certify_issuing_ca(
        pki.root,
        common_name="Rheintal Trust Services Operators CA",
        slug="de-operators",
        limits=CaLimits(
            levels=(oids.DE_BASIC,),
            kinds=frozenset({SubjectKind.PERSON}),
            roles=frozenset({Role.OPERATOR}),
        ),
        lifetime=timedelta(days=365),
    )


@pytest.fixture(scope="module")
def constrained_ca(pki: ScenarioPki) -> CertificateAuthority:
    """A CA for German organizations and people only, under RFC 5280 name constraints."""
    return certify_issuing_ca(
        pki.root,
        common_name="Rheintal Trust Services DE-only CA",
        slug="de-only",
        limits=CaLimits(levels=DE_LEVELS, kinds=frozenset({SubjectKind.ORGANIZATION})),
        name_constraints=NameConstraintsSpec(permitted_dn=("C=DE",)),
    )


def _ext(certificate: x509.Certificate, kind: type[_E]) -> x509.Extension[_E]:
    return certificate.extensions.get_extension_for_class(kind)


def _policy_oids(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return [p.policy_identifier for p in _ext(certificate, x509.CertificatePolicies).value]


# -- the CA hierarchy --------------------------------------------------------------------------


def test_root_is_self_signed_p384_ca_with_level_policies(pki: ScenarioPki) -> None:
    root = pki.root.certificate
    assert root.subject == root.issuer
    root.verify_directly_issued_by(root)
    assert KeyType.of(root.public_key()) is KeyType.P384
    constraints = _ext(root, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 1
    usage = _ext(root, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert _policy_oids(root)[: len(DE_LEVELS)] == list(DE_LEVELS)
    assert set(_policy_oids(root)[len(DE_LEVELS) :]) == {r.oid for r in Role}
    assert root.not_valid_before_utc == AT
    with pytest.raises(x509.ExtensionNotFound):
        root.extensions.get_extension_for_oid(oids.EXT_ISSUABLE_KINDS)


@pytest.mark.parametrize("name", ["people", "devices"])
def test_issuing_cas_are_certified_by_the_root(pki: ScenarioPki, name: str) -> None:
    ca = _issuer(pki, name)
    certificate = ca.certificate
    certificate.verify_directly_issued_by(pki.root.certificate)
    assert certificate.issuer == pki.root.certificate.subject
    assert _ext(certificate, x509.BasicConstraints).value.path_length == 0
    assert (
        _ext(certificate, x509.AuthorityKeyIdentifier).value.key_identifier
        == _ext(pki.root.certificate, x509.SubjectKeyIdentifier).value.digest
    )
    crl_dp = _ext(certificate, x509.CRLDistributionPoints).value
    full_name = crl_dp[0].full_name
    assert full_name is not None
    assert full_name[0].value == f"{BASE_URL}/pki/de-root/crl"
    assert subject_kind_of(certificate) is None
    assert ca.chain == (pki.root.certificate,)


def test_limits_read_back_from_subordinate_ca_certificates(pki: ScenarioPki) -> None:
    people = CaLimits.from_certificate(pki.people.certificate)
    assert people == pki.people.limits
    assert people.kinds == {SubjectKind.ORGANIZATION, SubjectKind.PERSON}
    assert people.levels == DE_LEVELS
    assert people.roles == frozenset(Role)
    assert people.path_length == 0
    devices = CaLimits.from_certificate(pki.devices.certificate)
    assert devices.kinds == {SubjectKind.MACHINE, SubjectKind.SOFTWARE}
    assert devices.roles == frozenset()
    root = CaLimits.from_certificate(pki.root.certificate)
    assert root == CaLimits(levels=DE_LEVELS, roles=frozenset(Role), path_length=1)


def test_limits_from_an_end_entity_certificate_are_refused(
    leaves: dict[str, IssuedIdentity],
) -> None:
    with pytest.raises(InputError, match="is not a CA certificate"):
        CaLimits.from_certificate(leaves["organization"].certificate)


def test_ca_limits_validate_on_construction() -> None:
    with pytest.raises(InputError, match="at least one assurance level"):
        CaLimits(levels=())
    with pytest.raises(InputError, match="only a CA that issues person identities"):
        CaLimits(
            levels=DE_LEVELS,
            kinds=frozenset({SubjectKind.MACHINE}),
            roles=frozenset({Role.OPERATOR}),
        )
    with pytest.raises(InputError, match="path length -1 must not be negative"):
        CaLimits(levels=DE_LEVELS, path_length=-1)


def test_policy_oids_are_levels_then_sorted_roles() -> None:
    limits = CaLimits(levels=DE_LEVELS, kinds=frozenset({SubjectKind.PERSON}), roles=PERSON_ROLES)
    role_oids = sorted((r.oid for r in PERSON_ROLES), key=lambda o: o.dotted_string)
    assert limits.policy_oids == (*DE_LEVELS, *role_oids)


# -- end-entity certificates -------------------------------------------------------------------


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_leaf_is_signed_by_its_issuing_ca(
    pki: ScenarioPki, leaves: dict[str, IssuedIdentity], case_name: str
) -> None:
    case = LEAF_CASES[case_name]
    issuer = _issuer(pki, case.ca).certificate
    leaf = leaves[case_name].certificate
    assert leaf.issuer == issuer.subject
    leaf.verify_directly_issued_by(issuer)
    assert leaf.subject == case.subject.x509_name()
    assert subject_kind_of(leaf) is case.subject.kind
    assert KeyType.of(leaf.public_key()) is case.key_type
    constraints = _ext(leaf, x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_leaf_carries_the_level_policy(leaves: dict[str, IssuedIdentity], case_name: str) -> None:
    subject = LEAF_CASES[case_name].subject
    leaf = leaves[case_name].certificate
    policies = _policy_oids(leaf)
    assert policies[0] == oids.DE_HIGH
    expected_roles = subject.roles if isinstance(subject, PersonSubject) else frozenset()
    assert set(policies[1:]) == {r.oid for r in expected_roles}
    assert roles_of(leaf) == expected_roles
    if case_name == "person":
        assert expected_roles == PERSON_ROLES


@pytest.mark.parametrize("level", DE_LEVELS)
def test_leaf_is_issued_at_the_requested_level(
    pki: ScenarioPki, level: x509.ObjectIdentifier
) -> None:
    identity = issue_identity(pki.people, organization_subject(), level=level)
    assert _policy_oids(identity.certificate) == [level]


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_leaf_key_usage_and_eku_fit_the_profile(
    leaves: dict[str, IssuedIdentity], case_name: str
) -> None:
    case = LEAF_CASES[case_name]
    leaf = leaves[case_name].certificate
    usage = _ext(leaf, x509.KeyUsage)
    assert usage.critical
    profile = profile_for(case.subject.kind, case.purpose)
    assert usage.value == profile.key_usage_extension(case.key_type)
    assert not usage.value.key_cert_sign
    assert not usage.value.crl_sign
    if case.purpose is Purpose.KEY_AGREEMENT:
        assert usage.value.key_agreement
        assert not usage.value.digital_signature
        with pytest.raises(x509.ExtensionNotFound):
            leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    else:
        assert usage.value.digital_signature
        assert list(_ext(leaf, x509.ExtendedKeyUsage).value) == EXPECTED_EKU[case.subject.kind]


def test_rsa_machine_key_also_enciphers(leaves: dict[str, IssuedIdentity]) -> None:
    rsa_usage = _ext(leaves["machine-rsa"].certificate, x509.KeyUsage).value
    assert rsa_usage.key_encipherment
    assert rsa_usage.data_encipherment
    ec_usage = _ext(leaves["machine-ec"].certificate, x509.KeyUsage).value
    assert not ec_usage.key_encipherment
    assert not ec_usage.data_encipherment


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_leaf_key_identifiers(
    pki: ScenarioPki, leaves: dict[str, IssuedIdentity], case_name: str
) -> None:
    issuer = _issuer(pki, LEAF_CASES[case_name].ca).certificate
    leaf = leaves[case_name].certificate
    ski = _ext(leaf, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(leaves[case_name].key.public_key())
    aki = _ext(leaf, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier is not None
    assert aki.key_identifier == _ext(issuer, x509.SubjectKeyIdentifier).value.digest


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_leaf_names_crl_and_ocsp_of_its_ca(
    leaves: dict[str, IssuedIdentity], case_name: str
) -> None:
    slug = {"people": "de-people", "devices": "de-devices"}[LEAF_CASES[case_name].ca]
    leaf = leaves[case_name].certificate
    points = _ext(leaf, x509.CRLDistributionPoints).value
    assert len(points) == 1
    assert points[0].full_name == [x509.UniformResourceIdentifier(f"{BASE_URL}/pki/{slug}/crl")]
    access = {
        (d.access_method, d.access_location.value)
        for d in _ext(leaf, x509.AuthorityInformationAccess).value
    }
    assert access == {
        (AuthorityInformationAccessOID.OCSP, f"{BASE_URL}/pki/{slug}/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{BASE_URL}/pki/{slug}/issuers.p7c"),
    }


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_leaf_serial_is_large_and_random(leaves: dict[str, IssuedIdentity], case_name: str) -> None:
    serial = leaves[case_name].certificate.serial_number
    assert 2**64 <= serial < 2**159


def test_serials_differ(leaves: dict[str, IssuedIdentity]) -> None:
    serials = {identity.certificate.serial_number for identity in leaves.values()}
    assert len(serials) == len(leaves)
    assert all(2**64 <= random_serial() < 2**159 for _ in range(50))


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_leaf_alt_names_are_the_subjects(leaves: dict[str, IssuedIdentity], case_name: str) -> None:
    subject = LEAF_CASES[case_name].subject
    leaf = leaves[case_name].certificate
    expected = subject.alt_names()
    if not expected:
        with pytest.raises(x509.ExtensionNotFound):
            leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    else:
        san = _ext(leaf, x509.SubjectAlternativeName)
        assert not san.critical
        assert list(san.value) == expected


def test_default_validity_follows_the_profile(leaves: dict[str, IssuedIdentity]) -> None:
    for name in ("organization", "machine-ec", "software"):
        case = LEAF_CASES[name]
        leaf = leaves[name].certificate
        assert leaf.not_valid_before_utc == AT
        lifetime = profile_for(case.subject.kind, case.purpose).default_lifetime
        assert leaf.not_valid_after_utc == AT + lifetime


def test_explicit_lifetime_is_honoured(pki: ScenarioPki) -> None:
    identity = issue_identity(pki.devices, software_subject(), lifetime=timedelta(days=30))
    assert identity.certificate.not_valid_after_utc == AT + timedelta(days=30)


def test_default_validity_is_clamped_to_the_ca(pki: ScenarioPki) -> None:
    late = pki.devices.not_after - timedelta(days=100)
    identity = issue_identity(pki.devices, machine_subject(), at=late)
    assert identity.certificate.not_valid_after_utc == pki.devices.not_after


def test_fingerprints(leaves: dict[str, IssuedIdentity]) -> None:
    leaf = leaves["organization"].certificate
    assert (
        certificate_fingerprint(leaf) == hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
    )
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert key_fingerprint(leaf.public_key()) == hashlib.sha256(spki).hexdigest()


def test_endpoints_for_ca_strip_a_trailing_slash() -> None:
    endpoints = Endpoints.for_ca("https://tsp.example:8443/", "jp-root")
    assert endpoints == Endpoints(
        crl_url="https://tsp.example:8443/pki/jp-root/crl",
        ocsp_url="https://tsp.example:8443/pki/jp-root/ocsp",
        ca_issuers_url="https://tsp.example:8443/pki/jp-root/issuers.p7c",
        delta_crl_url="https://tsp.example:8443/pki/jp-root/delta-crl",
        repository_url="https://tsp.example:8443/pki/jp-root/issued.p7c",
    )


# -- limits ------------------------------------------------------------------------------------


def test_wrong_kind_is_refused(pki: ScenarioPki) -> None:
    with pytest.raises(LimitError, match="does not issue machine identities"):
        issue_identity(pki.people, machine_subject())
    with pytest.raises(LimitError, match="does not issue person identities"):
        issue_identity(pki.devices, person_subject())


def test_root_certifying_cas_only_issues_no_identities(pki: ScenarioPki) -> None:
    with pytest.raises(LimitError, match=r"\(it issues: CA certificates only\)"):
        issue_identity(pki.root, organization_subject())


def test_level_outside_the_ca_limits_is_refused(
    pki: ScenarioPki, restricted_ca: CertificateAuthority
) -> None:
    with pytest.raises(
        LimitError, match=f"not allowed to issue at level {oids.DE_HIGH.dotted_string}"
    ):
        issue_identity(restricted_ca, person_subject(), level=oids.DE_HIGH)
    with pytest.raises(LimitError, match="not allowed to issue at level"):
        issue_identity(pki.people, organization_subject(), level=oids.JP_LEVEL1)
    identity = issue_identity(restricted_ca, person_subject(), level=oids.DE_BASIC)
    assert _policy_oids(identity.certificate) == [oids.DE_BASIC]


def test_role_outside_the_ca_limits_is_refused(restricted_ca: CertificateAuthority) -> None:
    with pytest.raises(LimitError, match="may not grant the role\\(s\\) registration-officer"):
        issue_identity(
            restricted_ca,
            person_subject(roles=frozenset({Role.OPERATOR, Role.REGISTRATION_OFFICER})),
            level=oids.DE_BASIC,
        )
    operator = issue_identity(
        restricted_ca, person_subject(roles=frozenset({Role.OPERATOR})), level=oids.DE_BASIC
    )
    assert roles_of(operator.certificate) == {Role.OPERATOR}


def test_expired_ca_issues_nothing(pki: ScenarioPki) -> None:
    after = pki.devices.not_after + timedelta(days=1)
    with pytest.raises(LimitError, match="expired on") as info:
        issue_identity(pki.devices, machine_subject(), at=after)
    assert info.value.hint is not None


def test_ca_issues_nothing_before_its_validity(pki: ScenarioPki) -> None:
    with pytest.raises(LimitError, match="is not valid before"):
        issue_identity(pki.devices, machine_subject(), at=AT - timedelta(seconds=1))


def test_lifetime_beyond_the_ca_validity_is_refused(pki: ScenarioPki) -> None:
    late = pki.devices.not_after - timedelta(days=365)
    with pytest.raises(LimitError, match="exceeds the CA's own validity"):
        issue_identity(pki.devices, machine_subject(), at=late, lifetime=timedelta(days=2 * 365))


def test_lifetime_beyond_the_profile_maximum_is_refused(pki: ScenarioPki) -> None:
    with pytest.raises(LimitError, match="exceeds the profile's maximum of 730 days"):
        issue_identity(pki.devices, software_subject(), lifetime=timedelta(days=3 * 365))


def test_non_positive_lifetime_is_refused(pki: ScenarioPki) -> None:
    with pytest.raises(InputError, match="must be positive"):
        issue_identity(pki.devices, software_subject(), lifetime=timedelta(0))


def test_key_agreement_refuses_keys_other_than_p256(pki: ScenarioPki) -> None:
    with pytest.raises(ProfileError, match="key type p384 is not allowed"):
        issue_identity(
            pki.people, organization_subject(), key_type=KeyType.P384, purpose=Purpose.KEY_AGREEMENT
        )
    with pytest.raises(ProfileError, match="no key-agreement profile for person"):
        issue_identity(pki.people, person_subject(), purpose=Purpose.KEY_AGREEMENT)


def test_ca_with_path_length_zero_cannot_certify_cas(pki: ScenarioPki) -> None:
    with pytest.raises(LimitError, match="has path length 0 and cannot certify CAs"):
        certify_issuing_ca(
            pki.people,
            common_name="Sub-sub CA",
            slug="sub-sub",
            limits=CaLimits(levels=(oids.DE_BASIC,), kinds=frozenset({SubjectKind.PERSON})),
        )


@pytest.mark.parametrize("path_length", [1, None])
def test_subordinate_path_length_must_shrink(pki: ScenarioPki, path_length: int | None) -> None:
    with pytest.raises(LimitError, match=f"path length {path_length} exceeds what CA"):
        pki.root.certify_ca(
            subject_name=pki.people.name,
            public_key=pki.people.signer.public_key,
            limits=CaLimits(levels=DE_LEVELS, path_length=path_length),
            at=AT,
            lifetime=timedelta(days=365),
        )


def test_subordinate_levels_must_be_held_by_the_parent(pki: ScenarioPki) -> None:
    with pytest.raises(
        LimitError, match=f"levels its parent does not hold: {oids.JP_LEVEL1.dotted_string}"
    ):
        pki.root.certify_ca(
            subject_name=pki.people.name,
            public_key=pki.people.signer.public_key,
            limits=CaLimits(levels=(oids.DE_HIGH, oids.JP_LEVEL1)),
            at=AT,
            lifetime=timedelta(days=365),
        )


def test_subordinate_validity_must_end_within_the_parent(pki: ScenarioPki) -> None:
    with pytest.raises(LimitError, match="exceeds the parent's"):
        pki.root.certify_ca(
            subject_name=pki.people.name,
            public_key=pki.people.signer.public_key,
            limits=CaLimits(levels=DE_LEVELS),
            at=AT,
            lifetime=timedelta(days=21 * 365),
        )


def test_ca_keys_must_not_be_rsa_2048(pki: ScenarioPki, leaves: dict[str, IssuedIdentity]) -> None:
    with pytest.raises(ProfileError, match="CA keys must be at least RSA-3072"):
        pki.root.certify_ca(
            subject_name=pki.people.name,
            public_key=leaves["machine-rsa"].key.public_key(),
            limits=CaLimits(levels=DE_LEVELS),
            at=AT,
            lifetime=timedelta(days=365),
        )


def test_subordinate_kinds_must_be_within_the_parent() -> None:
    parent = build_root(path_length=None, slug="unlimited-root")
    # A parent that issues identities limits the kinds of the CAs below it.
    limited = certify_issuing_ca(
        parent,
        common_name="Machines CA",
        slug="machines",
        limits=CaLimits(levels=DE_LEVELS, kinds=frozenset({SubjectKind.MACHINE}), path_length=1),
    )
    with pytest.raises(LimitError, match="subject kinds its parent may not issue"):
        certify_issuing_ca(
            limited,
            common_name="People CA",
            slug="people",
            limits=CaLimits(levels=DE_LEVELS, kinds=frozenset({SubjectKind.PERSON})),
        )


# -- name constraints --------------------------------------------------------------------------


def test_name_constraints_are_written_critical_and_read_back(
    constrained_ca: CertificateAuthority,
) -> None:
    extension = _ext(constrained_ca.certificate, x509.NameConstraints)
    assert extension.critical
    assert extension.value.permitted_subtrees == [
        x509.DirectoryName(x509.Name.from_rfc4514_string("C=DE"))
    ]
    assert NameConstraintsSpec.from_certificate(constrained_ca.certificate) == (
        NameConstraintsSpec(permitted_dn=("C=DE",))
    )


def test_name_constraints_refuse_a_foreign_subject(constrained_ca: CertificateAuthority) -> None:
    japanese = OrganizationSubject(
        name="Hayabusa Sensor Components K.K.", country="JP", identifier="NTRJP-1234567890123"
    )
    with pytest.raises(LimitError, match="outside the CA's permitted directory names"):
        issue_identity(constrained_ca, japanese)
    german = issue_identity(constrained_ca, organization_subject())
    german.certificate.verify_directly_issued_by(constrained_ca.certificate)


def test_dns_name_constraints(pki: ScenarioPki) -> None:
    ca = certify_issuing_ca(
        pki.root,
        common_name="Muster Devices CA",
        slug="muster-devices",
        limits=CaLimits(levels=DE_LEVELS, kinds=frozenset({SubjectKind.MACHINE})),
        name_constraints=NameConstraintsSpec(
            permitted_dns=("muster-maschinenbau.example",),
            excluded_dns=("lab.muster-maschinenbau.example",),
        ),
    )
    issue_identity(ca, machine_subject())

    def machine(host: str) -> MachineSubject:
        return MachineSubject(
            manufacturer="Muster", model="X", serial_number="1", country="DE", dns_names=(host,)
        )

    with pytest.raises(LimitError, match=re.escape("DNS name press.other.example is outside")):
        issue_identity(ca, machine("press.other.example"))
    with pytest.raises(
        LimitError, match=re.escape("DNS name a.lab.muster-maschinenbau.example is excluded")
    ):
        issue_identity(ca, machine("a.lab.muster-maschinenbau.example"))


def test_name_constraints_spec_refuses_bad_directory_names() -> None:
    with pytest.raises(InputError, match="permitted directory name 'C' is not RFC 4514"):
        NameConstraintsSpec(permitted_dn=("C",))
    assert NameConstraintsSpec().extension() is None


# -- interoperability with the openssl command ------------------------------------------------


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl command is not installed (apt install openssl)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_openssl(), *args], capture_output=True, text=True, check=False, timeout=30
    )


def _attime() -> str:
    return str(int((AT + timedelta(days=1)).timestamp()))


def _write_chain(
    directory: Path, root: x509.Certificate, issuing: x509.Certificate, leaf: x509.Certificate
) -> tuple[Path, Path, Path]:
    paths = (directory / "root.pem", directory / "issuing.pem", directory / "leaf.pem")
    for path, certificate in zip(paths, (root, issuing, leaf), strict=True):
        path.write_bytes(pem(certificate))
    return paths


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_openssl_verifies_every_profile(
    tmp_path: Path, pki: ScenarioPki, leaves: dict[str, IssuedIdentity], case_name: str
) -> None:
    issuing = _issuer(pki, LEAF_CASES[case_name].ca).certificate
    root_pem, issuing_pem, leaf_pem = _write_chain(
        tmp_path, pki.root.certificate, issuing, leaves[case_name].certificate
    )
    common = ["-attime", _attime(), "-CAfile", str(root_pem), "-untrusted", str(issuing_pem)]
    result = _run("verify", "-x509_strict", *common, str(leaf_pem))
    assert result.returncode == 0, result.stderr
    assert f"{leaf_pem}: OK" in result.stdout
    # RFC 5280 policy processing: the level is valid along the whole path.
    policy = ["-policy_check", "-explicit_policy", "-policy", oids.DE_HIGH.dotted_string]
    result = _run("verify", *policy, *common, str(leaf_pem))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_openssl_shows_policies_and_alt_names(
    tmp_path: Path, leaves: dict[str, IssuedIdentity], case_name: str
) -> None:
    leaf_pem = tmp_path / "leaf.pem"
    leaf_pem.write_bytes(pem(leaves[case_name].certificate))
    result = _run("x509", "-in", str(leaf_pem), "-text", "-noout")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "X509v3 Certificate Policies" in text
    assert f"Policy: {oids.DE_HIGH.dotted_string}" in text
    assert "CA:FALSE" in text
    assert f"OCSP - URI:{BASE_URL}/pki/" in text
    assert "X509v3 CRL Distribution Points" in text
    if LEAF_CASES[case_name].subject.alt_names():
        assert "X509v3 Subject Alternative Name" in text


def test_openssl_shows_machine_identity_details(
    tmp_path: Path, leaves: dict[str, IssuedIdentity]
) -> None:
    leaf_pem = tmp_path / "leaf.pem"
    leaf_pem.write_bytes(pem(leaves["machine-rsa"].certificate))
    text = _run("x509", "-in", str(leaf_pem), "-text", "-noout").stdout
    assert "Key Encipherment" in text
    assert "Data Encipherment" in text
    assert "URI:urn:trustbridge:machine:" in text
    assert "DNS:mx500-42.muster-maschinenbau.example" in text
    assert "othername:" in text.lower()


def test_openssl_verifies_under_name_constraints(
    tmp_path: Path, pki: ScenarioPki, constrained_ca: CertificateAuthority
) -> None:
    leaf = issue_identity(constrained_ca, organization_subject()).certificate
    root_pem, issuing_pem, leaf_pem = _write_chain(
        tmp_path, pki.root.certificate, constrained_ca.certificate, leaf
    )
    result = _run(
        "verify",
        "-attime",
        _attime(),
        "-CAfile",
        str(root_pem),
        "-untrusted",
        str(issuing_pem),
        str(leaf_pem),
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize("same_names", [False, True], ids=["other-root", "impostor-root"])
def test_openssl_refuses_a_leaf_from_another_root(
    tmp_path: Path, pki: ScenarioPki, same_names: bool
) -> None:
    if same_names:
        # Same distinguished names as the real hierarchy, different keys.
        other_root = build_root()
        issuing_name = "Rheintal Trust Services People CA"
    else:
        other_root = build_root(common_name="JP Industrial Root CA", slug="jp-root")
        issuing_name = "Sakura Trust Service Issuing CA"
    other_issuing = certify_issuing_ca(
        other_root,
        common_name=issuing_name,
        slug="other",
        limits=CaLimits(levels=DE_LEVELS, kinds=frozenset({SubjectKind.ORGANIZATION})),
    )
    foreign_leaf = issue_identity(other_issuing, organization_subject()).certificate
    root_pem, issuing_pem, leaf_pem = _write_chain(
        tmp_path, pki.root.certificate, pki.people.certificate, foreign_leaf
    )
    result = _run(
        "verify",
        "-attime",
        _attime(),
        "-CAfile",
        str(root_pem),
        "-untrusted",
        str(issuing_pem),
        str(leaf_pem),
    )
    assert result.returncode != 0
    assert f"{leaf_pem}: OK" not in result.stdout
    assert "error" in (result.stdout + result.stderr)

    # With its own root, the same leaf verifies: the failure above is about trust, not form.
    own = tmp_path / "own"
    own.mkdir()
    own_root, own_issuing, _ = _write_chain(
        own,
        other_root.certificate,
        other_issuing.certificate,
        foreign_leaf,
    )
    ok = _run(
        "verify",
        "-attime",
        _attime(),
        "-CAfile",
        str(own_root),
        "-untrusted",
        str(own_issuing),
        str(leaf_pem),
    )
    assert ok.returncode == 0, ok.stderr


def test_ed25519_issuing_ca(pki: ScenarioPki) -> None:
    """An Ed25519 issuing CA signs verifiable certificates (pure EdDSA, no hash)."""
    ed_ca = certify_issuing_ca(
        pki.root,
        common_name="Ed25519 CA",
        slug="ed",
        limits=CaLimits(levels=DE_LEVELS, kinds=frozenset({SubjectKind.SOFTWARE})),
        key_type=KeyType.ED25519,
    )
    leaf = ed_ca.issue(
        subject=software_subject(),
        public_key=generate_private_key(KeyType.P256).public_key(),
        level=oids.DE_BASIC,
        at=AT,
    )
    leaf.verify_directly_issued_by(ed_ca.certificate)
    assert leaf.signature_hash_algorithm is None


# -- what issuance builds once per CA stays per profile, level and roles --------------------------


def test_one_ca_issues_each_person_their_own_roles_and_level(pki: ScenarioPki) -> None:
    """The extensions a CA builds once are kept apart by level and roles (and key type)."""
    issued = [
        (
            roles,
            level,
            key_type,
            issue_identity(
                pki.people, person_subject(roles=roles), level=level, key_type=key_type
            ).certificate,
        )
        for roles in (frozenset(), frozenset({Role.OPERATOR}), PERSON_ROLES)
        for level in DE_LEVELS
        for key_type in (KeyType.P256, KeyType.RSA2048)
    ]
    for roles, level, key_type, certificate in issued:
        assert _policy_oids(certificate) == [
            level,
            *sorted((r.oid for r in roles), key=lambda o: o.dotted_string),
        ]
        assert roles_of(certificate) == roles
        usage = _ext(certificate, x509.KeyUsage).value
        assert usage.digital_signature and not usage.key_encipherment  # people never encipher
        assert KeyType.of(certificate.public_key()) is key_type


@pytest.mark.parametrize(
    "subject",
    [
        organization_subject(),
        person_subject(roles=PERSON_ROLES),
        machine_subject(),
        software_subject(),
        OrganizationSubject(
            name='Müller, "Söhne" + Co; <AG>', country="DE", identifier="VATDE-1", locality=" #Ulm "
        ),
        MachineSubject(
            manufacturer="#Hash+Plus, AG", model="Modell\\7 ", serial_number="A 1", country="DE"
        ),
    ],
    ids=["organization", "person", "machine", "software", "escapes", "machine-escapes"],
)
def test_the_name_a_certificate_is_built_with_renders_as_its_subject(
    pki: ScenarioPki, subject: Subject
) -> None:
    """The log renders an issued certificate's subject from the name it was built with."""
    ca = pki.devices if subject.kind in (SubjectKind.MACHINE, SubjectKind.SOFTWARE) else pki.people
    certificate = issue_identity(ca, subject).certificate
    assert certificate.subject == subject.x509_name()
    assert certificate.subject.rfc4514_string() == subject.x509_name().rfc4514_string()
