"""One small signer interface over key files and PKCS#11 tokens.

A :class:`Signer` hands the ``cryptography`` builders a private-key object
(:attr:`Signer.private_key`): the key itself for a file, an adapter that signs inside the token
for PKCS#11. Code that issues certificates never needs to know where the key lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)

from trustbridge.errors import KeyStoreError
from trustbridge.pki.keys import KeyType, hash_for

__all__ = ["FileSigner", "Signer", "sign_bytes"]


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
