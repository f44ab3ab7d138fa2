"""Certificate export formats: PEM, DER, PEM chain, PKCS#12."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    pkcs12,
)

from trustbridge.errors import InputError

__all__ = ["export"]


def export(
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    fmt: str,
    *,
    key: PrivateKeyTypes | None = None,
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
        if key.public_key() != certificate.public_key():  # type: ignore[operator]
            raise InputError("the key does not belong to the certificate")
        encryption = BestAvailableEncryption(password) if password else NoEncryption()
        name = certificate.subject.rfc4514_string().encode()[:64]
        return pkcs12.serialize_key_and_certificates(
            name, key, certificate, list(chain), encryption  # type: ignore[arg-type]
        )
    raise InputError(f"unknown export format {fmt!r}; use pem, der, chain or p12")
