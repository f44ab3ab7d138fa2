"""PKCS#10 requests: loading PEM and DER, and proof of possession."""

from __future__ import annotations

import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.pki.pkifactory import organization_subject
from trustbridge.errors import CsrError, InputError
from trustbridge.pki.csr import load_csr, load_csr_key
from trustbridge.pki.keys import KeyType, generate_private_key, hash_for


def _csr(key: CertificateIssuerPrivateKeyTypes) -> x509.CertificateSigningRequest:
    algorithm: hashes.HashAlgorithm | None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP521R1):
        algorithm = hashes.SHA512()
    else:
        algorithm = hash_for(KeyType.of(key))
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(organization_subject().x509_name())
        .sign(key, algorithm)
    )


@pytest.fixture(scope="module")
def p256_csr() -> x509.CertificateSigningRequest:
    return _csr(generate_private_key(KeyType.P256))


@pytest.fixture(scope="module")
def ed25519_csr() -> x509.CertificateSigningRequest:
    return _csr(generate_private_key(KeyType.ED25519))


def test_pem_csr_loads(p256_csr: x509.CertificateSigningRequest) -> None:
    data = p256_csr.public_bytes(Encoding.PEM)
    csr = load_csr(b"\n  " + data, source="request.pem")
    assert csr.subject == organization_subject().x509_name()
    assert csr.public_key() == p256_csr.public_key()
    assert csr.is_signature_valid


def test_der_csr_loads(ed25519_csr: x509.CertificateSigningRequest) -> None:
    csr = load_csr(ed25519_csr.public_bytes(Encoding.DER), source="request.der")
    assert KeyType.of(csr.public_key()) is KeyType.ED25519
    assert csr.public_bytes(Encoding.DER) == ed25519_csr.public_bytes(Encoding.DER)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        bytes(range(64)),
    ],
    ids=["empty", "text", "bad-pem", "binary"],
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(
        CsrError, match=re.escape("CSR upload.bin is not a readable PKCS#10 request")
    ):
        load_csr(data, source="upload.bin")


def test_csr_error_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a readable"):
        load_csr(b"garbage", source="upload.bin")


@pytest.mark.parametrize("fixture", ["p256_csr", "ed25519_csr"])
def test_tampered_signature_fails_proof_of_possession(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    csr: x509.CertificateSigningRequest = request.getfixturevalue(fixture)
    der = bytearray(csr.public_bytes(Encoding.DER))
    signature = csr.signature
    # The signature BIT STRING closes the request: flip the last byte of the signature value.
    assert der.endswith(signature)
    der[-1] ^= 0x01
    with pytest.raises(
        CsrError, match=r"not signed by the key it contains \(proof of possession failed\)"
    ):
        load_csr(bytes(der), source="tampered.der")


def test_tampered_subject_fails_proof_of_possession(
    p256_csr: x509.CertificateSigningRequest,
) -> None:
    der = p256_csr.public_bytes(Encoding.DER)
    tampered = der.replace(b"Muster Maschinenbau GmbH", b"Muster Maschinenbau AG!!", 1)
    assert tampered != der
    with pytest.raises(CsrError, match="proof of possession failed"):
        load_csr(tampered, source="tampered.der")


def test_key_type_we_do_not_use_is_refused() -> None:
    csr = _csr(ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(
        CsrError, match=re.escape("CSR p521.pem: elliptic curve secp521r1 is not supported")
    ):
        load_csr(csr.public_bytes(Encoding.PEM), source="p521.pem")


@pytest.mark.parametrize(
    ("curve", "digest"),
    [
        (ec.SECP256R1(), hashes.SHA256()),
        (ec.SECP384R1(), hashes.SHA384()),
        (ec.SECP256R1(), hashes.SHA512()),
    ],
    ids=["p256-sha256", "p384-sha384", "p256-sha512"],
)
def test_ecdsa_requests_are_checked_with_their_key(
    curve: ec.EllipticCurve, digest: hashes.SHA256 | hashes.SHA384 | hashes.SHA512
) -> None:
    key = ec.generate_private_key(curve)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "press")]))
        .sign(key, digest)
    )
    der = csr.public_bytes(Encoding.DER)
    loaded, public_key = load_csr_key(der, source="ok.der")
    assert public_key == key.public_key()
    assert loaded.public_bytes(Encoding.DER) == der
    # Signed by another key of the same curve: the proof of possession fails. (A signature
    # of the same length, so that the request still parses.)
    other = csr
    while other is csr or len(other.signature) != len(csr.signature):
        other = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(csr.subject)
            .sign(ec.generate_private_key(curve), digest)
        )
    swapped = der.replace(csr.signature, other.signature)
    assert swapped != der
    with pytest.raises(CsrError, match="proof of possession failed"):
        load_csr_key(swapped, source="swapped.der")
