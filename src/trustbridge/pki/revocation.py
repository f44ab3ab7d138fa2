"""Revocation: reasons, CRLs (full and delta, RFC 5280 5), OCSP (RFC 6960, RFC 5019 profile).

Pure functions over values: the status of certificates comes in as :class:`StatusEntry`
records, the time as a parameter; what is signed comes back as DER. Storing and serving them is
the adapters' business.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from asn1crypto import keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError, ProfileError
from trustbridge.pki.keys import hash_for
from trustbridge.pki.signers import Signer

__all__ = [
    "CertStatus",
    "CrlSpec",
    "OcspQuery",
    "OcspSigner",
    "Reason",
    "StatusEntry",
    "build_crl",
    "check_ocsp_responder_certificate",
    "OcspRequestError",
    "hash_names",
    "issuer_hashes",
    "ocsp_error",
    "parse_ocsp_request",
]


class Reason(enum.StrEnum):
    """RFC 5280 5.3.1 reason codes, by the names the command line uses."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key-compromise"
    CA_COMPROMISE = "ca-compromise"
    AFFILIATION_CHANGED = "affiliation-changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation-of-operation"
    CERTIFICATE_HOLD = "certificate-hold"
    PRIVILEGE_WITHDRAWN = "privilege-withdrawn"
    AA_COMPROMISE = "aa-compromise"

    @property
    def flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags[self.value.replace("-", "_")]

    @classmethod
    def parse(cls, text: str) -> Reason:
        try:
            return cls(text.strip().lower().replace("_", "-"))
        except ValueError:
            choices = ", ".join(r.value for r in cls if r is not cls.CERTIFICATE_HOLD)
            raise InputError(
                f"unknown revocation reason {text!r}",
                hint=f"choose from: {choices} (suspend puts a certificate on hold)",
            ) from None


class CertStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    ON_HOLD = "on-hold"


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """One certificate's revocation state, as a CRL or an OCSP response states it."""

    serial: int
    status: CertStatus
    revoked_at: datetime | None = None
    reason: Reason | None = None
    invalidity_date: datetime | None = None


# -- CRLs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrlSpec:
    """What a CRL says besides its entries."""

    number: int
    this_update: datetime
    next_update: datetime
    #: The full CRL's number this delta CRL builds on; None for a full CRL.
    delta_base: int | None = None
    #: Where the delta CRLs are (FreshestCRL in a full CRL).
    delta_url: str | None = None

    def __post_init__(self) -> None:
        if self.number < 0:
            raise InputError(f"CRL number {self.number} must not be negative")
        if self.next_update <= self.this_update:
            raise InputError("a CRL's nextUpdate must lie after its thisUpdate")
        if self.delta_base is not None and self.delta_base >= self.number:
            raise InputError("a delta CRL's base must be an earlier CRL number")


def build_crl(
    *,
    issuer: x509.Certificate,
    signer: Signer,
    entries: Iterable[StatusEntry],
    spec: CrlSpec,
) -> bytes:
    """A signed CRL (DER) of ``issuer`` listing ``entries``.

    The CRLs are of full scope (no issuingDistributionPoint): one CRL covers every certificate
    of the CA, the CA certificate itself included, which is what ``openssl verify
    -crl_check_all`` and other relying parties expect.

    In a full CRL, entries with status ``good`` are skipped. In a delta CRL they mean
    "released from hold" and are listed with reason ``removeFromCRL`` (RFC 5280 5.2.4).
    """
    revoked: list[x509.RevokedCertificate] = []
    delta = spec.delta_base is not None
    for entry in entries:
        if entry.status is CertStatus.GOOD:
            if not delta or entry.revoked_at is None:
                continue
            revoked.append(_removal(entry))
        else:
            revoked.append(_revoked_entry(entry))
    extensions: list[x509.Extension[x509.ExtensionType]] = [
        x509.Extension(_AKI, False, _aki(issuer)),
        x509.Extension(_CRL_NUMBER, False, x509.CRLNumber(spec.number)),
    ]
    if delta:
        assert spec.delta_base is not None
        extensions.append(x509.Extension(_DELTA, True, x509.DeltaCRLIndicator(spec.delta_base)))
    if spec.delta_url and not delta:
        extensions.append(
            x509.Extension(
                _FRESHEST,
                False,
                x509.FreshestCRL(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(spec.delta_url)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
            )
        )
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=ensure_utc(spec.this_update),
        next_update=ensure_utc(spec.next_update),
        extensions=extensions,
        revoked_certificates=revoked,
    )
    crl = builder.sign(signer.private_key, hash_for(signer.key_type))
    return crl.public_bytes(Encoding.DER)


