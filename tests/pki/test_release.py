"""The release process: signed officer decisions, four eyes, and enrolment credentials."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from tests.pki.pkifactory import (
    AT,
    IssuedIdentity,
    ScenarioPki,
    build_scenario_pki,
    issue_identity,
    machine_subject,
    officer_subject,
    organization_subject,
    person_subject,
    software_subject,
)
from trustbridge import oids
from trustbridge.errors import ApprovalError, InputError, ValidationError
from trustbridge.pki.ca import certificate_fingerprint, key_fingerprint
from trustbridge.pki.keys import KeyType
from trustbridge.pki.profiles import (
    OrganizationSubject,
    Role,
    SoftwareSubject,
    SubjectKind,
    roles_of,
    subject_kind_of,
)
from trustbridge.pki.release import (
    DECISION_MAX_AGE,
    DECISION_MAX_SKEW,
    Decision,
    IdentityVerifier,
    Principal,
    VerifiedIdentity,
    check_enrolment_credential,
    check_officer_decision,
    needs_officer,
    request_digest,
    sign_statement,
    verify_statement_signature,
)

REQUEST_ID = "req-0001"
DECIDED_AT = AT + timedelta(hours=1)
CHECKED_AT = AT + timedelta(hours=2)


class IssuedByVerifier:
    """A small real :class:`IdentityVerifier`: trusts certificates its issuers signed directly.

    It checks the issuer's signature and the validity period, then reports what the
    certificate itself asserts (roles from policies, the subject kind extension).
    """

    def __init__(self, *issuers: x509.Certificate) -> None:
        self._issuers = issuers

    def verify(self, certificate: x509.Certificate, at: datetime) -> VerifiedIdentity:
        if not certificate.not_valid_before_utc <= at < certificate.not_valid_after_utc:
            raise ValidationError(f"{certificate.subject.rfc4514_string()} is not valid at {at}")
        for issuer in self._issuers:
            if issuer.subject != certificate.issuer:
                continue
            try:
                certificate.verify_directly_issued_by(issuer)
            except (InvalidSignature, ValueError, TypeError) as exc:
                raise ValidationError(f"bad issuer signature: {exc!r}") from exc
            return VerifiedIdentity(
                certificate, roles_of(certificate), subject_kind_of(certificate)
            )
        raise ValidationError(f"{certificate.issuer.rfc4514_string()} is not a known issuer")


@pytest.fixture(scope="module")
def pki() -> ScenarioPki:
    return build_scenario_pki()


@pytest.fixture(scope="module")
def verifier(pki: ScenarioPki) -> IdentityVerifier:
    return IssuedByVerifier(pki.people.certificate, pki.devices.certificate)


@pytest.fixture(scope="module")
def officer(pki: ScenarioPki) -> IssuedIdentity:
    return issue_identity(pki.people, officer_subject(), key_type=KeyType.P384)


@pytest.fixture(scope="module")
def plain_person(pki: ScenarioPki) -> IssuedIdentity:
    """A person holding the operator role but not the registration-officer role."""
    return issue_identity(pki.people, person_subject(roles=frozenset({Role.OPERATOR})))


@pytest.fixture(scope="module")
def manufacturer(pki: ScenarioPki) -> IssuedIdentity:
    """The organization identity of Muster Maschinenbau GmbH, which makes the machine."""
    return issue_identity(pki.people, organization_subject())


def _requester() -> Principal:
    return Principal("local", "operator@tsp", "local operator")


def _digest(*, lifetime_days: int | None = None) -> str:
    return request_digest(
        ca="de-people",
        kind=SubjectKind.ORGANIZATION,
        purpose="identity",
        level=oids.DE_HIGH.dotted_string,
        subject=organization_subject().to_dict(),
        public_key_der=b"\x30\x59 pretend key",
        lifetime_days=lifetime_days,
    )


def _decision(**changes: object) -> Decision:
    decision = Decision(
        request_id=REQUEST_ID,
        request_digest=_digest(),
        decision="approve",
        at=DECIDED_AT,
        reason="documents checked",
    )
    return replace(decision, **changes)  # type: ignore[arg-type]


def _check(
    decision: Decision,
    signer_identity: IssuedIdentity,
    verifier: IdentityVerifier,
    *,
    presented: x509.Certificate | None = None,
    request_id: str = REQUEST_ID,
    expected_digest: str | None = None,
    requester: Principal | None = None,
    holder_key_fingerprint: str | None = None,
    at: datetime = CHECKED_AT,
) -> VerifiedIdentity:
    """Sign ``decision`` with ``signer_identity``'s key and check it as the CA would."""
    signature = sign_statement(decision.payload(), signer_identity.signer)
    return check_officer_decision(
        decision=decision,
        signature=signature,
        officer=presented if presented is not None else signer_identity.certificate,
        verifier=verifier,
        request_id=request_id,
        expected_digest=expected_digest if expected_digest is not None else _digest(),
        requester=requester if requester is not None else _requester(),
        holder_key_fingerprint=holder_key_fingerprint,
        at=at,
    )


