"""PKCS#10 certificate signing requests (RFC 2986): loading and proof of possession."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from trustbridge.errors import CsrError, InputError
from trustbridge.pki.keys import KeyType

__all__ = ["load_csr"]


def load_csr(data: bytes, *, source: str) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR and check its self-signature; ``source`` names it in errors."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrError(f"CSR {source} is not a readable PKCS#10 request: {exc}") from exc
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrError(f"CSR {source} has an unsupported signature: {exc}") from exc
    if not valid:
        raise CsrError(
            f"CSR {source} is not signed by the key it contains (proof of possession failed)"
        )
    try:
        KeyType.of(csr.public_key())
    except InputError as exc:
        raise CsrError(f"CSR {source}: {exc.message}") from exc
    return csr
