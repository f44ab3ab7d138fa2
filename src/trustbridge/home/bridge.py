"""The bridge construction in a home: cross-certify other domains' CAs, publish the results.

A CA of this home (a national root, or a bridge CA: a root of the ``itg`` reference scheme)
certifies another domain's CA with :func:`trustbridge.pki.cross.cross_certify`, mapping its own
levels onto the other's. Cross-certificates this home *issued* are published in the issuer's
SIA bundle ``/pki/<ca>/issued.p7c``; cross-certificates other domains issued *to* a CA here are
imported and published in its AIA bundle ``/pki/<ca>/issuers.p7c`` beside its own chain, so a
relying party that starts from any certificate this CA issued can discover the bridge path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import and_, insert, select
from sqlalchemy.exc import IntegrityError

from trustbridge.errors import DuplicateError, InputError, NotFoundError, ValidationError
from trustbridge.home.log import certificate_entry
from trustbridge.home.records import local_principal
from trustbridge.ledger.entries import EntryKind
from trustbridge.pki.ca import certificate_fingerprint, key_fingerprint
from trustbridge.pki.cross import (
    CrossCertificateSpec,
    PolicyMapping,
    cross_certify,
    policy_mappings_of,
)
from trustbridge.pki.release import Principal
from trustbridge.store import tables as t
from trustbridge.trust.schemes import parse_oid

if TYPE_CHECKING:
    from trustbridge.home.home import Home

__all__ = ["BridgeService", "CrossCertificateInfo", "ISSUED_BY", "ISSUED_TO"]

ISSUED_BY = "issued-by"
ISSUED_TO = "issued-to"


@dataclass(frozen=True)
class CrossCertificateInfo:
    ca: str
    direction: str
    subject: str
    issuer: str
    not_after: datetime
    fingerprint: str
    mappings: tuple[tuple[str, str], ...]
    certificate: x509.Certificate


class BridgeService:
    """Cross-certification of this home's CAs, and the bundles that publish it."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def level_oid(self, text: str) -> x509.ObjectIdentifier:
        """A level given by name (of any scheme this home knows) or as a dotted OID."""
        text = text.strip()
        if text[:1].isdigit():
            return parse_oid(text)
        for oid, (_scheme, name) in self.home._level_names().items():
            if name == text:
                return x509.ObjectIdentifier(oid)
        raise NotFoundError(
            f"no level named {text!r} in the schemes of this home",
            hint="give the level's OID, or record its scheme first (trustbridge scheme add)",
        )

    def parse_mappings(self, pairs: Sequence[str]) -> tuple[PolicyMapping, ...]:
        """``ISSUER_LEVEL=SUBJECT_LEVEL`` items (names or OIDs) as policy mappings."""
        mappings = []
        for pair in pairs:
            issuer, sep, subject = pair.partition("=")
            if not sep or not issuer.strip() or not subject.strip():
                raise InputError(
                    f"policy mapping {pair!r} is not ISSUER_LEVEL=SUBJECT_LEVEL",
                    hint="for example --map itg-loa3=jp-level3",
                )
            mappings.append(PolicyMapping(self.level_oid(issuer), self.level_oid(subject)))
        return tuple(mappings)

    def cross_certify(
        self,
        ca: str,
        subject: x509.Certificate,
        spec: CrossCertificateSpec,
        *,
        lifetime: timedelta = timedelta(days=5 * 365),
        actor: Principal | None = None,
    ) -> CrossCertificateInfo:
        """Certify another domain's CA from CA ``ca`` of this home; record and publish it."""
        home = self.home
        actor = actor or local_principal()
        authority = home.authority(ca)
        if subject.subject == authority.name and key_fingerprint(
            subject.public_key()
        ) == key_fingerprint(authority.signer.public_key):
            raise InputError(f"CA {ca} cannot cross-certify itself")
        certificate = cross_certify(authority, subject, spec, at=home.now(), lifetime=lifetime)
        return self._record(ca, ISSUED_BY, certificate, actor)

    def import_cross_certificate(
        self, certificate: x509.Certificate, *, actor: Principal | None = None
    ) -> CrossCertificateInfo:
        """Record a cross-certificate another domain issued to one of this home's CAs."""
        home = self.home
        actor = actor or local_principal()
        target = key_fingerprint(certificate.public_key())
        for info in home.cas():
            if info.certificate is None or info.certificate.subject != certificate.subject:
                continue
            if key_fingerprint(info.certificate.public_key()) != target:
                continue
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
            if not constraints.value.ca:
                raise InputError("the certificate to import is not a CA certificate")
            if certificate == info.certificate:
                raise InputError(
                    f"this is CA {info.slug}'s own certificate, not a cross-certificate"
                )
            return self._record(info.slug, ISSUED_TO, certificate, actor)
        raise ValidationError(
            f"no CA of this home has the name and key of {certificate.subject.rfc4514_string()}",
            hint="import cross-certificates into the home of the CA they certify",
        )

    def _record(
        self, ca: str, direction: str, certificate: x509.Certificate, actor: Principal
    ) -> CrossCertificateInfo:
        home = self.home
        fingerprint = certificate_fingerprint(certificate)
        mappings = [
            [m.issuer_domain.dotted_string, m.subject_domain.dotted_string]
            for m in policy_mappings_of(certificate)
        ]
        try:
            with home._tx() as conn:
                conn.execute(
                    insert(t.cross_certificates).values(
                        ca_id=home._ca_id(conn, ca),
                        direction=direction,
                        fingerprint=fingerprint,
                        subject=certificate.subject.rfc4514_string(),
                        issuer=certificate.issuer.rfc4514_string(),
                        not_after=certificate.not_valid_after_utc,
                        mappings=mappings,
                        der=certificate.public_bytes(Encoding.DER),
                        created_at=home.now(),
                        created_by=str(actor),
                    )
                )
                home._audit(
                    conn,
                    actor,
                    "ca.cross-certify" if direction == ISSUED_BY else "ca.cross-import",
                    "ca",
                    ca,
                    subject=certificate.subject.rfc4514_string(),
                    issuer=certificate.issuer.rfc4514_string(),
                    fingerprint=fingerprint,
                    mappings=mappings,
                )
                if direction == ISSUED_BY:
                    body = certificate_entry(certificate, ca=ca, kind="cross-certificate")
                    home.log.append(
                        EntryKind.CERTIFICATE_ISSUED,
                        {**body, "policy_mappings": mappings},
                        subject=body["serial"],
                        conn=conn,
                    )
        except IntegrityError:
            raise DuplicateError(
                f"cross-certificate {fingerprint[:16]}… is already recorded"
            ) from None
        return self._info(ca, direction, certificate)

    def _info(self, ca: str, direction: str, certificate: x509.Certificate) -> CrossCertificateInfo:
        return CrossCertificateInfo(
            ca=ca,
            direction=direction,
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            not_after=certificate.not_valid_after_utc,
            fingerprint=certificate_fingerprint(certificate),
            mappings=tuple(
                (
                    self.home.level_name(m.issuer_domain.dotted_string),
                    self.home.level_name(m.subject_domain.dotted_string),
                )
                for m in policy_mappings_of(certificate)
            ),
            certificate=certificate,
        )

    def cross_certificates(
        self, ca: str | None = None, *, direction: str | None = None
    ) -> list[CrossCertificateInfo]:
        """Recorded cross-certificates, oldest first."""
        query = (
            select(t.cross_certificates, t.authorities.c.slug)
            .join(t.authorities)
            .order_by(t.cross_certificates.c.id)
        )
        conditions = []
        if ca is not None:
            conditions.append(t.authorities.c.slug == ca)
        if direction is not None:
            conditions.append(t.cross_certificates.c.direction == direction)
        if conditions:
            query = query.where(and_(*conditions))
        with self.home.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            self._info(r.slug, r.direction, x509.load_der_x509_certificate(r.der)) for r in rows
        ]

    def issuers_bundle(self, ca: str) -> list[x509.Certificate]:
        """AIA ``issuers.p7c``: the CA's chain and every certificate others issued to it."""
        chain = list(self.home.chain_of(ca))
        return chain + [c.certificate for c in self.cross_certificates(ca, direction=ISSUED_TO)]

    def issued_bundle(self, ca: str) -> list[x509.Certificate]:
        """SIA ``issued.p7c``: CA certificates this CA issued (subordinates, cross-certificates)."""
        home = self.home
        subordinates = [
            info.certificate
            for info in home.cas()
            if info.parent == ca and info.certificate is not None
        ]
        crossed = [c.certificate for c in self.cross_certificates(ca, direction=ISSUED_BY)]
        return subordinates + crossed
