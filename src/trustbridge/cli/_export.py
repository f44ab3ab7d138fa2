"""Certificate export formats: PEM, DER, PEM chain, PKCS#12."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PublicFormat,
    pkcs12,
)
from cryptography.hazmat.primitives.serialization.pkcs12 import PKCS12PrivateKeyTypes

from trustbridge.errors import InputError

__all__ = ["export"]


def export(
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    fmt: str,
    *,
    key: PKCS12PrivateKeyTypes | None = None,
    password: bytes | None = None,
) -> bytes:
    """Serialize ``certificate`` (and for ``chain``/``p12`` its issuers) in format ``fmt``."""
    if fmt == "pem":
        return certificate.public_bytes(Encoding.PEM)
    if fmt == "der":
        return certificate.public_bytes(Encoding.DER)
    if fmt == "chain":
        return b"".join(c.public_bytes(Encoding.PEM) for c in (certificate, *chain))
    if fmt == "p12":
        if key is None:
            raise InputError("a PKCS#12 needs the holder's private key")
        if _spki(key.public_key()) != _spki(certificate.public_key()):
            raise InputError("the key does not belong to the certificate")
        encryption = BestAvailableEncryption(password) if password else NoEncryption()
        name = certificate.subject.rfc4514_string().encode()[:64]
        return pkcs12.serialize_key_and_certificates(
            name,
            key,
            certificate,
            list(chain),
            encryption,
        )
    raise InputError(f"unknown export format {fmt!r}; use pem, der, chain or p12")


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined,no-any-return]
