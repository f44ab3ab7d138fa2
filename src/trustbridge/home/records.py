"""Read-only views of what a home stores: CAs, requests, certificates, audit events."""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from trustbridge.pki.release import Principal

__all__ = [
    "AuditEvent",
    "CaInfo",
    "CertificateInfo",
    "Issued",
    "RequestInfo",
    "local_principal",
]


@dataclass(frozen=True)
class CaInfo:
    slug: str
    name: str
    scheme: str
    is_root: bool
    state: str
    certificate: x509.Certificate | None
    key_store: str
    key_ref: str
    key_type: str
    kinds: tuple[str, ...]
    levels: tuple[str, ...]
    roles: tuple[str, ...]
    path_length: int | None
    parent: str | None


@dataclass(frozen=True)
class RequestInfo:
    id: str
    ca: str
    kind: str
    purpose: str
    level: str
    subject: dict[str, Any]
    key_origin: str
    key_fingerprint: str | None
    lifetime_days: int | None
    batch_size: int
    digest: str
    state: str
    requested_by: str
    requested_by_display: str
    requested_at: datetime
    decided_by: str | None
    decided_by_display: str | None
    decided_at: datetime | None
    decision_rule: str | None
    decision_reason: str | None
    renewal_of: int | None


@dataclass(frozen=True)
class CertificateInfo:
    id: int
    serial: str
    ca: str
    kind: str
    purpose: str
    holder: str
    level: str
    not_before: datetime
    not_after: datetime
    status: str
    key_origin: str
    fingerprint: str
    key_fingerprint: str
    request_id: str | None
    issued_at: datetime
    issued_by: str
    renewal_of: int | None
    der: bytes
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    invalidity_date: datetime | None = None

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)

    @property
    def subject_dn(self) -> str:
        """The subject as an RFC 4514 string, read from the certificate."""
        return self.certificate.subject.rfc4514_string()


@dataclass(frozen=True)
class Issued:
    """The outcome of a released request: the certificates and, for CA-generated keys, the keys.

    Generated keys are handed out once and never stored.
    """

    request: RequestInfo
    certificates: tuple[x509.Certificate, ...]
    chain: tuple[x509.Certificate, ...]
    generated_keys: tuple[PrivateKeyTypes, ...] = ()


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    actor: str
    actor_display: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]


def local_principal() -> Principal:
    """The operator at this terminal, as recorded in the audit trail."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    host = socket.gethostname()
    return Principal("local", f"{user}@{host}", f"{user} on {host}")
