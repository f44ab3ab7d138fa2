"""PKCS#10 certificate signing requests (RFC 2986): loading and proof of possession."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import SignatureAlgorithmOID

from trustbridge.errors import CsrError, InputError
from trustbridge.pki.keys import KeyType

__all__ = ["load_csr", "load_csr_key"]

#: ECDSA signature algorithms (RFC 5758 3.2) and their hashes: a request signed with one of
#: these is checked with the key it carries directly (the key is needed anyway).
_ECDSA: dict[x509.ObjectIdentifier, ec.ECDSA] = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: ec.ECDSA(hashes.SHA256()),
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: ec.ECDSA(hashes.SHA384()),
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: ec.ECDSA(hashes.SHA512()),
}


def load_csr(data: bytes, *, source: str) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR and check its self-signature; ``source`` names it in errors."""
    return load_csr_key(data, source=source)[0]


def load_csr_key(
    data: bytes, *, source: str
) -> tuple[x509.CertificateSigningRequest, CertificatePublicKeyTypes]:
    """:func:`load_csr`, with the public key of the request."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrError(f"CSR {source} is not a readable PKCS#10 request: {exc}") from exc
    try:
        valid, public_key = _proof_of_possession(csr)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrError(f"CSR {source} has an unsupported signature: {exc}") from exc
    if not valid:
        raise CsrError(
            f"CSR {source} is not signed by the key it contains (proof of possession failed)"
        )
    try:
        KeyType.of(public_key)
    except InputError as exc:
        raise CsrError(f"CSR {source}: {exc.message}") from exc
    return csr, public_key


def _proof_of_possession(
    csr: x509.CertificateSigningRequest,
) -> tuple[bool, CertificatePublicKeyTypes]:
    """Whether the request is signed by the key it carries, and that key."""
    algorithm = _ECDSA.get(csr.signature_algorithm_oid)
    if algorithm is None:
        valid = csr.is_signature_valid
        return valid, csr.public_key()
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        # An ECDSA signature by a key of another type: what cryptography's check answers.
        return csr.is_signature_valid, public_key
    try:
        public_key.verify(csr.signature, csr.tbs_certrequest_bytes, algorithm)
    except InvalidSignature:
        return False, public_key
    return True, public_key
