"""RFC 5280 path validation with policy processing and revocation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki.pkifactory import (
    AT,
    IssuedIdentity,
    ScenarioPki,
    build_scenario_pki,
    issue_identity,
    organization_subject,
    person_subject,
)
from trustbridge import oids
from trustbridge.errors import ValidationError
from trustbridge.pki.ca import CertificateAuthority
from trustbridge.pki.keys import hash_for
from trustbridge.pki.profiles import Role
from trustbridge.trust.validation import (
    RevocationMode,
    ValidatedPath,
    ValidationParams,
    validate_path,
)

#: The relying party validates a day after the PKI was built.
CHECK_AT = AT + timedelta(days=1)
HIGH = oids.DE_HIGH.dotted_string


def build_crl(
    ca: CertificateAuthority,
    *,
    this_update: datetime,
    next_update: datetime,
    revoked: Sequence[int] = (),
    number: int = 1,
) -> bytes:
    """A complete CRL of ``ca``, DER, with all entries handed to the builder at once."""
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    entries = [
        x509.RevokedCertificateBuilder()
        .serial_number(serial)
        .revocation_date(this_update - timedelta(minutes=5))
        .build()
        for serial in revoked
    ]
    builder = x509.CertificateRevocationListBuilder(revoked_certificates=entries)
    crl = (
        builder.issuer_name(ca.name)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(x509.CRLNumber(number), critical=False)
        .sign(ca.signer.private_key, hash_for(ca.signer.key_type))
    )
    return crl.public_bytes(Encoding.DER)


def empty_crls(pki: ScenarioPki, *, at: datetime = CHECK_AT) -> tuple[bytes, ...]:
    """Current, empty CRLs of the root (covering the issuing CAs) and of both issuing CAs."""
    return tuple(
        build_crl(ca, this_update=at - timedelta(hours=1), next_update=at + timedelta(days=7))
        for ca in (pki.root, pki.people, pki.devices)
    )


def crls_revoking_people_ca(pki: ScenarioPki) -> tuple[bytes, ...]:
    """As :func:`empty_crls`, but the root's CRL revokes the People CA."""
    root_crl = build_crl(
        pki.root,
        this_update=CHECK_AT - timedelta(hours=1),
        next_update=CHECK_AT + timedelta(days=30),
        revoked=[pki.people.certificate.serial_number],
    )
    _, people_crl, devices_crl = empty_crls(pki)
    return (root_crl, people_crl, devices_crl)


@pytest.fixture(scope="module")
def basic_leaf(pki: ScenarioPki) -> IssuedIdentity:
    return issue_identity(pki.people, organization_subject(), level=oids.DE_BASIC)


def _validate(
    pki: ScenarioPki,
    certificate: x509.Certificate,
    params: ValidationParams,
    *,
    anchors: Sequence[x509.Certificate] | None = None,
) -> ValidatedPath:
    return validate_path(
        certificate,
        intermediates=[pki.people.certificate, pki.devices.certificate],
        anchors=[pki.root.certificate] if anchors is None else anchors,
        params=params,
    )


def _soft(**changes: object) -> ValidationParams:
    params = ValidationParams(
        at=CHECK_AT,
        acceptable_policies=frozenset({HIGH}),
        revocation=RevocationMode.UNSAFE_SOFT_FAIL,
    )
    return replace(params, **changes)  # type: ignore[arg-type]


# -- paths and policies ------------------------------------------------------------------------


