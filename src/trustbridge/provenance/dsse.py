"""Dead Simple Signing Envelope (DSSE v1): the pre-authentication encoding, the JSON envelope,
signing through a :class:`~trustbridge.pki.signers.Signer` and verification with a certificate's
public key.

Specification: https://github.com/secure-systems-lab/dsse (``protocol.md``, ``envelope.md``).
Signatures are the standard ones of the key type (:func:`trustbridge.pki.signers.sign_bytes`):
ECDSA as DER over SHA-256 (P-256) or SHA-384 (P-384), RSA PKCS#1 v1.5 with SHA-256, Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from trustbridge.errors import InputError, ValidationError
from trustbridge.pki.keys import KeyType
from trustbridge.pki.signers import Signer, sign_bytes, signature_valid

__all__ = [
    "Envelope",
    "EnvelopeFormatError",
    "EnvelopeSignature",
    "EnvelopeSignatureError",
    "PublicKey",
    "pae",
    "sign_envelope",
    "verify_envelope",
]

#: The public keys a DSSE signature is verified with.
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_STANDARD = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_URL_SAFE = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")
#: At most this many signatures per envelope (a statement has one).
_MAX_SIGNATURES = 16


class EnvelopeFormatError(InputError):
    """A DSSE envelope that is not well-formed JSON of the expected shape."""

    def __init__(self, message: str, *, source: str = "", hint: str | None = None) -> None:
        super().__init__(f"{source}: {message}" if source else message, hint=hint)
        self.source = source


class EnvelopeSignatureError(ValidationError):
    """No signature of the envelope verifies with the key, or the payload type is not the
    one expected."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of ``payload`` under ``payload_type``.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths as ASCII decimal of the
    byte lengths (DSSE protocol.md, "Signature Definition").
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class EnvelopeSignature:
    """One signature of an envelope and the (unauthenticated) hint to its key."""

    keyid: str
    sig: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.keyid, str):
            raise EnvelopeFormatError("a signature's keyid must be a string")
        if not isinstance(self.sig, bytes) or not self.sig:
            raise EnvelopeFormatError("a signature must be non-empty bytes")