# -- decisions ---------------------------------------------------------------------------------


def test_decision_payload_round_trips() -> None:
    decision = _decision()
    assert Decision.from_payload(decision.payload()) == decision
    rejection = _decision(decision="reject", reason="registry extract is outdated — ask again")
    assert Decision.from_payload(rejection.payload()) == rejection


def test_decision_payload_is_canonical_json() -> None:
    payload = _decision().payload()
    assert payload.startswith(b'{"at":"2026-06-01T01:00:00+00:00","decision":"approve"')
    assert b" " not in payload.replace(b"documents checked", b"")


def test_decision_time_is_made_utc() -> None:
    naive = _decision(at=datetime(2026, 6, 1, 1, 0))  # naive on purpose
    assert naive.at == DECIDED_AT
    assert naive.at.tzinfo is UTC


def test_decision_must_approve_or_reject() -> None:
    with pytest.raises(InputError, match="decision 'maybe' must be approve or reject"):
        _decision(decision="maybe")


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"{}", b'{"type":"x","request_id":"r","request_digest":"d","decision":"ok"}'],
)
def test_malformed_decision_payload_is_refused(payload: bytes) -> None:
    with pytest.raises(ApprovalError, match="decision statement is malformed"):
        Decision.from_payload(payload)


def test_request_digest_covers_every_field() -> None:
    base = _digest()
    assert base == _digest()
    assert len(base) == 64
    assert base != _digest(lifetime_days=30)
    other_subject = request_digest(
        ca="de-people",
        kind=SubjectKind.ORGANIZATION,
        purpose="identity",
        level=oids.DE_HIGH.dotted_string,
        subject={**organization_subject().to_dict(), "locality": "Berlin"},
        public_key_der=b"\x30\x59 pretend key",
        lifetime_days=None,
    )
    assert base != other_subject


def test_needs_officer() -> None:
    assert needs_officer(SubjectKind.ORGANIZATION)
    assert needs_officer(SubjectKind.PERSON)
    assert not needs_officer(SubjectKind.MACHINE)
    assert not needs_officer(SubjectKind.SOFTWARE)


def test_principal_str() -> None:
    assert str(Principal("rule", "enrolment-credential", "rule")) == "rule:enrolment-credential"


# -- signatures --------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [KeyType.P256, KeyType.P384, KeyType.ED25519, KeyType.RSA2048])
def test_statement_signatures_verify_for_every_key_type(
    pki: ScenarioPki, key_type: KeyType
) -> None:
    identity = issue_identity(pki.people, officer_subject(), key_type=key_type)
    payload = _decision().payload()
    signature = sign_statement(payload, identity.signer)
    verify_statement_signature(identity.certificate, payload, signature)
    with pytest.raises(ApprovalError, match="signature does not verify with the certificate of"):
        verify_statement_signature(identity.certificate, payload + b" ", signature)


# -- officer decisions -------------------------------------------------------------------------