def test_leaf_at_the_expected_level_validates(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    path = _validate(pki, leaf.certificate, _soft())
    assert path.certificates == (pki.root.certificate, pki.people.certificate, leaf.certificate)
    assert path.leaf == leaf.certificate
    assert HIGH in path.user_policies
    assert (HIGH, HIGH) in path.policies


def test_any_policy_accepts_every_level(pki: ScenarioPki, basic_leaf: IssuedIdentity) -> None:
    path = _validate(pki, basic_leaf.certificate, _soft(acceptable_policies=frozenset()))
    assert path.user_policies == {oids.DE_BASIC.dotted_string}


def test_level_the_leaf_lacks_fails_under_explicit_policy(
    pki: ScenarioPki, basic_leaf: IssuedIdentity
) -> None:
    params = _soft(require_explicit_policy=True)
    with pytest.raises(ValidationError, match="no valid set of policies") as info:
        _validate(pki, basic_leaf.certificate, params)
    assert "Muster Maschinenbau GmbH" in info.value.message


def test_lower_acceptable_level_does_not_match_a_higher_one(
    pki: ScenarioPki, leaf: IssuedIdentity
) -> None:
    # Levels are distinct policies; ordering them is the resolver's job, not RFC 5280's.
    acceptable = frozenset({oids.DE_BASIC.dotted_string})
    with pytest.raises(ValidationError, match="no valid set of policies"):
        _validate(pki, leaf.certificate, _soft(acceptable_policies=acceptable))


def test_several_acceptable_levels(pki: ScenarioPki, basic_leaf: IssuedIdentity) -> None:
    acceptable = frozenset({oids.DE_BASIC.dotted_string, oids.DE_SUBSTANTIAL.dotted_string})
    path = _validate(pki, basic_leaf.certificate, _soft(acceptable_policies=acceptable))
    assert path.user_policies == {oids.DE_BASIC.dotted_string}


def test_person_path_validates_level_and_role(pki: ScenarioPki) -> None:
    person = issue_identity(
        pki.people, person_subject(roles=frozenset({Role.REGISTRATION_OFFICER})), level=oids.DE_HIGH
    )
    role = oids.ROLE_REGISTRATION_OFFICER.dotted_string
    path = _validate(pki, person.certificate, _soft(acceptable_policies=frozenset()))
    assert path.user_policies == {HIGH, role}
    assert path.leaf == person.certificate
    # A relying party may ask for the role itself: the issuing CA asserts it.
    by_role = _validate(pki, person.certificate, _soft(acceptable_policies=frozenset({role})))
    assert by_role.user_policies == {role}


def test_no_anchors_fails(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    with pytest.raises(ValidationError, match="no trust anchors configured"):
        _validate(pki, leaf.certificate, _soft(), anchors=[])


def test_other_anchor_fails(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    other = build_scenario_pki()
    with pytest.raises(ValidationError, match="Unable to build a validation path"):
        _validate(pki, leaf.certificate, _soft(), anchors=[other.root.certificate])


def test_expired_leaf_fails(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    after = leaf.certificate.not_valid_after_utc + timedelta(days=1)
    with pytest.raises(ValidationError, match="end-entity certificate expired"):
        _validate(pki, leaf.certificate, _soft(at=after))


def test_not_yet_valid_leaf_fails(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    with pytest.raises(ValidationError, match="is not valid until"):
        _validate(pki, leaf.certificate, _soft(at=AT - timedelta(days=1)))


def test_params_make_time_utc() -> None:
    params = ValidationParams(at=datetime(2026, 6, 2))  # naive on purpose
    assert params.at == datetime(2026, 6, 2, tzinfo=UTC)
    assert params.revocation is RevocationMode.REQUIRE
    assert params.require_explicit_policy


# -- revocation --------------------------------------------------------------------------------


def test_require_without_revocation_data_fails_closed(
    pki: ScenarioPki, leaf: IssuedIdentity
) -> None:
    params = _soft(revocation=RevocationMode.REQUIRE)
    with pytest.raises(ValidationError, match="no revocation information could be found"):
        _validate(pki, leaf.certificate, params)


def test_require_passes_with_current_empty_crls(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    params = _soft(revocation=RevocationMode.REQUIRE, crls=empty_crls(pki))
    path = _validate(pki, leaf.certificate, params)
    assert path.certificates[-1] == leaf.certificate
    assert HIGH in path.user_policies


def test_hard_fail_passes_with_current_empty_crls(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    params = _soft(revocation=RevocationMode.HARD_FAIL, crls=empty_crls(pki))
    assert _validate(pki, leaf.certificate, params).leaf == leaf.certificate


def test_hard_fail_without_revocation_data_fails(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    # Our certificates declare CRL distribution points, so hard-fail insists on them too.
    params = _soft(revocation=RevocationMode.HARD_FAIL)
    with pytest.raises(ValidationError, match="no revocation information could be found"):
        _validate(pki, leaf.certificate, params)


def test_require_fails_without_the_issuing_ca_crl(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    root_crl_only = empty_crls(pki)[:1]
    params = _soft(revocation=RevocationMode.REQUIRE, crls=root_crl_only)
    with pytest.raises(
        ValidationError, match="no revocation information could be found for the end-entity"
    ):
        _validate(pki, leaf.certificate, params)


def test_require_fails_with_stale_crls(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    stale = empty_crls(pki, at=CHECK_AT - timedelta(days=30))
    params = _soft(revocation=RevocationMode.REQUIRE, crls=stale)
    with pytest.raises(ValidationError, match="CRL is not recent enough"):
        _validate(pki, leaf.certificate, params)


def test_revoked_leaf_fails(pki: ScenarioPki) -> None:
    victim = issue_identity(pki.people, organization_subject(), level=oids.DE_HIGH)
    this_update = CHECK_AT - timedelta(hours=1)
    next_update = CHECK_AT + timedelta(days=7)
    people_crl = build_crl(
        pki.people,
        this_update=this_update,
        next_update=next_update,
        revoked=[victim.certificate.serial_number, 12345678901234567890123],
        number=2,
    )
    root_crl, _, devices_crl = empty_crls(pki)
    params = _soft(revocation=RevocationMode.REQUIRE, crls=(root_crl, people_crl, devices_crl))
    with pytest.raises(ValidationError, match="is revoked"):
        _validate(pki, victim.certificate, params)
    # Even the soft-fail mode refuses a certificate that the CRL at hand lists.
    with pytest.raises(ValidationError, match="is revoked"):
        _validate(
            pki, victim.certificate, replace(params, revocation=RevocationMode.UNSAFE_SOFT_FAIL)
        )


def test_revoked_issuing_ca_fails(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    params = _soft(revocation=RevocationMode.REQUIRE, crls=crls_revoking_people_ca(pki))
    with pytest.raises(ValidationError, match="revoked"):
        _validate(pki, leaf.certificate, params)


def test_crl_signed_by_another_key_does_not_count(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    impostor = build_scenario_pki()  # same names, different keys
    forged = build_crl(
        impostor.people,
        this_update=CHECK_AT - timedelta(hours=1),
        next_update=CHECK_AT + timedelta(days=7),
    )
    root_crl, _, devices_crl = empty_crls(pki)
    params = _soft(revocation=RevocationMode.REQUIRE, crls=(root_crl, forged, devices_crl))
    with pytest.raises(ValidationError, match="CRL signature could not be verified"):
        _validate(pki, leaf.certificate, params)
