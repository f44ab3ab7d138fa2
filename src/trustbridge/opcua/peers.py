"""Deciding on a session's peer: its application instance certificate, then its trust.

:func:`verify_peer` is the decision, synchronous and without OPC UA machinery: the certificate
checks of :mod:`trustbridge.opcua.certificates`, then the trust resolver (the bridge route or the
trust-list route, revocation required). :class:`PeerValidator` runs it for a live session: a
fresh resolver per session (so that a revocation shows on the next connection), the validation
in a worker thread (path validation runs its own event loop), every verdict recorded and every
refusal logged with its reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from trustbridge.clock import Clock, ensure_utc
from trustbridge.errors import ValidationError
from trustbridge.opcua.certificates import (
    PeerRefusedError,
    PeerRole,
    check_host,
    check_instance_certificate,
)
from trustbridge.trust.resolver import (
    InsufficientLevelError,
    Resolution,
    TrustResolver,
    UntrustedError,
)
from trustbridge.trust.validation import RevocationMode

__all__ = ["LOGGER", "PeerValidator", "PeerVerdict", "verify_peer"]

#: Where accepted peers (INFO) and refusals with their reasons (WARNING) are logged. Quiet
#: unless the application configures logging (no last-resort output on stderr).
LOGGER = logging.getLogger("trustbridge.opcua")
LOGGER.addHandler(logging.NullHandler())

#: The status code of an accepted peer.
GOOD = "Good"


@dataclass(frozen=True)
class PeerVerdict:
    """What a relying party decided on a peer, and why."""

    role: PeerRole
    #: The peer certificate's subject (RFC 4514).
    subject: str
    #: SHA-256 of the peer's certificate (hex).
    fingerprint: str
    #: The application URI the peer described itself with.
    application_uri: str
    accepted: bool
    #: ``Good``, or the OPC UA status code of the refusal.
    status: str
    #: Why: the refusal's reason, or the resolution's route and levels.
    reason: str
    at: datetime
    resolution: Resolution | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "role": self.role.value,
            "identity": self.subject,
            "fingerprint": self.fingerprint,
            "application_uri": self.application_uri,
            "accepted": self.accepted,
            "status": self.status,
            "reason": self.reason,
            "at": self.at.isoformat(),
        }
        resolution = self.resolution
        if resolution is not None:
            data["route"] = resolution.route.value
            data["holder_level"] = str(resolution.holder_level)
            data["own_level"] = str(resolution.own_level) if resolution.own_level else None
            data["reference_level"] = (
                str(resolution.reference_level) if resolution.reference_level else None
            )
            data["path"] = [c.subject.rfc4514_string() for c in resolution.path]
            data["routes"] = {
                o.route.value: (str(o.reference_level) if o.error is None else f"failed: {o.error}")
                for o in resolution.routes
            }
        return data


def _fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def _trust_status(exc: ValidationError) -> str:
    """The status code of a resolver refusal: revoked where a route failed on revocation."""
    texts = [exc.message]
    if isinstance(exc, UntrustedError):
        texts += [o.error or "" for o in exc.routes]
    if any("revoked" in text.lower() for text in texts):
        return "BadCertificateRevoked"
    return "BadCertificateUntrusted"


def _refused(
    role: PeerRole, peer: str, reason: str, status: str, *, hint: str | None = None
) -> PeerRefusedError:
    return PeerRefusedError(
        f"{role} {peer}: {reason}", status=status, peer=peer, reason=reason, hint=hint
    )


def _without(peer: str, message: str) -> str:
    """The resolver's message without the subject it starts with (the verdict names it)."""
    return message[len(peer) :].lstrip(" :") if message.startswith(peer) else message


