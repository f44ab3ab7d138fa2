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

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError, ProfileError
from trustbridge.pki import der
from trustbridge.pki.ca import url_distribution_point
from trustbridge.pki.keys import KeyType, hash_for
from trustbridge.pki.signers import Signer, sign_bytes

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
    algorithm = _SIGNATURE_ALGORITHMS[signer.key_type]
    tbs = _tbs_cert_list(issuer, algorithm, entries, spec)
    signature = sign_bytes(signer, tbs)
    # RFC 5280 5.1.1: CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm,
    # signatureValue BIT STRING } (no unused bits).
    bits = der.header(_BIT_STRING, len(signature) + 1) + b"\x00" + signature
    return b"".join(
        [der.header(_SEQUENCE, len(tbs) + len(algorithm) + len(bits)), tbs, algorithm, bits]
    )


# CRLs are DER-encoded here rather than with cryptography's CertificateRevocationListBuilder,
# which wants a RevokedCertificate object per entry: for a CA with a million revocations that
# was most of the time of a CRL (bench/crl.py). tests/pki/test_crl_encoding.py checks that the
# TBSCertList is byte for byte the builder's.

_SEQUENCE = 0x30
_BIT_STRING = 0x03
_OCTET_STRING = 0x04
_OID = 0x06
_EXPLICIT_0 = 0xA0
#: cryptography's limit too: serials are positive and fit 20 octets (RFC 5280 4.1.2.2).
_SERIAL_LIMIT = 1 << 159


def _signature_algorithm(oid: x509.ObjectIdentifier, *, null_parameters: bool) -> bytes:
    return der.tlv(_SEQUENCE, der.oid(oid) + (b"\x05\x00" if null_parameters else b""))


#: The AlgorithmIdentifier of what :func:`~trustbridge.pki.signers.sign_bytes` makes per key
#: type: ECDSA without parameters (RFC 5758 3.2), RSA PKCS#1 v1.5 with NULL (RFC 4055 5),
#: Ed25519 without (RFC 8410 3).
_SIGNATURE_ALGORITHMS: dict[KeyType, bytes] = {
    KeyType.P256: _signature_algorithm(
        SignatureAlgorithmOID.ECDSA_WITH_SHA256, null_parameters=False
    ),
    KeyType.P384: _signature_algorithm(
        SignatureAlgorithmOID.ECDSA_WITH_SHA384, null_parameters=False
    ),
    KeyType.ED25519: _signature_algorithm(SignatureAlgorithmOID.ED25519, null_parameters=False),
    KeyType.RSA2048: _signature_algorithm(
        SignatureAlgorithmOID.RSA_WITH_SHA256, null_parameters=True
    ),
    KeyType.RSA3072: _signature_algorithm(
        SignatureAlgorithmOID.RSA_WITH_SHA256, null_parameters=True
    ),
}

# RFC 5280 5.3.1: the reason code "unspecified" SHOULD be absent.
_REASON_EXTENSIONS: dict[Reason | None, bytes] = {
    r: der.extension(x509.CRLReason(r.flag)) for r in Reason if r is not Reason.UNSPECIFIED
}
_REMOVE_FROM_CRL = der.extension(x509.CRLReason(x509.ReasonFlags.remove_from_crl))


def _tbs_cert_list(
    issuer: x509.Certificate, algorithm: bytes, entries: Iterable[StatusEntry], spec: CrlSpec
) -> bytes:
    """RFC 5280 5.1.2: the TBSCertList, version 2."""
    delta = spec.delta_base is not None
    extensions = [
        der.extension(_aki(issuer)),
        der.extension(x509.CRLNumber(spec.number)),
    ]
    if delta:
        assert spec.delta_base is not None
        extensions.append(der.extension(x509.DeltaCRLIndicator(spec.delta_base), critical=True))
    if spec.delta_url and not delta:
        extensions.append(der.extension(x509.FreshestCRL([url_distribution_point(spec.delta_url)])))
    crl_extensions = der.tlv(_EXPLICIT_0, der.tlv(_SEQUENCE, b"".join(extensions)))
    revoked = _revoked_certificates(entries, delta=delta)
    parts = [
        b"\x02\x01\x01",  # version v2
        algorithm,
        issuer.subject.public_bytes(),
        der.time(spec.this_update),
        der.time(spec.next_update),
        # RFC 5280 5.1.2.6: without revoked certificates the list is absent.
        der.header(_SEQUENCE, len(revoked)) if revoked else b"",
        revoked,
        crl_extensions,
    ]
    return b"".join([der.header(_SEQUENCE, sum(map(len, parts))), *parts])


def _revoked_certificates(entries: Iterable[StatusEntry], *, delta: bool) -> bytes:
    """The content octets of revokedCertificates (RFC 5280 5.1.2.6); empty for none.

    Every entry is shorter than 128 octets (a serial of at most 20 octets, a date of at most
    17, a reason of 12 and an invalidity date of 26), so its lengths take the short form.
    """
    encoded: list[bytes] = []
    append = encoded.append
    for entry in entries:
        status = entry.status
        if status is CertStatus.GOOD:
            if not delta or entry.revoked_at is None:
                continue
            extensions = _REMOVE_FROM_CRL  # RFC 5280 5.2.4: released from hold
        else:
            if entry.revoked_at is None:
                raise InputError(f"revoked serial {entry.serial:x} has no revocation time")
            reason = Reason.CERTIFICATE_HOLD if status is CertStatus.ON_HOLD else entry.reason
            extensions = _REASON_EXTENSIONS.get(reason, b"")
            if entry.invalidity_date is not None:
                extensions += der.extension(x509.InvalidityDate(entry.invalidity_date))
        serial = entry.serial
        if not 0 < serial < _SERIAL_LIMIT:
            raise InputError(f"serial {serial:x} is not a positive number of at most 20 octets")
        # X.690 8.3: big-endian two's complement, a leading zero octet where the top bit is set.
        number = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
        body = b"\x02%c%b%b" % (len(number), number, der.time(entry.revoked_at))
        if extensions:
            body += b"\x30%c%b" % (len(extensions), extensions)
        append(b"\x30%c%b" % (len(body), body))
    return b"".join(encoded)


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]


# -- OCSP --------------------------------------------------------------------------------------

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


def issuer_hashes(issuer: x509.Certificate) -> dict[str, tuple[bytes, bytes]]:
    """Per CertID hash algorithm: (issuerNameHash, issuerKeyHash) of ``issuer`` (RFC 6960 4.1.1)."""
    name_der = issuer.subject.public_bytes()
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key_bits = der.subject_public_key(spki)
    return {
        name: (hashlib.new(name, name_der).digest(), hashlib.new(name, key_bits).digest())
        for name in _HASHES
    }


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