def test_registration_officer_approval_is_accepted(
    officer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    identity = _check(_decision(), officer, verifier)
    assert identity.certificate == officer.certificate
    assert Role.REGISTRATION_OFFICER in identity.roles
    assert identity.kind is SubjectKind.PERSON
    assert identity.fingerprint == certificate_fingerprint(officer.certificate)
    assert identity.principal == Principal(
        "identity", identity.fingerprint, officer.certificate.subject.rfc4514_string()
    )


def test_registration_officer_rejection_is_authenticated_too(
    officer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    identity = _check(_decision(decision="reject", reason="unclear"), officer, verifier)
    assert identity.certificate == officer.certificate


def test_decision_for_another_request_is_refused(
    officer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    with pytest.raises(ApprovalError, match="decision is for request req-0001, not req-0002"):
        _check(_decision(), officer, verifier, request_id="req-0002")


def test_decision_for_changed_content_is_refused(
    officer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    changed = _digest(lifetime_days=3650)
    with pytest.raises(ApprovalError, match="signed for different content of request req-0001"):
        _check(_decision(), officer, verifier, expected_digest=changed)


def test_stale_decision_is_refused(officer: IssuedIdentity, verifier: IdentityVerifier) -> None:
    # Exactly at the limit it still counts; a second later it is stale.
    _check(_decision(), officer, verifier, at=DECIDED_AT + DECISION_MAX_AGE)
    with pytest.raises(ApprovalError, match="more than 1 day, 0:00:00 ago") as info:
        _check(
            _decision(), officer, verifier, at=DECIDED_AT + DECISION_MAX_AGE + timedelta(seconds=1)
        )
    assert info.value.hint == "sign a fresh decision"


def test_future_decision_is_refused(officer: IssuedIdentity, verifier: IdentityVerifier) -> None:
    # Small clock skew is tolerated, more is not.
    _check(_decision(at=CHECKED_AT + DECISION_MAX_SKEW), officer, verifier)
    with pytest.raises(ApprovalError, match="dated in the future"):
        _check(
            _decision(at=CHECKED_AT + DECISION_MAX_SKEW + timedelta(seconds=1)), officer, verifier
        )


def test_wrong_statement_type_is_refused(
    officer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    with pytest.raises(ApprovalError, match="is not a release decision"):
        _check(_decision(statement_type="trustbridge-enrolment/v1"), officer, verifier)


def test_signature_by_another_key_is_refused(
    officer: IssuedIdentity, plain_person: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    with pytest.raises(ApprovalError, match="signature does not verify") as info:
        _check(_decision(), plain_person, verifier, presented=officer.certificate)
    assert "Jonas" in info.value.message


def test_decision_changed_after_signing_is_refused(
    officer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    signature = sign_statement(_decision(decision="reject").payload(), officer.signer)
    with pytest.raises(ApprovalError, match="signature does not verify"):
        check_officer_decision(
            decision=_decision(decision="approve"),
            signature=signature,
            officer=officer.certificate,
            verifier=verifier,
            request_id=REQUEST_ID,
            expected_digest=_digest(),
            requester=_requester(),
            holder_key_fingerprint=None,
            at=CHECKED_AT,
        )


def test_officer_without_the_role_is_refused(
    plain_person: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    assert roles_of(plain_person.certificate) == {Role.OPERATOR}
    with pytest.raises(ApprovalError, match="does not hold the registration-officer role"):
        _check(_decision(), plain_person, verifier)


def test_officer_the_verifier_does_not_trust_is_refused(officer: IssuedIdentity) -> None:
    other_pki = build_scenario_pki()
    with pytest.raises(ValidationError, match="bad issuer signature"):
        _check(_decision(), officer, IssuedByVerifier(other_pki.people.certificate))


def test_officer_cannot_approve_own_request(
    officer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    requester = Principal(
        "identity",
        certificate_fingerprint(officer.certificate),
        officer.certificate.subject.rfc4514_string(),
    )
    with pytest.raises(ApprovalError, match="four-eyes rule: the requester cannot approve"):
        _check(_decision(), officer, verifier, requester=requester)


def test_officer_cannot_release_an_identity_for_own_key(
    officer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    own_key = key_fingerprint(officer.certificate.public_key())
    with pytest.raises(ApprovalError, match="cannot release an identity for their own key"):
        _check(_decision(), officer, verifier, holder_key_fingerprint=own_key)
    # Releasing someone else's key is what officers are for.
    other = _check(_decision(), officer, verifier, holder_key_fingerprint="00" * 32)
    assert other.certificate == officer.certificate


# -- enrolment credentials ---------------------------------------------------------------------


def _verified(identity: IssuedIdentity, verifier: IdentityVerifier) -> VerifiedIdentity:
    return verifier.verify(identity.certificate, CHECKED_AT)


def test_manufacturer_may_enrol_its_machine_and_software(
    manufacturer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    credential = _verified(manufacturer, verifier)
    assert credential.kind is SubjectKind.ORGANIZATION
    check_enrolment_credential(machine_subject(), credential)
    check_enrolment_credential(software_subject(), credential)


def test_other_organization_may_not_enrol(pki: ScenarioPki, verifier: IdentityVerifier) -> None:
    other = issue_identity(
        pki.people,
        OrganizationSubject(
            name="Hayabusa Sensor Components K.K.", country="JP", identifier="NTRJP-1234567890123"
        ),
    )
    with pytest.raises(
        ApprovalError,
        match=re.escape(
            "Hayabusa Sensor Components K.K. cannot enrol identities of Muster Maschinenbau GmbH"
        ),
    ):
        check_enrolment_credential(machine_subject(), _verified(other, verifier))


def test_software_needs_the_matching_organization_identifier(
    manufacturer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    subject = SoftwareSubject(
        name="Line Controller",
        version="2.4.1",
        organization="Muster Maschinenbau GmbH",
        organization_identifier="VATDE-999999999",
        country="DE",
    )
    with pytest.raises(ApprovalError, match="does not match VATDE-999999999"):
        check_enrolment_credential(subject, _verified(manufacturer, verifier))


def test_person_certificate_is_no_enrolment_credential(
    plain_person: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    with pytest.raises(ApprovalError, match="must be an organization identity, not person"):
        check_enrolment_credential(machine_subject(), _verified(plain_person, verifier))


def test_foreign_certificate_is_no_enrolment_credential(pki: ScenarioPki) -> None:
    foreign = VerifiedIdentity(pki.people.certificate, frozenset(), None)
    with pytest.raises(ApprovalError, match="not a foreign certificate"):
        check_enrolment_credential(machine_subject(), foreign)


def test_organizations_and_people_are_never_enrolled_by_rule(
    manufacturer: IssuedIdentity, verifier: IdentityVerifier
) -> None:
    credential = _verified(manufacturer, verifier)
    with pytest.raises(ApprovalError, match="organization identities cannot be released by"):
        check_enrolment_credential(organization_subject(), credential)
    with pytest.raises(ApprovalError, match="person identities cannot be released by"):
        check_enrolment_credential(person_subject(), credential)
