"""Validation of a given path (:func:`validate_chain`): verdicts, kinds of failure, policies."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki.pkifactory import (
    AT,
    IssuedIdentity,
    ScenarioPki,
    build_root,
    certify_issuing_ca,
    issue_identity,
    organization_subject,
)
from tests.trust.test_validation import CHECK_AT, build_crl, crls_revoking_people_ca, empty_crls
from trustbridge import oids
from trustbridge.errors import ValidationError
from trustbridge.pki.ca import CaLimits
from trustbridge.pki.cross import CrossCertificateSpec, PolicyMapping, cross_certify
from trustbridge.pki.profiles import SubjectKind
from trustbridge.trust.validation import (
    ANY_POLICY,
    FailureKind,
    PathValidationError,
    RevocationMode,
    ValidationParams,
    ValidPolicy,
    validate_chain,
    validate_chain_async,
    validate_path,
)

HIGH = oids.DE_HIGH.dotted_string
JP3 = oids.JP_LEVEL3.dotted_string


def _path(pki: ScenarioPki, leaf: IssuedIdentity) -> list[x509.Certificate]:
    return [pki.root.certificate, pki.people.certificate, leaf.certificate]


def _params(pki: ScenarioPki, **changes: object) -> ValidationParams:
    params = ValidationParams(
        at=CHECK_AT, acceptable_policies=frozenset({HIGH}), crls=empty_crls(pki)
    )
    return replace(params, **changes)  # type: ignore[arg-type]


def test_a_valid_path_reports_its_certificates_and_policies(
    pki: ScenarioPki, leaf: IssuedIdentity
) -> None:
    path = validate_chain(_path(pki, leaf), _params(pki))
    assert path.certificates == tuple(_path(pki, leaf))
    assert path.der == tuple(c.public_bytes(Encoding.DER) for c in _path(pki, leaf))
    assert path.leaf == leaf.certificate
    assert path.policies == {ValidPolicy(issuer_domain=HIGH, user_domain=HIGH)}
    assert path.user_policies == {HIGH}
    assert path.notices == ()


def test_der_input_is_the_same_path(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    der = [c.public_bytes(Encoding.DER) for c in _path(pki, leaf)]
    assert validate_chain(der, _params(pki)) == validate_chain(_path(pki, leaf), _params(pki))


def test_any_policy_as_dotted_oid_accepts_every_level(
    pki: ScenarioPki, leaf: IssuedIdentity
) -> None:
    params = _params(pki, acceptable_policies=frozenset({ANY_POLICY}))
    assert validate_chain(_path(pki, leaf), params).user_policies == {HIGH}


def test_async_variant_in_a_running_loop(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    async def run() -> frozenset[str]:
        path = await validate_chain_async(_path(pki, leaf), _params(pki))
        return path.user_policies

    assert asyncio.run(run()) == {HIGH}


def test_the_path_is_taken_as_given_not_rebuilt(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    # The devices CA did not issue the leaf: no builder steps in to find the people CA.
    path = [pki.root.certificate, pki.devices.certificate, leaf.certificate]
    with pytest.raises(PathValidationError, match=r"end-entity certificate .*position 2") as info:
        validate_chain(path, _params(pki))
    assert info.value.kind is FailureKind.PATH
    assert info.value.index == 2


def test_leaf_first_order_is_refused(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    with pytest.raises(PathValidationError) as info:
        validate_chain(_path(pki, leaf)[::-1], _params(pki))
    assert info.value.kind is FailureKind.PATH


def test_an_anchor_alone_is_no_path(pki: ScenarioPki) -> None:
    with pytest.raises(PathValidationError, match="at least one certificate"):
        validate_chain([pki.root.certificate], _params(pki))


def test_an_unacceptable_level_fails_on_policy(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    params = _params(pki, acceptable_policies=frozenset({oids.DE_BASIC.dotted_string}))
    with pytest.raises(PathValidationError, match="no valid set of policies") as info:
        validate_chain(_path(pki, leaf), params)
    assert info.value.kind is FailureKind.PATH
    assert "Muster Maschinenbau GmbH" in info.value.message


def test_expired_leaf_names_it(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    after = leaf.certificate.not_valid_after_utc + timedelta(days=1)
    with pytest.raises(PathValidationError, match=r"end-entity certificate .* expired") as info:
        validate_chain(_path(pki, leaf), _params(pki, at=after, crls=empty_crls(pki, at=after)))
    assert info.value.kind is FailureKind.PATH
    assert info.value.index == 2


def test_revoked_leaf(pki: ScenarioPki) -> None:
    victim = issue_identity(pki.people, organization_subject(), level=oids.DE_HIGH)
    people_crl = build_crl(
        pki.people,
        this_update=CHECK_AT - timedelta(hours=1),
        next_update=CHECK_AT + timedelta(days=7),
        revoked=[victim.certificate.serial_number],
        number=2,
    )
    root_crl, _, devices_crl = empty_crls(pki)
    params = _params(pki, crls=(root_crl, people_crl, devices_crl))
    with pytest.raises(PathValidationError, match="was revoked") as info:
        validate_chain(_path(pki, victim), params)
    assert info.value.kind is FailureKind.REVOKED
    assert info.value.index == 2


def test_revoked_issuing_ca(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    with pytest.raises(PathValidationError, match=r"CA certificate .*People CA") as info:
        validate_chain(_path(pki, leaf), _params(pki, crls=crls_revoking_people_ca(pki)))
    assert info.value.kind is FailureKind.REVOKED
    assert info.value.index == 1


def test_missing_revocation_information(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    with pytest.raises(PathValidationError) as info:
        validate_chain(_path(pki, leaf), _params(pki, crls=()))
    assert info.value.kind is FailureKind.REVOCATION_UNAVAILABLE
    # Still a ValidationError for callers that do not care about the kind.
    assert isinstance(info.value, ValidationError)


def test_stale_revocation_information(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    stale = empty_crls(pki, at=CHECK_AT - timedelta(days=30))
    with pytest.raises(PathValidationError, match="not recent enough") as info:
        validate_chain(_path(pki, leaf), _params(pki, crls=stale))
    assert info.value.kind is FailureKind.STALE_REVOCATION


def test_soft_fail_without_revocation_information(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    params = _params(pki, crls=(), revocation=RevocationMode.UNSAFE_SOFT_FAIL)
    assert validate_chain(_path(pki, leaf), params).leaf == leaf.certificate


def test_validate_path_reports_the_kind_too(pki: ScenarioPki, leaf: IssuedIdentity) -> None:
    with pytest.raises(PathValidationError) as info:
        validate_path(
            leaf.certificate,
            intermediates=[pki.people.certificate],
            anchors=[pki.root.certificate],
            params=_params(pki, crls=()),
        )
    assert info.value.kind is FailureKind.REVOCATION_UNAVAILABLE


# -- a bridge: the relying party's root maps its level onto the foreign domain's ---------------


def test_policy_mapping_through_a_cross_certificate() -> None:
    de_root = build_root(path_length=None)
    jp_root = build_root(
        common_name="JP Industrial Root CA", slug="jp-root", levels=(oids.JP_LEVEL3,)
    )
    jp_issuing = certify_issuing_ca(
        jp_root,
        common_name="JP Issuing CA",
        slug="jp-issuing",
        limits=CaLimits(levels=(oids.JP_LEVEL3,), kinds=frozenset({SubjectKind.ORGANIZATION})),
    )
    cross = cross_certify(
        de_root,
        jp_root.certificate,
        CrossCertificateSpec(mappings=(PolicyMapping(oids.DE_HIGH, oids.JP_LEVEL3),)),
        at=AT,
        lifetime=timedelta(days=365),
    )
    jp_leaf = issue_identity(jp_issuing, organization_subject(), level=oids.JP_LEVEL3)
    path = [de_root.certificate, cross, jp_issuing.certificate, jp_leaf.certificate]
    params = ValidationParams(
        at=CHECK_AT,
        acceptable_policies=frozenset({HIGH}),
        revocation=RevocationMode.UNSAFE_SOFT_FAIL,
    )
    validated = validate_chain(path, params)
    assert validated.policies == {ValidPolicy(issuer_domain=JP3, user_domain=HIGH)}
    # The relying party may refuse mappings altogether (RFC 5280 initial-policy-mapping-inhibit).
    with pytest.raises(PathValidationError, match="no valid set of policies") as info:
        validate_chain(path, replace(params, initial_policy_mapping_inhibit=True))
    assert info.value.kind is FailureKind.PATH
