"""Who is looking at the web UI, what they may do, and the guard of state-changing forms.

An operator or registration officer logs in with the TLS client certificate of their person
identity. The certificate is judged exactly as the signed administrative API judges a caller's
(:meth:`Home.verify_identity`: issued by this home, a path to the home's anchors, status good in
the database, roles read from the certificate), so a revocation logs the holder out on their
next click. The roles needed per page are the API's (:data:`STAFF`, :data:`OPERATORS`,
:data:`OFFICERS` of :mod:`trustbridge.node.admin`).

The browser sends the client certificate with every request, cross-site ones too, so a form
that changes state carries a token bound to that certificate (an HMAC under a secret of the
node, with its time of issue) and must come from the UI's own origin (``Origin`` or
``Sec-Fetch-Site``); either check failing refuses the request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from trustbridge.credentials.verify import organization_identifier_of
from trustbridge.errors import (
    AccessDeniedError,
    AuthenticationError,
    TrustbridgeError,
    ValidationError,
)
from trustbridge.home import Home
from trustbridge.pki.ca import certificate_fingerprint
from trustbridge.pki.profiles import Role, SubjectKind, roles_of
from trustbridge.pki.release import VerifiedIdentity

__all__ = [
    "CSRF_LIFETIME",
    "CsrfGuard",
    "MemberRoles",
    "Viewer",
    "check_same_origin",
    "require",
    "viewer_of",
]

#: How long a form token stays good (a page left open longer is reloaded).
CSRF_LIFETIME = timedelta(hours=8)
_CSRF_CONTEXT = b"trustbridge-ui-csrf/v1"
_SECRET_FILE = Path("ui") / "csrf-secret"


@dataclass(frozen=True)
class Viewer:
    """The person at the browser: the certificate presented, and what the home made of it."""

    certificate: x509.Certificate | None = None
    identity: VerifiedIdentity | None = None
    #: Why a presented certificate was not accepted.
    problem: str | None = None
    #: A person of a company node's own organization (not an identity the node issued).
    member: bool = False

    @property
    def logged_in(self) -> bool:
        return self.identity is not None

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string() if self.certificate is not None else ""

    @property
    def name(self) -> str:
        """The certificate's common name (its whole subject where it has none)."""
        if self.certificate is None:
            return ""
        names = self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(names[0].value) if names else self.subject

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted(self.identity.roles)) if self.identity is not None else ()

    def has(self, roles: frozenset[Role]) -> bool:
        """Whether the viewer is logged in and holds one of ``roles`` (any role if empty)."""
        if self.identity is None:
            return False
        if self.member:
            return isinstance(roles, MemberRoles)
        return not roles or bool(self.identity.roles & roles)


class MemberRoles(frozenset[Role]):
    """Roles for the pages of a company node's own business (partners, contracts, messages):
    held by the node's operators, and also by every person of the node's own organization."""


def viewer_of(home: Home, certificate: x509.Certificate | None) -> Viewer:
    """The viewer a TLS client certificate makes, judged as the administrative API does; on a
    company node (one set up for the exchange), a person identity of the node's own
    organization, resolved by the node's trust resolver, logs in as a member."""
    if certificate is None:
        return Viewer()
    try:
        identity = home.verify_identity(certificate)
    except ValidationError as exc:
        if not home.exchange.configured:
            return Viewer(certificate, problem=exc.message)
        return _member(home, certificate)
    return Viewer(certificate, identity)


def _member(home: Home, certificate: x509.Certificate) -> Viewer:
    """A person of the company node's organization, or the reason it is not one."""
    exchange = home.exchange
    try:
        own = exchange.organization()
    except TrustbridgeError as exc:
        return Viewer(certificate, problem=exc.message)

    def foreign(organization: str | None) -> Viewer:
        return Viewer(
            certificate,
            problem=f"the person belongs to {organization or 'no organization'}, not to "
            f"this node's organization {own}",
        )

    # Refused on what the certificate names before it is resolved: a resolution builds paths
    # and fetches CRLs and OCSP answers, and every person under the node's anchors (any
    # organization of the schemes it trusts) may present a certificate, on any page.
    claimed = organization_identifier_of(certificate)
    if not own or claimed != own:
        return foreign(claimed)
    try:
        party, _ = exchange.resolve_party(
            [certificate], kinds=frozenset({SubjectKind.PERSON}), what="the person"
        )
    except TrustbridgeError as exc:
        return Viewer(certificate, problem=exc.message)
    if party.organization != own:
        return foreign(party.organization)
    identity = VerifiedIdentity(certificate, roles_of(certificate), SubjectKind.PERSON)
    return Viewer(certificate, identity, member=True)


