"""Requests signed with a trustbridge identity: HTTP Message Signatures (RFC 9421).

A caller signs each request with the private key of its identity certificate and sends the
certificate chain along, so the receiving node can authenticate it at the application layer
(TLS only protects the channel; see DESIGN.md, "Authenticating callers between nodes"):

- ``Trustbridge-Chain``: the caller's chain, leaf first, as a Structured Field list of byte
  sequences (RFC 8941), each a DER certificate;
- ``Content-Digest`` (RFC 9530, SHA-256) over the body, even an empty one;
- ``Signature-Input`` / ``Signature`` with the label ``tb`` and the tag ``trustbridge/v1``,
  covering ``@method``, ``@target-uri``, ``content-digest``, ``trustbridge-chain`` and, when
  there is a body, ``content-type``; with ``created``, ``expires`` (at most five minutes
  later), a random ``nonce``, ``alg`` and ``keyid`` (the SHA-256 fingerprint of the leaf).

:func:`verify_request` checks the signature, the digest, the coverage and the freshness, and
returns who signed. Whether that identity is trusted (its path, its status, its roles) and
whether the nonce was seen before are the receiving node's decisions: it has the anchors and
the database.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import http_sf
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureAlgorithm,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from trustbridge.errors import AuthenticationError, InputError
from trustbridge.pki.ca import certificate_fingerprint
from trustbridge.pki.keys import KeyType
from trustbridge.pki.signers import Signer, sign_bytes

__all__ = [
    "CHAIN_HEADER",
    "MAX_AGE",
    "SIGNATURE_TAG",
    "SignedCaller",
    "algorithm_for",
    "decode_chain",
    "encode_chain",
    "sign_request",
    "verify_request",
]

CHAIN_HEADER = "trustbridge-chain"
SIGNATURE_LABEL = "tb"
SIGNATURE_TAG = "trustbridge/v1"
#: Longest a signed request stays valid (``expires - created``), and the oldest ``created``.
MAX_AGE = timedelta(minutes=5)
#: How far a caller's clock may run ahead of ours.
MAX_SKEW = timedelta(seconds=30)
#: Most certificates a chain header may carry, and its largest size.
MAX_CHAIN = 6
MAX_CHAIN_HEADER = 32 * 1024
_REQUIRED = ("@method", "@target-uri", "content-digest", CHAIN_HEADER)


def algorithm_for(public_key: object) -> type[HTTPSignatureAlgorithm]:
    """The RFC 9421 algorithm that matches how :func:`sign_bytes` signs with this key type."""
    if isinstance(public_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return algorithms.ECDSA_P256_SHA256
        if isinstance(public_key.curve, ec.SECP384R1):
            return algorithms.ECDSA_P384_SHA384
    elif isinstance(public_key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return algorithms.ED25519
    elif isinstance(public_key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return algorithms.RSA_V1_5_SHA256
    raise InputError(
        f"a {type(public_key).__name__} key cannot sign HTTP messages",
        hint="use a P-256, P-384, Ed25519 or RSA identity",
    )


def encode_chain(chain: Sequence[x509.Certificate]) -> str:
    """The chain header's value: DER certificates as a Structured Field list, leaf first."""
    return ", ".join(
        ":" + base64.b64encode(c.public_bytes(Encoding.DER)).decode() + ":" for c in chain
    )


def decode_chain(value: str | None) -> tuple[x509.Certificate, ...]:
    """Parse a chain header; raise :class:`AuthenticationError` naming what is wrong."""
    if not value:
        raise AuthenticationError(
            f"the request carries no {CHAIN_HEADER} header",
            hint="sign the request with your identity and send its certificate chain",
        )
    if len(value) > MAX_CHAIN_HEADER:
        raise AuthenticationError(f"the {CHAIN_HEADER} header exceeds {MAX_CHAIN_HEADER} bytes")
    try:
        members = http_sf.parse(value.encode(), tltype="list")
    except (ValueError, TypeError) as exc:
        raise AuthenticationError(
            f"the {CHAIN_HEADER} header is not a Structured Field list: {exc}"
        ) from None
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_CHAIN:
        raise AuthenticationError(
            f"the {CHAIN_HEADER} header must carry 1 to {MAX_CHAIN} certificates"
        )
    chain = []
    for index, member in enumerate(members):
        item = member[0] if isinstance(member, tuple) else member
        if not isinstance(item, bytes):
            raise AuthenticationError(
                f"member {index} of the {CHAIN_HEADER} header is not a byte sequence"
            )
        try:
            chain.append(x509.load_der_x509_certificate(item))
        except ValueError:
            raise AuthenticationError(
                f"member {index} of the {CHAIN_HEADER} header is not a DER certificate"
            ) from None
    return tuple(chain)


