"""Key types, key generation and encrypted PKCS#8 key files."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)

from trustbridge.errors import InputError, KeyStoreError, PassphraseError

__all__ = [
    "EcPrivateKeyFacade",
    "KeyType",
    "generate_private_key",
    "hash_for",
    "load_private_key_file",
    "load_private_key_pem",
    "private_key_pem",
    "write_private_key_file",
]


class EcPrivateKeyFacade(ec.EllipticCurvePrivateKey):
    """An EC private key that is no ``cryptography`` key object (a token's key, a key that signs
    deterministically), for the ``cryptography`` builders: curve, size and public key come from
    ``public``, copies are the object itself; subclasses sign (and refuse what they cannot do)."""

    def __init__(self, public: ec.EllipticCurvePublicKey) -> None:
        self._public = public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class KeyType(enum.StrEnum):
    """The key types trustbridge issues for and signs with."""

    P256 = "p256"
    P384 = "p384"
    ED25519 = "ed25519"
    RSA2048 = "rsa2048"
    RSA3072 = "rsa3072"

    @classmethod
    def parse(cls, text: str) -> KeyType:
        """Parse a key type name such as ``p256`` or ``rsa3072`` (case-insensitive)."""
        normalized = text.strip().lower().replace("-", "")
        for member in cls:
            if member.value == normalized:
                return member
        choices = ", ".join(m.value for m in cls)
        raise InputError(f"unknown key type {text!r}", hint=f"choose one of: {choices}")

    @classmethod
    def of(cls, key: CertificatePublicKeyTypes | PrivateKeyTypes) -> KeyType:
        """The key type of a public or private key; raises for types trustbridge does not use."""
        # The family is a property of the key's class: found by isinstance (the key classes
        # are ABCs, slow to check) once per class.
        family = _FAMILIES.get(type(key))
        if family is None:
            family = _FAMILIES[type(key)] = _family(key)
        if family == "ec":
            assert isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
            curve = key.curve.name
            found = _CURVES.get(curve)
            if found is None:
                raise InputError(f"elliptic curve {curve} is not supported")
            return found
        if family == "ed25519":
            return cls.ED25519
        if family == "rsa":
            assert isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey)
            if key.key_size == 2048:
                return cls.RSA2048
            if key.key_size == 3072:
                return cls.RSA3072
            raise InputError(f"RSA key size {key.key_size} is not supported (use 2048 or 3072)")
        raise InputError(f"key algorithm {type(key).__name__} is not supported")

    @property
    def is_rsa(self) -> bool:
        return self in (KeyType.RSA2048, KeyType.RSA3072)

    @property
    def is_ec(self) -> bool:
        return self in (KeyType.P256, KeyType.P384)


#: Key family ("ec", "ed25519", "rsa" or "" for one trustbridge does not use) by key class.
_FAMILIES: dict[type, str] = {}
_CURVES = {ec.SECP256R1.name: KeyType.P256, ec.SECP384R1.name: KeyType.P384}


def _family(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "ec"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "rsa"
    return ""


def hash_for(key_type: KeyType) -> hashes.SHA256 | hashes.SHA384 | None:
    """The signature hash a key of this type signs with (None for Ed25519)."""
    if key_type is KeyType.ED25519:
        return None
    if key_type is KeyType.P384:
        return hashes.SHA384()
    return hashes.SHA256()


def generate_private_key(key_type: KeyType) -> CertificateIssuerPrivateKeyTypes:
    """A fresh private key of the given type."""
    if key_type is KeyType.P256:
        return ec.generate_private_key(ec.SECP256R1())
    if key_type is KeyType.P384:
        return ec.generate_private_key(ec.SECP384R1())
    if key_type is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    size = 2048 if key_type is KeyType.RSA2048 else 3072
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def private_key_pem(key: PrivateKeyTypes, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase)
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key_pem(
    data: bytes, passphrase: bytes | None, *, source: str
) -> CertificateIssuerPrivateKeyTypes:
    """Load a PEM private key; ``source`` names it in errors."""
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:
        # cryptography: "Password was not given but private key is encrypted" and the reverse
        if passphrase:
            raise KeyStoreError(
                f"key {source} is not encrypted but a passphrase was given"
            ) from exc
        raise PassphraseError(
            f"key {source} is encrypted and no passphrase was given",
            hint="set the passphrase source in the home configuration or the environment",
        ) from exc
    except ValueError as exc:
        if b"ENCRYPTED" in data and passphrase:
            raise PassphraseError(f"wrong passphrase for key {source}") from exc
        raise KeyStoreError(f"key {source} is not a readable PEM private key: {exc}") from exc
    if not isinstance(
        key,
        ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey,
    ):
        raise KeyStoreError(f"key {source} has unsupported algorithm {type(key).__name__}")
    KeyType.of(key)
    return key


def load_private_key_file(path: Path, passphrase: bytes | None) -> CertificateIssuerPrivateKeyTypes:
    """Load an (encrypted) PKCS#8 PEM key file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read key file {path}: {exc.strerror}") from exc
    return load_private_key_pem(data, passphrase, source=str(path))


def write_private_key_file(path: Path, key: PrivateKeyTypes, passphrase: bytes | None) -> None:
    """Write a key file readable by its owner only; refuses to overwrite an existing file."""
    data = private_key_pem(key, passphrase)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyStoreError(f"key file {path} exists already; refusing to overwrite it") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
