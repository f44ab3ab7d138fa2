"""The release process: every identity starts as a request and is issued only once released.

Organization and person identities need a registration officer who is not the requester
(four eyes). The officer authenticates the decision by signing a :class:`Decision` statement
with the key of their own person identity; :func:`check_officer_decision` checks that
signature, the officer's identity (through an :class:`IdentityVerifier` the caller supplies),
the officer role read from the certificate itself, and the four-eyes rule.

Machines and software may instead be released by a rule: a request signed with the enrolment
credential (an organization identity) of the organization that makes or runs them
(:func:`check_enrolment_credential`), or carrying a one-time enrolment token.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from trustbridge._canonical import canonical_json
from trustbridge.clock import ensure_utc
from trustbridge.errors import ApprovalError, InputError
from trustbridge.oids import ID_AT_ORGANIZATION_IDENTIFIER
from trustbridge.pki.ca import certificate_fingerprint, key_fingerprint
from trustbridge.pki.profiles import (
    MachineSubject,
    Role,
    SoftwareSubject,
    Subject,
    SubjectKind,
)
from trustbridge.pki.signers import Signer, sign_bytes, signature_valid

__all__ = [
    "ApprovalRule",
    "Decision",
    "IdentityVerifier",
    "Principal",
    "RequestState",
    "VerifiedIdentity",
    "check_enrolment_credential",
    "check_officer_decision",
    "needs_officer",
    "request_digest",
    "sign_statement",
    "verify_statement_signature",
]

#: How old a signed decision may be when it reaches the CA, and how far in the future.
DECISION_MAX_AGE = timedelta(hours=24)
DECISION_MAX_SKEW = timedelta(minutes=5)


class RequestState(enum.StrEnum):
    PENDING = "pending"
    #: A released production batch whose certificates are being issued chunk by chunk; a batch
    #: that stops half-way stays here, with the certificates issued so far.
    ISSUING = "issuing"
    ISSUED = "issued"
    REJECTED = "rejected"


class ApprovalRule(enum.StrEnum):
    """Rules that may release a machine or software identity without an officer."""

    ENROLMENT_CREDENTIAL = "enrolment-credential"
    ENROLMENT_TOKEN = "enrolment-token"  # noqa: S105 - a rule name, not a secret
    #: Re-enrolment (EST simplereenroll) by the holder of the valid identity it renews,
    #: authenticated by that identity's key (in the TLS handshake).
    CURRENT_IDENTITY = "current-identity"


def needs_officer(kind: SubjectKind) -> bool:
    """Organization and person identities always need a registration officer."""
    return kind in (SubjectKind.ORGANIZATION, SubjectKind.PERSON)


@dataclass(frozen=True)
class Principal:
    """Who did something: an identity (by certificate fingerprint), a local operator, a rule,
    or a node acting on its own schedule (CRL reissue, OCSP refresh)."""

    kind: Literal["identity", "local", "rule", "bootstrap", "node"]
    ident: str
    display: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.ident}"


def request_digest(
    *,
    ca: str,
    kind: SubjectKind,
    purpose: str,
    level: str,
    subject: Mapping[str, Any],
    public_key_der: bytes | None,
    lifetime_days: int | None,
    batch: int = 1,
) -> str:
    """The SHA-256 fingerprint of what a request asks for; decisions sign this digest."""
    content = {
        "ca": ca,
        "kind": kind.value,
        "purpose": purpose,
        "level": level,
        "subject": subject,
        "public_key": public_key_der.hex() if public_key_der else None,
        "lifetime_days": lifetime_days,
        "batch": batch,
    }
    return hashlib.sha256(canonical_json(content)).hexdigest()


@dataclass(frozen=True)
class Decision:
    """A registration officer's signed decision on one request."""

    request_id: str
    request_digest: str
    decision: Literal["approve", "reject"]
    at: datetime
    reason: str = ""
    statement_type: str = "trustbridge-release-decision/v1"

    def __post_init__(self) -> None:
        if self.decision not in ("approve", "reject"):
            raise InputError(f"decision {self.decision!r} must be approve or reject")
        object.__setattr__(self, "at", ensure_utc(self.at))

    def payload(self) -> bytes:
        """The exact bytes that are signed."""
        return canonical_json(
            {
                "type": self.statement_type,
                "request_id": self.request_id,
                "request_digest": self.request_digest,
                "decision": self.decision,
                "at": self.at.isoformat(),
                "reason": self.reason,
            }
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> Decision:
        try:
            data = json.loads(payload)
            return cls(
                request_id=data["request_id"],
                request_digest=data["request_digest"],
                decision=data["decision"],
                at=datetime.fromisoformat(data["at"]),
                reason=data.get("reason", ""),
                statement_type=data["type"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ApprovalError(f"decision statement is malformed: {exc}") from None
        except InputError as exc:
            raise ApprovalError(f"decision statement is malformed: {exc.message}") from None


def sign_statement(payload: bytes, signer: Signer) -> bytes:
    """Sign a statement (decision or enrolment) with the holder's key."""
    return sign_bytes(signer, payload)


def verify_statement_signature(
    certificate: x509.Certificate,
    payload: bytes,
    signature: bytes,
    *,
    public_key: CertificatePublicKeyTypes | None = None,
) -> None:
    """Raise :class:`ApprovalError` unless ``signature`` over ``payload`` verifies.

    ``public_key``: the certificate's key, where the caller has it decoded already.
    """
    try:
        if public_key is None:
            public_key = certificate.public_key()
        valid = signature_valid(public_key, payload, signature)
    except InputError as exc:
        who = certificate.subject.rfc4514_string()
        raise ApprovalError(f"certificate of {who}: {exc.message}") from None
    if not valid:
        who = certificate.subject.rfc4514_string()
        raise ApprovalError(
            f"the signature does not verify with the certificate of {who}",
            hint="sign with the private key that belongs to the certificate you present",
        )


@dataclass(frozen=True)
class VerifiedIdentity:
    """An identity whose certificate path and status the verifier has checked."""

    certificate: x509.Certificate
    roles: frozenset[Role]
    kind: SubjectKind | None

    @cached_property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.certificate)

    @cached_property
    def principal(self) -> Principal:
        return Principal("identity", self.fingerprint, self.certificate.subject.rfc4514_string())

    @cached_property
    def public_key(self) -> CertificatePublicKeyTypes:
        return self.certificate.public_key()

    @cached_property
    def organization_names(self) -> tuple[str, ...]:
        """The organizationName values of the subject."""
        return _attribute_values(self.certificate, x509.NameOID.ORGANIZATION_NAME)

    @cached_property
    def organization_identifiers(self) -> tuple[str, ...]:
        """The organizationIdentifier values of the subject (ETSI EN 319 412-1)."""
        return _attribute_values(self.certificate, ID_AT_ORGANIZATION_IDENTIFIER)


def _attribute_values(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> tuple[str, ...]:
    return tuple(
        a.value if isinstance(a.value, str) else a.value.decode(errors="replace")
        for a in certificate.subject.get_attributes_for_oid(oid)
    )


class IdentityVerifier(Protocol):
    """Validates a certificate (path, validity, revocation) and reports what it asserts."""

    def verify(self, certificate: x509.Certificate, at: datetime) -> VerifiedIdentity: ...


def check_officer_decision(
    *,
    decision: Decision,
    signature: bytes,
    officer: x509.Certificate,
    verifier: IdentityVerifier,
    request_id: str,
    expected_digest: str,
    requester: Principal,
    holder_key_fingerprint: str | None,
    at: datetime,
) -> VerifiedIdentity:
    """Accept a registration officer's decision, or raise :class:`ApprovalError`.

    Checks, in order: the statement names this request and its exact content; it is fresh;
    the signature verifies with the officer's certificate; the certificate validates and
    carries the registration-officer role; the officer is not the requester and not the
    holder of the identity being released (four eyes).
    """
    if decision.statement_type != "trustbridge-release-decision/v1":
        raise ApprovalError(f"statement type {decision.statement_type!r} is not a release decision")
    if decision.request_id != request_id:
        raise ApprovalError(f"the decision is for request {decision.request_id}, not {request_id}")
    if decision.request_digest != expected_digest:
        raise ApprovalError(
            f"the decision was signed for different content of request {request_id}",
            hint="show the request again and sign the digest it displays",
        )
    at = ensure_utc(at)
    if decision.at > at + DECISION_MAX_SKEW:
        raise ApprovalError(f"the decision is dated in the future ({decision.at.isoformat()})")
    if at - decision.at > DECISION_MAX_AGE:
        raise ApprovalError(
            f"the decision was signed at {decision.at.isoformat()}, more than "
            f"{DECISION_MAX_AGE} ago",
            hint="sign a fresh decision",
        )
    verify_statement_signature(officer, decision.payload(), signature)
    identity = verifier.verify(officer, at)
    if Role.REGISTRATION_OFFICER not in identity.roles:
        raise ApprovalError(
            f"{officer.subject.rfc4514_string()} does not hold the registration-officer role",
            hint="only a person identity with the registration-officer role policy may decide",
        )
    if requester.kind == "identity" and requester.ident == identity.fingerprint:
        raise ApprovalError(
            "four-eyes rule: the requester cannot approve their own request",
            hint="ask another registration officer",
        )
    if holder_key_fingerprint is not None and (
        key_fingerprint(officer.public_key()) == holder_key_fingerprint
    ):
        raise ApprovalError(
            "four-eyes rule: an officer cannot release an identity for their own key"
        )
    return identity


def enrolment_subject_organization(subject: Subject) -> str:
    """The organization that makes (machine) or runs (software) the subject."""
    if isinstance(subject, MachineSubject):
        return subject.manufacturer
    if isinstance(subject, SoftwareSubject):
        return subject.organization
    raise ApprovalError(f"{subject.kind} identities cannot be released by an enrolment rule")


def check_enrolment_credential(subject: Subject, credential: VerifiedIdentity) -> None:
    """Accept an organization identity as enrolment credential for ``subject``, or raise.

    The credential must be an organization identity of the organization that makes the
    machine or runs the software (matched on organizationName and, for software, on the
    organizationIdentifier).
    """
    organization = enrolment_subject_organization(subject)
    if credential.kind is not SubjectKind.ORGANIZATION:
        raise ApprovalError(
            "an enrolment credential must be an organization identity, not "
            f"{credential.kind or 'a foreign certificate'}"
        )
    org_names = credential.organization_names
    if organization not in org_names:
        raise ApprovalError(
            f"enrolment credential of {', '.join(map(str, org_names))} cannot enrol "
            f"identities of {organization}"
        )
    if isinstance(subject, SoftwareSubject):
        ids = credential.organization_identifiers
        if subject.organization_identifier not in ids:
            raise ApprovalError(
                f"enrolment credential's organization identifier {list(ids)} does not match "
                f"{subject.organization_identifier}"
            )