def require(viewer: Viewer, roles: frozenset[Role], operation: str) -> VerifiedIdentity:
    """The viewer's identity if it holds one of ``roles``; raise 401 or 403 errors otherwise."""
    if viewer.identity is None:
        if viewer.certificate is None:
            raise AuthenticationError(
                f"to {operation}, log in with the TLS client certificate of your person identity",
                hint="import your certificate and key into the browser (PKCS#12) and reload",
            )
        raise AuthenticationError(
            f"the certificate {viewer.subject} cannot log in here: {viewer.problem}",
            hint="log in with a current person identity issued by this node's CAs",
        )
    if not viewer.has(roles):
        needed = " or ".join(sorted(r.value for r in roles))
        raise AccessDeniedError(
            f"{viewer.subject} may not {operation}: that needs the {needed} role",
            hint=f"the certificate holds {', '.join(viewer.roles) or 'no role'}",
        )
    return viewer.identity


def check_same_origin(headers: Mapping[str, str], origin: str) -> None:
    """Refuse a state-changing request unless the browser says it comes from ``origin``.

    ``Sec-Fetch-Site`` (where sent) must be ``same-origin`` and ``Origin`` (where sent) must be
    ``origin``; a request with neither header is refused too (browsers send ``Origin`` with
    every POST).
    """
    site = headers.get("sec-fetch-site")
    sent = headers.get("origin")
    if site is None and sent is None:
        raise AccessDeniedError(
            "the form was sent without an Origin header: refused (cross-site request forgery "
            "protection)",
            hint="send the form from the node's own pages in a current browser",
        )
    if site is not None and site != "same-origin":
        raise AccessDeniedError(
            f"the form came from another site (Sec-Fetch-Site: {site}): refused",
            hint="send the form from the node's own pages",
        )
    if sent is not None and sent != origin:
        raise AccessDeniedError(
            f"the form came from {sent}, not from {origin}: refused",
            hint="send the form from the node's own pages",
        )


class CsrfGuard:
    """Form tokens bound to a client certificate: ``<issued>.<HMAC>`` under the node's secret.

    The secret is a file in the home (``ui/csrf-secret``, mode 600), made on first use, so
    tokens survive a restart of the node; nodes with homes of their own do not accept each
    other's tokens (the form is reloaded).
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a CSRF secret needs at least 32 bytes")
        self._secret = secret

    @classmethod
    def for_home(cls, home: Home) -> CsrfGuard:
        path = home.path / _SECRET_FILE
        path.parent.mkdir(mode=0o700, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(bytes.fromhex(path.read_text().strip()))
        secret = secrets.token_bytes(32)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret.hex() + "\n")
        return cls(secret)

    def _mac(self, certificate: x509.Certificate, issued: int) -> bytes:
        message = b"|".join(
            (_CSRF_CONTEXT, certificate_fingerprint(certificate).encode(), str(issued).encode())
        )
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def token(self, certificate: x509.Certificate, at: datetime) -> str:
        issued = int(at.timestamp())
        mac = base64.urlsafe_b64encode(self._mac(certificate, issued)).decode().rstrip("=")
        return f"{issued}.{mac}"

    def check(self, token: str, certificate: x509.Certificate, at: datetime) -> None:
        """Raise :class:`AccessDeniedError` unless ``token`` was made for ``certificate`` and
        is at most :data:`CSRF_LIFETIME` old."""
        issued_text, _, mac_text = token.partition(".")
        try:
            issued = int(issued_text)
            mac = base64.urlsafe_b64decode(mac_text + "=" * (-len(mac_text) % 4))
        except (ValueError, binascii.Error):
            issued, mac = 0, b""
        if not mac or not hmac.compare_digest(mac, self._mac(certificate, issued)):
            raise AccessDeniedError(
                "the form's token does not belong to your certificate: refused (cross-site "
                "request forgery protection)",
                hint="reload the page and send the form again",
            )
        age = at.timestamp() - issued
        if age > CSRF_LIFETIME.total_seconds() or age < -300:
            raise AccessDeniedError(
                "the form's token has expired", hint="reload the page and send the form again"
            )
