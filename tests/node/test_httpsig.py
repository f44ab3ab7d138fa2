"""RFC 9421 signed requests: what verifies, and every way a request is refused."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from http_message_signatures import HTTPMessageVerifier, algorithms

from trustbridge.errors import AuthenticationError, InputError
from trustbridge.node.httpsig import (
    CHAIN_HEADER,
    decode_chain,
    encode_chain,
    sign_request,
    verify_request,
)
from trustbridge.pki.ca import self_signed_certificate
from trustbridge.pki.signers import FileSigner

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
URL = "https://node.example:8443/api/v1/certificates/1a2b/revoke?ca=devices"
BODY = b'{"reason": "key-compromise"}'


def self_signed(key: CertificateIssuerPrivateKeyTypes, name: str = "caller") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    return self_signed_certificate(
        FileSigner(key),
        subject,
        not_before=AT - timedelta(days=1),
        not_after=AT + timedelta(days=1),
    )


KEYS: dict[str, Callable[[], CertificateIssuerPrivateKeyTypes]] = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "rsa": lambda: rsa.generate_private_key(65537, 2048),
}


def signed(
    key: CertificateIssuerPrivateKeyTypes | None = None, *, at: datetime = AT, body: bytes = BODY
) -> tuple[dict[str, str], x509.Certificate]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key)
    headers = sign_request(
        method="POST", url=URL, body=body, signer=FileSigner(key), chain=[cert], at=at
    )
    return headers, cert


def check(headers: dict[str, str], **changes: object) -> object:
    args: dict[str, object] = {
        "method": "POST",
        "url": URL,
        "headers": list(headers.items()),
        "body": BODY,
        "at": AT + timedelta(seconds=2),
    }
    args.update(changes)
    return verify_request(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_every_identity_key_type_signs_and_verifies(kind: str) -> None:
    headers, cert = signed(KEYS[kind]())
    caller = check(headers)
    assert caller.certificate == cert  # type: ignore[attr-defined]
    assert caller.nonce and caller.expires - caller.created == timedelta(minutes=5)  # type: ignore[attr-defined]
    assert 'tag="trustbridge/v1"' in headers["signature-input"]
    for component in ('"@method"', '"@target-uri"', '"content-digest"', f'"{CHAIN_HEADER}"'):
        assert component in headers["signature-input"]


def test_the_library_alone_verifies_our_signature_with_the_certificate_key() -> None:
    """An independent check: the signature is plain RFC 9421, not something only we read."""
    key = ec.generate_private_key(ec.SECP256R1())
    headers, cert = signed(key)

    class Message:
        method, url = "POST", URL

    Message.headers = headers  # type: ignore[attr-defined]

    class Keys:
        def resolve_public_key(self, key_id: str) -> object:
            return cert.public_key()

    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ECDSA_P256_SHA256,
        key_resolver=Keys(),  # type: ignore[arg-type]
    )
    verifier.max_clock_skew = timedelta(days=3650)
    results = verifier.verify(Message(), expect_tag="trustbridge/v1", max_age=None, body=BODY)
    assert results[0].body == BODY


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": b'{"reason": "superseded"}'}, "Content-Digest does not match"),
        ({"url": URL.replace("1a2b", "ffff")}, "does not verify"),
        ({"method": "DELETE"}, "does not verify"),
        ({"at": AT + timedelta(minutes=6)}, "expired"),
        ({"at": AT - timedelta(minutes=1)}, "future"),
    ],
)
def test_a_changed_or_stale_request_is_refused(change: dict[str, object], message: str) -> None:
    headers, _ = signed()
    with pytest.raises(AuthenticationError, match=message):
        check(headers, **change)


def test_a_chain_of_someone_else_is_refused() -> None:
    headers, _ = signed()
    other = self_signed(ec.generate_private_key(ec.SECP256R1()), "mallory")
    headers[CHAIN_HEADER] = encode_chain([other])
    with pytest.raises(AuthenticationError, match=r"keyid .* is not the fingerprint"):
        check(headers)


def test_unsigned_and_malformed_requests_are_refused_with_the_reason() -> None:
    with pytest.raises(AuthenticationError, match="carries no trustbridge-chain"):
        check({})
    headers, _ = signed()
    for bad, message in [
        ("not a list ((", "not a Structured Field list"),
        (":" + base64.b64encode(b"junk").decode() + ":", "not a DER certificate"),
        ("1, 2", "not a byte sequence"),
    ]:
        with pytest.raises(AuthenticationError, match=message):
            check({**headers, CHAIN_HEADER: bad})
    del headers["signature"]
    with pytest.raises(AuthenticationError, match="Signature"):
        check(headers)


def test_a_signature_with_a_long_lifetime_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key)
    headers = sign_request(
        method="POST",
        url=URL,
        body=BODY,
        signer=FileSigner(key),
        chain=[cert],
        at=AT,
        lifetime=timedelta(hours=1),
    )
    with pytest.raises(AuthenticationError, match="lifetime exceeds"):
        check(headers)


def test_signing_with_a_key_that_is_not_the_certificates_is_an_input_error() -> None:
    cert = self_signed(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(InputError, match="does not belong"):
        sign_request(
            method="GET",
            url=URL,
            body=b"",
            signer=FileSigner(ec.generate_private_key(ec.SECP256R1())),
            chain=[cert],
            at=AT,
        )


def test_chain_header_round_trip() -> None:
    certs = [self_signed(KEYS["p256"](), f"c{i}") for i in range(3)]
    assert decode_chain(encode_chain(certs)) == tuple(certs)
