"""An RFC 3161 time-stamp authority: a DER ``TimeStampReq`` in, a DER ``TimeStampResp`` out.

The core is pure and synchronous: time comes from a clock, the key sits behind a
:class:`~trustbridge.pki.signers.Signer`, and the HTTP endpoint that carries the messages
(``application/timestamp-query`` in, ``application/timestamp-reply`` out) lives elsewhere.

A token is a CMS ``SignedData`` (RFC 5652) over a ``TSTInfo`` with the signed attributes
content-type, message-digest and signing-certificate-v2 (RFC 5816). Accepted message imprints
are SHA-256, SHA-384 and SHA-512; SHA-1 is refused (``badAlg``) because a time stamp over a
collision-prone digest proves little. Requests carrying extensions are refused
(``unacceptedExtension``): this authority knows none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from trustbridge.clock import Clock, ensure_utc
from trustbridge.errors import InputError, ProfileError
from trustbridge.pki.ca import random_serial
from trustbridge.pki.keys import KeyType
from trustbridge.pki.signers import Signer, sign_bytes

__all__ = [
    "TIMESTAMP_QUERY_MEDIA_TYPE",
    "TIMESTAMP_REPLY_MEDIA_TYPE",
    "TimestampAuthority",
    "check_tsa_certificate",
]

TIMESTAMP_QUERY_MEDIA_TYPE = "application/timestamp-query"
TIMESTAMP_REPLY_MEDIA_TYPE = "application/timestamp-reply"


@dataclass(frozen=True)
class _ImprintHash:
    name: str
    size: int


# RFC 3161 2.4.1: the hash algorithms whose message imprints we time-stamp, by OID.
_IMPRINT_HASHES = {
    "2.16.840.1.101.3.4.2.1": _ImprintHash("SHA-256", 32),
    "2.16.840.1.101.3.4.2.2": _ImprintHash("SHA-384", 48),
    "2.16.840.1.101.3.4.2.3": _ImprintHash("SHA-512", 64),
}
_ACCEPTED_HASH_NAMES = "SHA-256, SHA-384 or SHA-512"
_TIME_STAMPING = ExtendedKeyUsageOID.TIME_STAMPING


@dataclass(frozen=True)
class _Algorithms:
    """The CMS digest and signature algorithms a key type signs tokens with."""

    digest: str  # hashlib and asn1crypto name
    signature: str  # asn1crypto SignedDigestAlgorithmId name
    null_parameters: bool  # RFC 4055 2.1: RSA with SHA-2 carries NULL parameters


_ALGORITHMS = {
    KeyType.P256: _Algorithms("sha256", "sha256_ecdsa", null_parameters=False),
    KeyType.P384: _Algorithms("sha384", "sha384_ecdsa", null_parameters=False),
    KeyType.RSA2048: _Algorithms("sha256", "sha256_rsa", null_parameters=True),
    KeyType.RSA3072: _Algorithms("sha256", "sha256_rsa", null_parameters=True),
}
# Ed25519 is left out on purpose: the tokens would be valid CMS (RFC 8419), but OpenSSL's
# PKCS#7 code, which `openssl ts -verify` and rfc3161-client verify with, cannot check them.


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 2.4.2 TimeStampResp; asn1crypto's class wrongly requires the token."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class _RejectedError(Exception):
    """A request we answer with PKIStatus rejection."""

    def __init__(self, failure: str, text: str) -> None:
        super().__init__(text)
        self.failure = failure  # asn1crypto PKIFailureInfo bit name
        self.text = text


@dataclass(frozen=True)
class _Request:
    """The fields of an accepted TimeStampReq that go into the token."""

    message_imprint: tsp.MessageImprint
    nonce: int | None
    cert_req: bool


def check_tsa_certificate(certificate: x509.Certificate) -> None:
    """Refuse a TSA certificate unless its extended key usage is critical and timeStamping only.

    Raises :class:`~trustbridge.errors.ProfileError` otherwise (RFC 3161 2.3).
    """
    subject = certificate.subject.rfc4514_string()
    hint = "issue the TSA certificate with a critical extended key usage holding only timeStamping"
    try:
        extension = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise ProfileError(
            f"TSA certificate {subject!r} has no extended key usage extension", hint=hint
        ) from None
    except ValueError as exc:
        raise ProfileError(
            f"TSA certificate {subject!r} has extensions that cannot be read: {exc}", hint=hint
        ) from exc
    if not extension.critical:
        raise ProfileError(
            f"TSA certificate {subject!r} has a non-critical extended key usage extension",
            hint=hint,
        )
    purposes = list(extension.value)
    if purposes != [_TIME_STAMPING]:
        names = ", ".join(purpose.dotted_string for purpose in purposes)
        raise ProfileError(
            f"TSA certificate {subject!r} has extended key usages {names}; "
            f"a TSA certificate may hold timeStamping ({_TIME_STAMPING.dotted_string}) only",
            hint=hint,
        )


class TimestampAuthority:
    """Answers RFC 3161 time-stamp requests with tokens signed by one TSA key.

    ``policy`` is the TSA policy every token names; ``accuracy_ms`` the accuracy it claims
    (None: no claim). The TSA certificate goes into a token when the request asks for it
    (``certReq``), followed by ``chain`` when ``include_chain`` is set.
    """

    def __init__(
        self,
        *,
        signer: Signer,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        policy: x509.ObjectIdentifier,
        clock: Clock,
        accuracy_ms: int | None = 1000,
        include_chain: bool = True,
    ) -> None:
        check_tsa_certificate(certificate)
        subject = certificate.subject.rfc4514_string()
        spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        if signer.public_key.public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
            raise InputError(
                f"the key of {signer.description} does not belong to TSA certificate {subject!r}",
                hint="pass the signer of the key that the TSA certificate certifies",
            )
        algorithms = _ALGORITHMS.get(signer.key_type)
        if algorithms is None:
            raise ProfileError(
                f"a TSA cannot sign with the {signer.key_type} key of {signer.description}: "
                "common verifiers (openssl ts, rfc3161-client) cannot check its tokens",
                hint="certify a P-256, P-384 or RSA key for the TSA",
            )
        if accuracy_ms is not None and accuracy_ms < 1:
            raise InputError(
                f"TSA accuracy must be at least 1 ms, not {accuracy_ms}",
                hint="pass None to claim no accuracy",
            )
        self._signer = signer
        self._certificate = certificate
        self._policy = policy.dotted_string
        self._clock = clock
        self._algorithms = algorithms
        self._accuracy = _accuracy(accuracy_ms)

        self.certificate = certificate
        # The parts every token repeats, encoded once (see _settled)
        certificate_der = certificate.public_bytes(Encoding.DER)
        issuer = asn1_x509.Name.load(certificate.issuer.public_bytes())
        self._tsa_name = _settled(
            asn1_x509.GeneralName(
                name="directory_name",
                value=asn1_x509.Name.load(certificate.subject.public_bytes()),
            )
        )
        self._issuer_and_serial = _settled(
            cms.IssuerAndSerialNumber(
                {"issuer": issuer, "serial_number": certificate.serial_number}
            )
        )
        # RFC 5816 2.2.1: ESSCertIDv2 with SHA-256, the default hash algorithm (omitted in DER)
        essential_cert_id = {
            "cert_hash": hashlib.sha256(certificate_der).digest(),
            "issuer_serial": {
                "issuer": [asn1_x509.GeneralName(name="directory_name", value=issuer)],
                "serial_number": certificate.serial_number,
            },
        }
        self._signing_certificate = _settled(
            cms.CMSAttribute(
                {"type": "signing_certificate_v2", "values": [{"certs": [essential_cert_id]}]}
            )
        )
        included = [certificate, *chain] if include_chain else [certificate]
        self._certificates = _settled(
            cms.CertificateSet(
                [
                    cms.CertificateChoices(
                        name="certificate",
                        value=asn1_x509.Certificate.load(item.public_bytes(Encoding.DER)),
                    )
                    for item in included
                ]
            )
        )

    def respond(self, request_der: bytes) -> bytes:
        """Answer a DER TimeStampReq with a DER TimeStampResp.

        The answer grants a token, or rejects the request (PKIStatus rejection, a
        PKIFailureInfo and a statusString naming the problem) when it is malformed, uses a
        hash algorithm we do not accept, carries an imprint of the wrong length, asks for
        another policy or carries extensions. Bad input never raises; a signer that cannot
        sign raises :class:`~trustbridge.errors.KeyStoreError`.
        """
        try:
            request = _parse_request(request_der, policy=self._policy)
            at = self._issue_time()
        except _RejectedError as rejected:
            return _rejection(rejected)
        token = self._token(request, at)
        response = _TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
        granted: bytes = response.dump()
        return granted

    def _issue_time(self) -> datetime:
        at = ensure_utc(self._clock.now())
        certificate = self._certificate
        # fail closed: a token signed outside the TSA certificate's validity cannot verify
        if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
            raise _RejectedError(
                "system_failure",
                f"The time-stamp authority's certificate is not valid at {at.isoformat()}, "
                "so it issues no tokens.",
            )
        return at

    def _token(self, request: _Request, at: datetime) -> cms.ContentInfo:
        # RFC 3161 2.4.2 TSTInfo
        tst_info_fields: dict[str, Any] = {
            "version": "v1",
            "policy": self._policy,
            "message_imprint": request.message_imprint,
            "serial_number": random_serial(),
            "gen_time": core.GeneralizedTime(at),
            "tsa": self._tsa_name,
        }
        if self._accuracy is not None:
            tst_info_fields["accuracy"] = self._accuracy
        if request.nonce is not None:
            tst_info_fields["nonce"] = request.nonce
        tst_info = tsp.TSTInfo(tst_info_fields)
        digest_name = self._algorithms.digest
        digest_algorithm = algos.DigestAlgorithm({"algorithm": digest_name, "parameters": None})

        # RFC 5652 5.3 / 5.4: signed attributes, signed as a DER SET OF (asn1crypto sorts it)
        signed_attributes = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {
                    "type": "message_digest",
                    "values": [hashlib.new(digest_name, tst_info.dump()).digest()],
                },
                self._signing_certificate,
            ]
        )
        signature = sign_bytes(self._signer, signed_attributes.dump())
        signature_algorithm: dict[str, Any] = {"algorithm": self._algorithms.signature}
        if self._algorithms.null_parameters:
            signature_algorithm["parameters"] = core.Null()
        signer_info = cms.SignerInfo(
            {
                "version": "v1",  # RFC 5652 5.3: sid is issuerAndSerialNumber
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number", value=self._issuer_and_serial
                ),
                "digest_algorithm": digest_algorithm,
                "signed_attrs": signed_attributes,
                "signature_algorithm": signature_algorithm,
                "signature": signature,
            }
        )
        signed_data_fields: dict[str, Any] = {
            "version": "v3",  # RFC 5652 5.1: eContentType is not id-data
            "digest_algorithms": [digest_algorithm],
            "encap_content_info": {"content_type": "tst_info", "content": tst_info},
            "signer_infos": [signer_info],
        }
        if request.cert_req:
            signed_data_fields["certificates"] = self._certificates
        return cms.ContentInfo(
            {"content_type": "signed_data", "content": cms.SignedData(signed_data_fields)}
        )


def _settled(value: Any) -> Any:
    """``value`` decoded from its own DER.

    asn1crypto re-encodes a value built in code each time an enclosing value is encoded,
    which grows with the nesting depth (5 ms for a signing-certificate attribute); a decoded
    value keeps its encoding.
    """
    return type(value).load(value.dump())


def _accuracy(accuracy_ms: int | None) -> tsp.Accuracy | None:
    if accuracy_ms is None:
        return None
    seconds, millis = divmod(accuracy_ms, 1000)
    fields: dict[str, int] = {}
    if seconds:
        fields["seconds"] = seconds
    if millis:  # RFC 3161 2.4.2: millis, when present, is 1..999
        fields["millis"] = millis
    return _settled(tsp.Accuracy(fields))


def _parse_request(request_der: bytes, *, policy: str) -> _Request:
    """Decode and check a TimeStampReq, raising :class:`_RejectedError` with the reason."""
    try:
        request = tsp.TimeStampReq.load(request_der, strict=True)
        request.native  # noqa: B018 -- asn1crypto parses lazily: decode every field now
    except (ValueError, TypeError, OverflowError) as exc:
        raise _RejectedError(
            "bad_data_format", "The request is not a DER-encoded RFC 3161 TimeStampReq."
        ) from exc

    # RFC 3161 2.4.1: version 1
    version = int(request["version"])
    if version != 1:
        raise _RejectedError(
            "bad_request", f"The request has version {version}; only version 1 is supported."
        )

    imprint = request["message_imprint"]
    algorithm = imprint["hash_algorithm"]
    oid = algorithm["algorithm"].dotted
    known = _IMPRINT_HASHES.get(oid)
    if known is None:
        raise _RejectedError(
            "bad_alg",
            f"The message imprint uses hash algorithm {oid}, which this time-stamp authority "
            f"does not accept; use {_ACCEPTED_HASH_NAMES}.",
        )
    # RFC 5754 2: SHA-2 parameters are absent or NULL (asn1crypto refuses others while parsing)
    parameters = algorithm["parameters"]
    if not isinstance(parameters, core.Void | core.Null):
        raise _RejectedError(
            "bad_alg",
            f"The message imprint's hash algorithm {known.name} carries parameters; "
            "it must have none.",
        )
    digest = imprint["hashed_message"].native
    if len(digest) != known.size:
        raise _RejectedError(
            "bad_data_format",
            f"The message imprint is {len(digest)} bytes long, but a {known.name} digest "
            f"is {known.size} bytes long.",
        )

    requested_policy = request["req_policy"]
    if not isinstance(requested_policy, core.Void) and requested_policy.dotted != policy:
        raise _RejectedError(
            "unaccepted_policy",
            f"The request asks for policy {requested_policy.dotted}, but this time-stamp "
            f"authority issues tokens under policy {policy} only.",
        )

    # RFC 3161 2.4.1: an extension the server does not recognize is refused
    extensions = request["extensions"]
    if not isinstance(extensions, core.Void):
        if len(extensions) == 0:
            raise _RejectedError("bad_data_format", "The request has an empty extensions field.")
        names = ", ".join(extension["extn_id"].dotted for extension in extensions)
        raise _RejectedError(
            "unaccepted_extensions",
            f"The request carries extensions this time-stamp authority does not support: {names}.",
        )

    # RFC 3161 2.4.2: the token's messageImprint has the same value as the request's
    copied_imprint = tsp.MessageImprint(
        {
            "hash_algorithm": {
                "algorithm": oid,
                "parameters": core.Null() if isinstance(parameters, core.Null) else None,
            },
            "hashed_message": digest,
        }
    )
    return _Request(
        message_imprint=copied_imprint,
        nonce=request["nonce"].native,
        cert_req=bool(request["cert_req"].native),
    )


def _rejection(rejected: _RejectedError) -> bytes:
    status = {
        "status": "rejection",
        "status_string": [rejected.text],
        "fail_info": tsp.PKIFailureInfo({rejected.failure}),
    }
    response: bytes = _TimeStampResp({"status": status}).dump()
    return response
