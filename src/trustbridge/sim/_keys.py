"""Keys, serial numbers and signatures that follow from the seed.

Every key of a simulated world is derived from the seed and the holder's name (a hash taken as
the P-256 private scalar), every serial number likewise, and every signature is deterministic
ECDSA (RFC 6979): with the simulation's fixed clock, one seed gives byte-identical
certificates, CRLs and signed lists. These keys are for simulations only: anybody who knows the
seed knows them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from trustbridge.errors import KeyStoreError

if TYPE_CHECKING:
    from cryptography.utils import Buffer
from trustbridge.pki.keys import EcPrivateKeyFacade, KeyType

__all__ = ["SeededSigner", "derive_key", "derive_serial"]

#: The order of the P-256 group (FIPS 186-4 D.1.2.3).
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _digest(seed: int, label: str) -> int:
    return int.from_bytes(hashlib.sha256(f"trustbridge-sim/{seed}/{label}".encode()).digest())


def derive_key(seed: int, label: str) -> ec.EllipticCurvePrivateKey:
    """The P-256 key of ``label`` in the world of ``seed``."""
    return ec.derive_private_key(_digest(seed, label) % (_P256_ORDER - 1) + 1, ec.SECP256R1())


def derive_serial(seed: int, label: str) -> int:
    """A positive serial number of 159 bits, at least 2^64 (as ``random_serial`` gives)."""
    serial = _digest(seed, "serial/" + label) >> 97
    return serial | (1 << 158)


class _DeterministicEcKey(EcPrivateKeyFacade):
    """A P-256 key whose ECDSA signatures are deterministic (RFC 6979), for the builders."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        super().__init__(key.public_key())
        self._key = key

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise KeyStoreError(f"a simulation key signs ECDSA only, not {signature_algorithm}")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, Prehashed):
            raise KeyStoreError("a simulation key does not sign prehashed data")
        return self._key.sign(data, ec.ECDSA(algorithm, deterministic_signing=True))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise KeyStoreError("a simulation signing key does no key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        return self._key.private_numbers()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        return self._key.private_bytes(encoding, format, encryption_algorithm)


@dataclass(frozen=True)
class SeededSigner:
    """A :class:`trustbridge.pki.signers.Signer` over a key derived from the seed, signing with
    deterministic ECDSA."""

    seed: int
    label: str

    @cached_property
    def _key(self) -> _DeterministicEcKey:
        return _DeterministicEcKey(derive_key(self.seed, self.label))

    @property
    def key_type(self) -> KeyType:
        return KeyType.P256

    @property
    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        return self._key

    @property
    def public_key(self) -> CertificateIssuerPublicKeyTypes:
        return self._key.public_key()

    @property
    def description(self) -> str:
        return f"simulation:{self.label}"