_AKI = x509.AuthorityKeyIdentifier.oid
_CRL_NUMBER = x509.CRLNumber.oid
_DELTA = x509.DeltaCRLIndicator.oid
_FRESHEST = x509.FreshestCRL.oid
_REASONS = {r: x509.CRLReason(r.flag) for r in Reason}
_REMOVE = x509.CRLReason(x509.ReasonFlags.remove_from_crl)


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]


def _revoked_entry(entry: StatusEntry) -> x509.RevokedCertificate:
    if entry.revoked_at is None:
        raise InputError(f"revoked serial {entry.serial:x} has no revocation time")
    reason = Reason.CERTIFICATE_HOLD if entry.status is CertStatus.ON_HOLD else entry.reason
    builder = x509.RevokedCertificateBuilder(entry.serial, entry.revoked_at)
    # RFC 5280 5.3.1: the reason code "unspecified" SHOULD be absent.
    if reason is not None and reason is not Reason.UNSPECIFIED:
        builder = builder.add_extension(_REASONS[reason], critical=False)
    if entry.invalidity_date is not None:
        builder = builder.add_extension(x509.InvalidityDate(entry.invalidity_date), critical=False)
    return builder.build()


def _removal(entry: StatusEntry) -> x509.RevokedCertificate:
    assert entry.revoked_at is not None
    return (
        x509.RevokedCertificateBuilder(entry.serial, entry.revoked_at)
        .add_extension(_REMOVE, critical=False)
        .build()
    )


# -- OCSP --------------------------------------------------------------------------------------

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


def issuer_hashes(issuer: x509.Certificate) -> dict[str, tuple[bytes, bytes]]:
    """Per CertID hash algorithm: (issuerNameHash, issuerKeyHash) of ``issuer`` (RFC 6960 4.1.1)."""
    name_der = issuer.subject.public_bytes()
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key_bits = _subject_public_key_bits(spki)
    return {
        name: (hashlib.new(name, name_der).digest(), hashlib.new(name, key_bits).digest())
        for name in _HASHES
    }


def _subject_public_key_bits(spki: bytes) -> bytes:
    """The value of the subjectPublicKey BIT STRING (without the unused-bits octet)."""
    info = keys.PublicKeyInfo.load(spki)
    bits: bytes = info["public_key"].contents
    return bits[1:]


@dataclass(frozen=True)
class OcspQuery:
    """A parsed single-certificate OCSP request."""

    hash_name: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    nonce: bytes | None


class OcspRequestError(InputError):
    """An OCSP request the responder cannot read (answered with ``malformedRequest``)."""