@dataclass
class _Message:
    """The message interface the signature library reads: method, absolute URL, headers."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


def _key_id(certificate: x509.Certificate) -> str:
    return "sha256:" + certificate_fingerprint(certificate)


def sign_request(
    *,
    method: str,
    url: str,
    body: bytes,
    signer: Signer,
    chain: Sequence[x509.Certificate],
    at: datetime,
    content_type: str | None = "application/json",
    lifetime: timedelta = MAX_AGE,
) -> dict[str, str]:
    """The headers that authenticate one request: chain, digest, signature input, signature.

    ``signer`` may be a file key or a PKCS#11 key: the signature base is signed through
    :func:`sign_bytes`, never by handing the key to the library.
    """
    if not chain:
        raise InputError("signing a request needs the caller's certificate chain")
    if KeyType.of(signer.public_key) is not KeyType.of(chain[0].public_key()) or (
        signer.public_key != chain[0].public_key()
    ):
        raise InputError(
            f"the key {signer.description} does not belong to the certificate "
            f"{chain[0].subject.rfc4514_string()}"
        )
    algorithm = algorithm_for(chain[0].public_key())
    headers = {CHAIN_HEADER: encode_chain(chain)}
    covered = ["@method", "@target-uri", CHAIN_HEADER]
    if body and content_type:
        headers["content-type"] = content_type
        covered.append("content-type")
    message = _Message(method.upper(), url, headers)
    http_signer = HTTPMessageSigner(signature_algorithm=algorithm)
    try:
        prepared = http_signer.prepare(
            message,
            key_id=_key_id(chain[0]),
            created=at,
            expires=at + lifetime,
            nonce=base64.urlsafe_b64encode(secrets.token_bytes(18)).decode(),
            label=SIGNATURE_LABEL,
            tag=SIGNATURE_TAG,
            covered_component_ids=covered,
            body=body,
        )
        signature = sign_bytes(signer, prepared.signature_base)
        if issubclass(algorithm, algorithms.ECDSA_P256_SHA256 | algorithms.ECDSA_P384_SHA384):
            signature = algorithm.signature_from_der(signature)
        http_signer.apply(message, prepared, signature)
    except HTTPMessageSignaturesException as exc:
        raise InputError(f"cannot sign the request to {url}: {exc}") from None
    return {name.lower(): value for name, value in message.headers.items()}


@dataclass(frozen=True)
class SignedCaller:
    """Who signed a request, as the signature proves (not yet whether they are trusted)."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key_id: str
    nonce: str
    created: datetime
    expires: datetime

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


class _LeafKey(HTTPSignatureKeyResolver):
    """Resolves exactly one key id: the leaf certificate's."""

    def __init__(self, key_id: str, certificate: x509.Certificate) -> None:
        self.key_id = key_id
        self.certificate = certificate

    def resolve_public_key(self, key_id: str) -> Any:
        if key_id != self.key_id:
            raise AuthenticationError(
                f"the signature's keyid {key_id!r} is not the fingerprint of the first "
                f"certificate in {CHAIN_HEADER}"
            )
        return self.certificate.public_key()

    def resolve_private_key(self, key_id: str) -> Any:  # pragma: no cover - verify only
        raise NotImplementedError


def _timestamp(params: Any, name: str) -> datetime:
    value = params[name]
    if type(value) is not int or not 0 <= value < 2**40:
        raise InvalidSignature(f'the signature parameter "{name}" is not a plausible timestamp')
    return datetime.fromtimestamp(value, UTC)


class _ClockedVerifier(HTTPMessageVerifier):
    """The library's checks of ``created``/``expires``, against our clock, not the host's."""

    now: datetime

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        params = sig_input.params
        for name in ("created", "expires", "nonce"):
            if name not in params:
                raise InvalidSignature(f'the signature lacks the "{name}" parameter')
        created, expires = _timestamp(params, "created"), _timestamp(params, "expires")
        if created > self.now + MAX_SKEW:
            raise InvalidSignature(f"the signature was created in the future ({created:%H:%M:%S})")
        if expires < self.now:
            raise InvalidSignature(f"the signature expired at {expires:%Y-%m-%d %H:%M:%S}Z")
        if self.now - created > MAX_AGE or expires - created > MAX_AGE:
            raise InvalidSignature(
                f"the signature's lifetime exceeds {int(MAX_AGE.total_seconds())} s"
            )


def verify_request(
    *,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    at: datetime,
) -> SignedCaller:
    """Check a request's signature; raise :class:`AuthenticationError` saying why it fails."""
    fields: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    chain = decode_chain(fields.get(CHAIN_HEADER))
    leaf = chain[0]
    try:
        algorithm = algorithm_for(leaf.public_key())
    except InputError as exc:
        raise AuthenticationError(exc.message) from None
    key_id = _key_id(leaf)
    verifier = _ClockedVerifier(signature_algorithm=algorithm, key_resolver=_LeafKey(key_id, leaf))
    verifier.now = at.astimezone(UTC)
    required = list(_REQUIRED) + (["content-type"] if body else [])
    message = _Message(method.upper(), url, fields)
    try:
        results = verifier.verify(
            message,
            expect_tag=SIGNATURE_TAG,
            max_age=MAX_AGE,
            require_components=required,
            body=body,
        )
    except AuthenticationError:
        raise
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, AuthenticationError) else None
        if cause is not None:
            raise cause from None
        raise AuthenticationError(
            f"the request's signature does not verify: {exc}",
            hint=f"sign {method.upper()} {url} with the key of the first certificate in "
            f"{CHAIN_HEADER}, covering {', '.join(required)}",
        ) from None
    if len(results) != 1:
        raise AuthenticationError("the request must carry exactly one trustbridge signature")
    params = results[0].parameters
    return SignedCaller(
        certificate=leaf,
        chain=chain,
        key_id=key_id,
        nonce=str(params["nonce"]),
        created=_timestamp(params, "created"),
        expires=_timestamp(params, "expires"),
    )