def verify_peer(
    certificate: x509.Certificate,
    *,
    role: PeerRole,
    application_uri: str,
    resolver: TrustResolver,
    at: datetime,
    application_type: str | None = None,
    expected_uri: str | None = None,
    host: str | None = None,
    min_level: str | None = None,
) -> PeerVerdict:
    """Decide on a peer in ``role``; return the accepted verdict or raise
    :class:`~trustbridge.opcua.certificates.PeerRefusedError`.

    ``expected_uri`` pins the peer's application URI (a client that dials a known station);
    ``host`` is the host of the endpoint a client dialled (servers only); ``min_level`` a
    reference level the peer's identity must reach. ``resolver`` must require revocation
    information: one that does not is refused (fail closed).
    """
    at = ensure_utc(at)
    peer = certificate.subject.rfc4514_string()
    if resolver.revocation is not RevocationMode.REQUIRE:
        raise _refused(
            role,
            peer,
            "not checked, the resolver does not require revocation information "
            f"(mode {resolver.revocation})",
            "BadCertificateRevocationUnknown",
            hint="use a resolver with RevocationMode.REQUIRE (the default)",
        )
    check_instance_certificate(
        certificate, role=role, application_uri=application_uri, application_type=application_type
    )
    if expected_uri is not None and application_uri != expected_uri:
        raise _refused(
            role,
            peer,
            f"application URI {application_uri!r} is not the expected {expected_uri!r}",
            "BadCertificateUriInvalid",
        )
    if host is not None:
        check_host(certificate, host)
    try:
        resolution = resolver.resolve(certificate, at=at, min_level=min_level)
    except InsufficientLevelError as exc:
        raise _refused(role, peer, exc.message, "BadCertificateUntrusted") from None
    except ValidationError as exc:
        reason = _without(peer, exc.message)
        raise _refused(role, peer, reason, _trust_status(exc), hint=exc.hint) from None
    reference = resolution.reference_level or "no reference level"
    return PeerVerdict(
        role=role,
        subject=peer,
        fingerprint=_fingerprint(certificate),
        application_uri=application_uri,
        accepted=True,
        status=GOOD,
        reason=f"trusted by the {resolution.route} route at {resolution.holder_level} "
        f"({reference})",
        at=at,
        resolution=resolution,
    )


@dataclass
class PeerValidator:
    """Decides on the peers of live sessions: one relying party's side of OPC UA.

    ``resolver`` makes a fresh :class:`TrustResolver` for each session (``home.trust.resolver``,
    say), so that a revocation, a new trust list or a withdrawn service shows on the next
    connection. Verdicts are kept in :attr:`verdicts` and handed to ``on_verdict``.
    """

    #: The role the peers play (a server's validator checks clients).
    role: PeerRole
    resolver: Callable[[], TrustResolver]
    clock: Clock
    min_level: str | None = None
    expected_uri: str | None = None
    host: str | None = None
    on_verdict: Callable[[PeerVerdict], None] | None = None
    verdicts: list[PeerVerdict] = field(default_factory=list)

    @property
    def refusals(self) -> list[PeerVerdict]:
        return [v for v in self.verdicts if not v.accepted]

    def refuse(
        self,
        certificate: x509.Certificate,
        application_uri: str,
        reason: str,
        *,
        status: str,
        at: datetime | None = None,
    ) -> PeerVerdict:
        """Record and log a refusal (one decided outside :func:`verify_peer` too: a
        session-level one)."""
        verdict = PeerVerdict(
            role=self.role,
            subject=certificate.subject.rfc4514_string(),
            fingerprint=_fingerprint(certificate),
            application_uri=application_uri,
            accepted=False,
            status=status,
            reason=reason,
            at=at or self.clock.now(),
        )
        self._record(verdict)
        return verdict

    async def check(
        self,
        certificate: x509.Certificate,
        application_uri: str,
        *,
        application_type: str | None = None,
    ) -> PeerVerdict:
        """Decide on a peer (never raises for a refusal: the verdict says so)."""
        at = self.clock.now()
        try:
            resolver = self.resolver()
            verdict = await asyncio.to_thread(
                verify_peer,
                certificate,
                role=self.role,
                application_uri=application_uri,
                application_type=application_type,
                resolver=resolver,
                at=at,
                expected_uri=self.expected_uri,
                host=self.host,
                min_level=self.min_level,
            )
        except PeerRefusedError as exc:
            return self.refuse(certificate, application_uri, exc.reason, status=exc.status, at=at)
        except Exception as exc:  # fail closed: whatever broke, the peer is not accepted
            reason = f"not checked, the check failed with {type(exc).__name__}: {exc}"
            return self.refuse(
                certificate, application_uri, reason, status="BadCertificateUntrusted", at=at
            )
        self._record(verdict)
        return verdict

    def _record(self, verdict: PeerVerdict) -> None:
        self.verdicts.append(verdict)
        if verdict.accepted:
            LOGGER.info("accepted OPC UA %s %s: %s", self.role, verdict.subject, verdict.reason)
        else:
            LOGGER.warning(
                "refused OPC UA %s %s (%s): %s",
                self.role,
                verdict.subject,
                verdict.status,
                verdict.reason,
            )
        if self.on_verdict is not None:
            self.on_verdict(verdict)