@dataclass(frozen=True)
class Envelope:
    """A DSSE JSON envelope: the payload, its type and one or more signatures over its PAE."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.payload_type, str):
            raise EnvelopeFormatError("payloadType must be a string")
        if not isinstance(self.payload, bytes):
            raise EnvelopeFormatError("payload must be bytes")
        object.__setattr__(self, "signatures", tuple(self.signatures))
        if not self.signatures:
            raise EnvelopeFormatError("the envelope has no signature")
        if len(self.signatures) > _MAX_SIGNATURES:
            raise EnvelopeFormatError(
                f"the envelope has {len(self.signatures)} signatures; at most "
                f"{_MAX_SIGNATURES} are accepted"
            )
        if not all(isinstance(s, EnvelopeSignature) for s in self.signatures):
            raise EnvelopeFormatError("signatures must be EnvelopeSignature values")

    def pae(self) -> bytes:
        """What the signatures sign."""
        return pae(self.payload_type, self.payload)

    def to_json(self) -> dict[str, Any]:
        """The standard JSON envelope; payload and signatures in standard base64."""
        signatures: list[dict[str, str]] = []
        for signature in self.signatures:
            entry = {"sig": _b64(signature.sig)}
            if signature.keyid:
                entry["keyid"] = signature.keyid
            signatures.append(entry)
        return {
            "payload": _b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": signatures,
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str) -> Envelope:
        """Read a JSON envelope (as parsed JSON). Standard and URL-safe base64 are both
        accepted (protocol.md); empty fields may be omitted (envelope.md)."""
        if not isinstance(data, Mapping):
            raise EnvelopeFormatError("a DSSE envelope must be a JSON object", source=source)
        unknown = set(data) - {"payload", "payloadType", "signatures"}
        if unknown:
            raise EnvelopeFormatError(
                f"unknown envelope member(s): {', '.join(sorted(map(str, unknown)))}",
                source=source,
            )
        payload_type = data.get("payloadType", "")
        if not isinstance(payload_type, str):
            raise EnvelopeFormatError("payloadType must be a string", source=source)
        payload = _unb64(data.get("payload", ""), "payload", source)
        raw = data.get("signatures")
        if not isinstance(raw, list) or not raw:
            raise EnvelopeFormatError("signatures must be a non-empty list", source=source)
        if len(raw) > _MAX_SIGNATURES:
            raise EnvelopeFormatError(
                f"{len(raw)} signatures; at most {_MAX_SIGNATURES} are accepted", source=source
            )
        signatures = []
        for index, entry in enumerate(raw):
            if not isinstance(entry, Mapping):
                raise EnvelopeFormatError(f"signature {index} is not an object", source=source)
            extra = set(entry) - {"keyid", "sig"}
            if extra:
                raise EnvelopeFormatError(
                    f"signature {index} has unknown member(s): "
                    f"{', '.join(sorted(map(str, extra)))}",
                    source=source,
                )
            keyid = entry.get("keyid", "")
            if not isinstance(keyid, str):
                raise EnvelopeFormatError(
                    f"signature {index}: keyid is not a string", source=source
                )
            sig = _unb64(entry.get("sig", ""), f"signature {index}", source)
            if not sig:
                raise EnvelopeFormatError(f"signature {index} is empty", source=source)
            signatures.append(EnvelopeSignature(keyid, sig))
        return cls(payload_type, payload, tuple(signatures))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, what: str, source: str) -> bytes:
    """Standard or URL-safe base64, padded or not; never a mix of both alphabets."""
    if not isinstance(value, str):
        raise EnvelopeFormatError(f"{what} is not a base64 string", source=source)
    if _STANDARD.match(value):
        alphabet = None
    elif _URL_SAFE.match(value):
        alphabet = b"-_"
    else:
        raise EnvelopeFormatError(f"{what} is not base64", source=source)
    text = value.rstrip("=")
    if len(text) % 4 == 1:
        raise EnvelopeFormatError(f"{what} is not base64 (bad length)", source=source)
    padded = text + "=" * (-len(text) % 4)
    try:
        if alphabet is None:
            return base64.b64decode(padded, validate=True)
        return base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeFormatError(f"{what} is not base64: {exc}", source=source) from None


def sign_envelope(payload_type: str, payload: bytes, signer: Signer, *, keyid: str) -> Envelope:
    """An envelope with one signature by ``signer`` over ``PAE(payload_type, payload)``."""
    return Envelope(
        payload_type,
        payload,
        (EnvelopeSignature(keyid, sign_bytes(signer, pae(payload_type, payload))),),
    )


def _public_key(key: x509.Certificate | PublicKey) -> PublicKey:
    public = key.public_key() if isinstance(key, x509.Certificate) else key
    if not isinstance(
        public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    ):
        raise EnvelopeSignatureError(f"key algorithm {type(public).__name__} cannot verify DSSE")
    try:
        KeyType.of(public)
    except InputError as exc:
        raise EnvelopeSignatureError(f"the key cannot verify DSSE: {exc.message}") from None
    return public


def verify_envelope(
    envelope: Envelope,
    key: x509.Certificate | PublicKey,
    *,
    payload_type: str,
    keyids: Sequence[str] | None = None,
    source: str = "",
) -> bytes:
    """Verify ``envelope`` with ``key`` (a certificate's public key, or the key itself) and
    return its payload.

    Following protocol.md "To verify": a signature must verify over the PAE, and the payload
    type must be ``payload_type``. ``keyids``: where given, only signatures whose keyid is one
    of them are tried (keyids narrow the selection, they never authenticate).
    """
    where = f"{source}: " if source else ""
    public = _public_key(key)
    candidates = [s for s in envelope.signatures if keyids is None or s.keyid in keyids]
    if not candidates:
        raise EnvelopeSignatureError(
            f"{where}no signature of the envelope names the signer's key "
            f"(keyid {', '.join(keyids or ())})"
        )
    message = envelope.pae()
    if not any(signature_valid(public, message, s.sig) for s in candidates):
        raise EnvelopeSignatureError(
            f"{where}the DSSE signature does not verify: the statement or its signature was "
            "changed, or it was signed with another key",
        )
    if envelope.payload_type != payload_type:
        raise EnvelopeSignatureError(
            f"{where}payload type {envelope.payload_type!r} is not the expected {payload_type!r}"
        )
    return envelope.payload
