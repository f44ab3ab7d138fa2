"""One small signer interface over key files and PKCS#11 tokens.

A :class:`Signer` hands the ``cryptography`` builders a private-key object
(:attr:`Signer.private_key`): the key itself for a file, an adapter that signs inside the token
for PKCS#11. Code that issues certificates never needs to know where the key lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from trustbridge.errors import KeyStoreError
from trustbridge.pki.keys import KeyType, hash_for

__all__ = [
    "FileSigner",
    "Signer",
    "jose_signature",
    "jose_signature_valid",
    "sign_bytes",
    "signature_valid",
]


class Signer(Protocol):
    """A private key that can sign, wherever it is kept."""

    @property
    def key_type(self) -> KeyType: ...

    @property
    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        """An object the ``cryptography`` builders accept as the signing key."""
        ...

    @property
    def public_key(self) -> CertificateIssuerPublicKeyTypes: ...

    @property
    def description(self) -> str:
        """Where the key lives, for messages and the audit trail (never the secret)."""
        ...


def sign_bytes(signer: Signer, data: bytes) -> bytes:
    """Sign ``data`` with the standard scheme for the key type.

    ECDSA gives a DER signature over SHA-256/384, RSA PKCS#1 v1.5 with SHA-256, Ed25519 pure.
    """
    key = signer.private_key
    algorithm = hash_for(signer.key_type)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert algorithm is not None
        return key.sign(data, ec.ECDSA(algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        assert algorithm is not None
        return key.sign(data, padding.PKCS1v15(), algorithm)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise KeyStoreError(f"key of {signer.description} cannot sign: {type(key).__name__}")


def signature_valid(public_key: CertificatePublicKeyTypes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature``, as :func:`sign_bytes` makes it, verifies ``data`` under
    ``public_key``. A key type trustbridge does not use raises ``InputError`` (``KeyType.of``)."""
    algorithm = hash_for(KeyType.of(public_key))
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            assert algorithm is not None
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey):
            assert algorithm is not None
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        else:  # pragma: no cover - KeyType.of refuses every other key
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


#: Bytes of one coordinate of an ECDSA signature in JOSE form (RFC 7518 3.4).
_COORDINATE_BYTES = {KeyType.P256: 32, KeyType.P384: 48}


def jose_signature(signer: Signer, data: bytes) -> bytes:
    """:func:`sign_bytes` in the form JOSE wants: ECDSA as R and S, fixed-length big-endian
    octets, concatenated (RFC 7518 3.4); RSA and Ed25519 as they are."""
    signature = sign_bytes(signer, data)
    size = _COORDINATE_BYTES.get(signer.key_type)
    if size is None:
        return signature
    r, s = decode_dss_signature(signature)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def jose_signature_valid(
    public_key: CertificatePublicKeyTypes, data: bytes, signature: bytes
) -> bool:
    """Whether a JOSE-form signature (see :func:`jose_signature`) verifies ``data``."""
    size = _COORDINATE_BYTES.get(KeyType.of(public_key))
    if size is not None:
        if len(signature) != 2 * size:
            return False
        signature = encode_dss_signature(
            int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        )
    return signature_valid(public_key, data, signature)


@dataclass(frozen=True)
class FileSigner:
    """A signer over a key loaded from an (encrypted) PKCS#8 file."""

    key: CertificateIssuerPrivateKeyTypes
    source: str = "memory"

    @property
    def key_type(self) -> KeyType:
        return KeyType.of(self.key)

    @property
    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        return self.key

    @property
    def public_key(self) -> CertificateIssuerPublicKeyTypes:
        return self.key.public_key()

    @property
    def description(self) -> str:
        return f"file:{self.source}"