def parse_ocsp_request(der: bytes) -> OcspQuery:
    """Read an OCSP request for one certificate; raises :class:`OcspRequestError`."""
    try:
        request = ocsp.load_der_ocsp_request(der)
        algorithm = request.hash_algorithm
        name_hash = request.issuer_name_hash
        key_hash = request.issuer_key_hash
        serial = request.serial_number
    except (ValueError, TypeError) as exc:
        raise OcspRequestError(f"OCSP request is not readable: {exc}") from None
    hash_name = algorithm.name
    if hash_name not in _HASHES:
        raise OcspRequestError(f"OCSP request uses unsupported CertID hash {hash_name}")
    nonce: bytes | None = None
    try:
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                nonce = extension.value.nonce
            elif extension.critical:
                raise OcspRequestError(
                    f"OCSP request has an unsupported critical extension {extension.oid}"
                )
    except ValueError as exc:
        raise OcspRequestError(f"OCSP request has unreadable extensions: {exc}") from None
    if nonce is not None and not 1 <= len(nonce) <= 128:
        raise OcspRequestError(f"OCSP nonce of {len(nonce)} octets (RFC 8954: 1 to 128)")
    return OcspQuery(hash_name, name_hash, key_hash, serial, nonce)


def ocsp_error(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned OCSP error response (malformedRequest, unauthorized, tryLater...)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)


def check_ocsp_responder_certificate(
    certificate: x509.Certificate, issuer: x509.Certificate
) -> None:
    """Fail closed unless ``certificate`` is a delegated responder of ``issuer``.

    RFC 6960 4.2.2.2: issued by the CA itself, with ``id-kp-OCSPSigning``; ours also carry
    ``id-pkix-ocsp-nocheck``.
    """
    who = certificate.subject.rfc4514_string()
    if certificate.issuer != issuer.subject:
        issuer_name = issuer.subject.rfc4514_string()
        raise ProfileError(f"OCSP responder {who} is not issued by {issuer_name}")
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise ProfileError(f"OCSP responder {who} has no extended key usage") from None
    if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        raise ProfileError(f"OCSP responder {who} lacks id-kp-OCSPSigning")
    try:
        certificate.extensions.get_extension_for_class(x509.OCSPNoCheck)
    except x509.ExtensionNotFound:
        raise ProfileError(f"OCSP responder {who} lacks id-pkix-ocsp-nocheck") from None


@dataclass(frozen=True)
class OcspSigner:
    """A CA's delegated OCSP responder: its certificate and key, and how long answers live."""

    issuer: x509.Certificate
    certificate: x509.Certificate
    signer: Signer
    validity: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        check_ocsp_responder_certificate(self.certificate, self.issuer)

    @cached_property
    def hashes(self) -> dict[str, tuple[bytes, bytes]]:
        return issuer_hashes(self.issuer)

    def matches(self, query: OcspQuery) -> bool:
        return self.hashes.get(query.hash_name) == (query.issuer_name_hash, query.issuer_key_hash)

    def respond(
        self,
        entry: StatusEntry | None,
        *,
        serial: int,
        hash_name: str,
        at: datetime,
        nonce: bytes | None = None,
    ) -> tuple[bytes, datetime]:
        """A signed response for ``serial`` (``entry`` None: unknown); returns (DER, nextUpdate)."""
        at = ensure_utc(at).replace(microsecond=0)
        next_update = min(at + self.validity, self.certificate.not_valid_after_utc)
        name_hash, key_hash = self.hashes[hash_name]
        revocation_time: datetime | None = None
        revocation_reason: x509.ReasonFlags | None = None
        if entry is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif entry.status is CertStatus.GOOD:
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = entry.revoked_at
            reason = Reason.CERTIFICATE_HOLD if entry.status is CertStatus.ON_HOLD else entry.reason
            revocation_reason = reason.flag if reason is not None else None
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash,
                issuer_key_hash=key_hash,
                serial_number=serial,
                algorithm=_HASHES[hash_name](),
                cert_status=status,
                this_update=at,
                next_update=next_update,
                revocation_time=revocation_time,
                revocation_reason=revocation_reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.certificate)
            .certificates([self.certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(self.signer.private_key, hash_for(self.signer.key_type))
        return response.public_bytes(Encoding.DER), next_update


def hash_names() -> Sequence[str]:
    """The CertID hash algorithms responses are pre-signed for."""
    return tuple(_HASHES)
