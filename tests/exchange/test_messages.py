"""Secure messages and receipts: a Japanese supplier's software identity sends to the German
customer's key-agreement certificate; the customer answers with a signed receipt.

The identities come from the linked DE/JP test homes (:mod:`tests.trust.linked`). ``jwcrypto``
serves as the independent implementation: it decrypts and verifies what we seal, and seals what
we open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from tests.homes import NOW, Holder, decide, issued, new_holder
from tests.trust.linked import SPEC, Linked, build_linked
from trustbridge import oids
from trustbridge._canonical import canonical_json
from trustbridge.credentials._jose import sign_jws
from trustbridge.errors import InputError
from trustbridge.exchange.messages import (
    ENVELOPE_TYPE,
    MESSAGE_TYPE,
    RECEIPT_TYPE,
    ExpiredMessageError,
    MalformedMessageError,
    MessageError,
    MessageTooLargeError,
    MessageTypeError,
    NotYetValidMessageError,
    OpenedMessage,
    ReceiptMismatchError,
    TamperedMessageError,
    WrongRecipientError,
    WrongSenderError,
    make_receipt,
    open_message,
    seal_message,
    verify_receipt,
)
from trustbridge.home import Home
from trustbridge.pki.ca import certificate_fingerprint, self_signed_certificate
from trustbridge.pki.profiles import (
    OrganizationSubject,
    Purpose,
    SoftwareSubject,
    SubjectKind,
    key_usage,
)
from trustbridge.pki.signers import FileSigner
from trustbridge.trust._jws import b64url_decode, b64url_encode

MUSTER_ID = "VATDE-123456789"
HAYABUSA_ID = "NTRJP-3180001012345"
REPORT = b'{"serial": "HPS200-000001", "torque": 12.5, "result": "pass"}'


@dataclass(frozen=True)
class Identity:
    holder: Holder
    chain: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        return self.holder.key

    @property
    def signer(self) -> FileSigner:
        return self.holder.signer


@dataclass(frozen=True)
class Parties:
    #: Hayabusa's data gateway (a JP software identity): the sender.
    gateway: Identity
    #: Muster's organization key-agreement certificate: the recipient.
    muster_ka: Identity
    #: Muster's organization identity: signs receipts.
    muster: Identity
    #: Hayabusa's own key-agreement certificate: another recipient.
    hayabusa_ka: Identity
    #: The Japanese registration officer: a person identity without organizationIdentifier.
    officer: Identity


def _approved(
    home: Home, officer: Holder, *, ca: str, subject: Any, level: str, purpose: Purpose
) -> Identity:
    holder = new_holder()
    pending = home.submit_request(
        ca=ca, subject=subject, level=level, csr_data=holder.csr(), purpose=purpose
    )
    holder.certificate = issued(decide(home, pending.id, officer))  # type: ignore[union-attr]
    return Identity(holder, (holder.certificate, *home.chain_of(ca)))


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linked]:
    homes = build_linked(tmp_path_factory.mktemp("messages"))
    yield homes
    homes.close()


@pytest.fixture(scope="module")
def parties(linked: Linked) -> Parties:
    de, jp = linked.de, linked.jp
    jp.create_issuing_ca(
        parent="root",
        name="Sakura Device CA",
        slug="devices",
        kinds=[SubjectKind.MACHINE, SubjectKind.SOFTWARE],
        key=SPEC,
    )
    muster = OrganizationSubject(
        name="Muster Maschinenbau GmbH", country="DE", identifier=MUSTER_ID
    )
    hayabusa = OrganizationSubject(
        name="Hayabusa Precision K.K.", country="JP", identifier=HAYABUSA_ID
    )
    gateway = SoftwareSubject(
        name="Hayabusa Data Gateway",
        version="1.4.0",
        organization=hayabusa.name,
        organization_identifier=HAYABUSA_ID,
        country="JP",
    )
    assert linked.jp_officer.certificate is not None
    return Parties(
        gateway=_approved(
            jp,
            linked.jp_officer,
            ca="devices",
            subject=gateway,
            level="jp-level2",
            purpose=Purpose.IDENTITY,
        ),
        muster_ka=_approved(
            de,
            linked.de_officer,
            ca="ids",
            subject=muster,
            level="de-high",
            purpose=Purpose.KEY_AGREEMENT,
        ),
        muster=_approved(
            de,
            linked.de_officer,
            ca="ids",
            subject=muster,
            level="de-high",
            purpose=Purpose.IDENTITY,
        ),
        hayabusa_ka=_approved(
            jp,
            linked.jp_officer,
            ca="ids",
            subject=hayabusa,
            level="jp-level3",
            purpose=Purpose.KEY_AGREEMENT,
        ),
        officer=Identity(linked.jp_officer, (linked.jp_officer.certificate, *jp.chain_of("ids"))),
    )


def seal(parties: Parties, content: bytes = REPORT, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "media_type": "application/json",
        "name": "Test report HPS200-000001",
        "element": "test-report",
        "purpose": "quality-assurance",
        "contract": "contract-2026-0042",
        "sender": parties.gateway.signer,
        "sender_chain": parties.gateway.chain,
        "recipient": parties.muster_ka.certificate,
        "audience": MUSTER_ID,
        "at": NOW,
        "component": "HPS200-000001",
    }
    arguments.update(overrides)
    return seal_message(content, **arguments)


def open_(parties: Parties, token: str, **overrides: Any) -> OpenedMessage:
    arguments: dict[str, Any] = {
        "recipient_key": parties.muster_ka.key,
        "recipient_certificate": parties.muster_ka.certificate,
        "audience": MUSTER_ID,
        "at": NOW + timedelta(seconds=5),
        "source": "peer hayabusa",
    }
    arguments.update(overrides)
    return open_message(token, **arguments)


@pytest.fixture(scope="module")
def token(parties: Parties) -> str:
    return seal(parties, message_id="msg-0001")


# -- JOSE helpers an attacker (or another implementation) would use ----------------------------


def _jwk(key: Any) -> jwcrypto_jwk.JWK:
    return jwcrypto_jwk.JWK.from_pyca(key)


def envelope(
    plaintext: bytes,
    recipient: x509.Certificate,
    *,
    header: dict[str, Any] | None = None,
) -> str:
    """A JWE of ``plaintext`` to ``recipient`` made by jwcrypto, with our header by default."""
    protected = header or {
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "cty": "JWT",
        "typ": ENVELOPE_TYPE,
        "kid": certificate_fingerprint(recipient),
    }
    token = jwcrypto_jwe.JWE(plaintext, protected=json.dumps(protected))
    token.add_recipient(_jwk(recipient.public_key()))
    result: str = token.serialize(compact=True)
    return result


def decrypt(token: str, key: ec.EllipticCurvePrivateKey) -> bytes:
    """jwcrypto decrypts a JWE."""
    jwe = jwcrypto_jwe.JWE()
    jwe.deserialize(token, key=_jwk(key))
    payload: bytes = jwe.payload
    return payload


def inner_parts(parties: Parties, token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header_b64, payload_b64, signature = decrypt(token, parties.muster_ka.key).decode().split(".")
    return (
        json.loads(b64url_decode(header_b64)),
        json.loads(b64url_decode(payload_b64)),
        signature,
    )


def resigned(parties: Parties, token: str, **changes: Any) -> str:
    """The same message with changed claims, correctly signed by the gateway and re-encrypted."""
    header, claims, _ = inner_parts(parties, token)
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    header.pop("alg")
    jws = sign_jws(header, canonical_json(claims), parties.gateway.signer)
    return envelope(jws.encode(), parties.muster_ka.certificate)


def x5c(chain: tuple[x509.Certificate, ...]) -> list[str]:
    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in chain]


def flip(segment: str) -> str:
    """The segment with its first character changed (a canonical base64url either way)."""
    return ("B" if segment[0] == "A" else "A") + segment[1:]


def with_part(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def self_signed(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *, key_agreement: bool = True
) -> x509.Certificate:
    """A stand-alone certificate for keys no trustbridge profile issues (P-384, RSA)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Muster Maschinenbau GmbH"),
            x509.NameAttribute(oids.ID_AT_ORGANIZATION_IDENTIFIER, MUSTER_ID),
        ]
    )
    usage = key_usage("key_agreement" if key_agreement else "digital_signature")
    return self_signed_certificate(
        FileSigner(key),
        name,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=365),
        extensions=((usage, True),),
    )


# -- round trip --------------------------------------------------------------------------------


def test_round_trip(parties: Parties, token: str) -> None:
    message = open_(parties, token)
    assert message.content == REPORT
    assert message.id == "msg-0001"
    assert message.organization == HAYABUSA_ID
    assert message.audience == MUSTER_ID
    assert (
        message.subject
        == "urn:trustbridge:software:NTRJP-3180001012345:hayabusa-data-gateway:1.4.0"
    )
    assert message.sender == parties.gateway.certificate
    assert message.sender_chain == parties.gateway.chain
    assert (message.contract, message.element, message.purpose) == (
        "contract-2026-0042",
        "test-report",
        "quality-assurance",
    )
    assert message.name == "Test report HPS200-000001"
    assert message.media_type == "application/json"
    assert message.component == "HPS200-000001"
    assert message.issued_at == NOW
    assert message.expires_at == NOW + timedelta(minutes=10)
    assert message.content_digest == b64url_encode(hashlib.sha256(REPORT).digest())
    assert message.token_digest == b64url_encode(hashlib.sha256(token.encode()).digest())
    # the inner token is the signed evidence: it verifies on its own
    assert message.jws == decrypt(token, parties.muster_ka.key).decode()
    metadata = message.to_json()
    assert "content" not in metadata
    assert REPORT.decode() not in json.dumps(metadata)
    assert metadata["size"] == len(REPORT)
    assert metadata["token_digest"] == message.token_digest


def test_headers_are_the_documented_ones(parties: Parties, token: str) -> None:
    header = json.loads(b64url_decode(token.split(".", maxsplit=1)[0]))
    assert {k: header[k] for k in ("alg", "enc", "cty", "typ", "kid")} == {
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "cty": "JWT",
        "typ": "tb-message+jwe",
        "kid": certificate_fingerprint(parties.muster_ka.certificate),
    }
    assert header["epk"]["crv"] == "P-256"
    assert token.split(".")[1] == ""  # direct key agreement: no encrypted key
    inner, claims, _ = inner_parts(parties, token)
    assert inner["typ"] == MESSAGE_TYPE and inner["alg"] == "ES256"
    assert len(inner["x5c"]) == len(parties.gateway.chain)
    assert claims["exp"] - claims["iat"] == 600
    assert claims["digest"] == b64url_encode(hashlib.sha256(REPORT).digest())


def test_every_message_gets_a_fresh_id_and_key(parties: Parties) -> None:
    first, second = seal(parties), seal(parties)
    assert first.split(".")[0] != second.split(".")[0]  # fresh ephemeral key
    assert open_(parties, first).id != open_(parties, second).id


@settings(max_examples=25, deadline=None)
@example(content=b"")
@given(content=st.binary(max_size=2048))
def test_any_content_round_trips(parties: Parties, content: bytes) -> None:
    message = open_(parties, seal(parties, content))
    assert message.content == content
    assert message.content_digest == b64url_encode(hashlib.sha256(content).digest())


# -- sealing refuses ---------------------------------------------------------------------------


def test_a_sender_key_that_its_chain_does_not_certify_is_refused(parties: Parties) -> None:
    with pytest.raises(InputError, match="does not certify the key"):
        seal(parties, sender=new_holder().signer)
    with pytest.raises(InputError, match="does not certify the key"):
        seal(parties, sender_chain=parties.muster.chain)


def test_a_sender_without_organization_identifier_is_refused(parties: Parties) -> None:
    with pytest.raises(InputError, match="names no organizationIdentifier"):
        seal(parties, sender=parties.officer.signer, sender_chain=parties.officer.chain)


@pytest.mark.parametrize(
    ("key", "match"),
    [
        (ec.generate_private_key(ec.SECP384R1()), "secp384r1 key"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSAPublicKey key"),
    ],
    ids=["p384", "rsa"],
)
def test_a_recipient_that_is_not_p256_is_refused(parties: Parties, key: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        seal(parties, recipient=self_signed(key))


def test_a_recipient_identity_certificate_is_refused(parties: Parties) -> None:
    # P-256, but an identity (signature) certificate, not a key-agreement certificate
    with pytest.raises(InputError, match="not a key-agreement certificate"):
        seal(parties, recipient=parties.muster.certificate)


def test_a_recipient_of_another_organization_than_the_audience_is_refused(
    parties: Parties,
) -> None:
    with pytest.raises(InputError, match="belongs to NTRJP-3180001012345"):
        seal(parties, recipient=parties.hayabusa_ka.certificate)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"lifetime": timedelta(days=2)}, "lifetime"),
        ({"lifetime": timedelta(0)}, "lifetime"),
        ({"element": "Test Report"}, "element"),
        ({"purpose": ""}, "purpose"),
        ({"media_type": "json"}, "media_type"),
        ({"contract": " "}, "contract"),
        ({"message_id": "id with spaces"}, "message id"),
        ({"at": NOW + timedelta(days=20 * 365)}, "not valid at"),
    ],
)
def test_bad_message_fields_are_refused(
    parties: Parties, overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(InputError, match=match):
        seal(parties, **overrides)


# -- opening refuses: the envelope ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "what"), [(0, "header"), (2, "iv"), (3, "ciphertext"), (4, "tag")]
)
def test_a_tampered_envelope_is_refused(
    parties: Parties, token: str, index: int, what: str
) -> None:
    part = token.split(".")[index]
    if index == 0:
        # the same header members, serialized differently: still the AAD of AES-GCM
        header = json.loads(b64url_decode(part))
        part = b64url_encode(json.dumps(header, indent=1).encode())
    else:
        part = flip(part)
    with pytest.raises(TamperedMessageError, match="does not decrypt") as caught:
        open_(parties, with_part(token, index, part))
    assert caught.value.token_digest is not None
    assert not caught.value.sender_identified


def test_a_substituted_ephemeral_key_is_refused(parties: Parties, token: str) -> None:
    header = json.loads(b64url_decode(token.split(".", maxsplit=1)[0]))
    other = _jwk(ec.generate_private_key(ec.SECP256R1()).public_key()).export_public(as_dict=True)
    header["epk"] = {k: other[k] for k in ("kty", "crv", "x", "y")}
    forged = with_part(token, 0, b64url_encode(json.dumps(header).encode()))
    with pytest.raises(TamperedMessageError, match="does not decrypt"):
        open_(parties, forged)


def test_wrong_recipient_key_is_refused(parties: Parties, token: str) -> None:
    with pytest.raises(WrongRecipientError, match="encrypted to certificate"):
        open_(
            parties,
            token,
            recipient_key=parties.hayabusa_ka.key,
            recipient_certificate=parties.hayabusa_ka.certificate,
            audience=HAYABUSA_ID,
        )
    with pytest.raises(InputError, match="recipient key does not belong"):
        open_(parties, token, recipient_key=parties.hayabusa_ka.key)


def test_a_kid_pointed_at_us_does_not_decrypt_a_message_for_someone_else(
    parties: Parties,
) -> None:
    for_hayabusa = seal(parties, recipient=parties.hayabusa_ka.certificate, audience=HAYABUSA_ID)
    header = json.loads(b64url_decode(for_hayabusa.split(".")[0]))
    header["kid"] = certificate_fingerprint(parties.muster_ka.certificate)
    forged = with_part(for_hayabusa, 0, b64url_encode(json.dumps(header).encode()))
    with pytest.raises(TamperedMessageError, match="not encrypted to this key"):
        open_(parties, forged)


def test_wrong_audience_is_refused(parties: Parties, token: str) -> None:
    with pytest.raises(WrongRecipientError, match="addressed to 'VATDE-123456789'") as caught:
        open_(parties, token, audience="VATDE-987654321")
    # the signature verified: the receiver can name the sender in a refusal receipt
    assert caught.value.sender_identified
    assert caught.value.message_id == "msg-0001"
    assert caught.value.organization == HAYABUSA_ID


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"alg": "ECDH-ES+A256KW"}, MalformedMessageError, "JWE alg 'ECDH-ES\\+A256KW'"),
        ({"alg": "dir"}, MalformedMessageError, "JWE alg 'dir'"),
        ({"enc": "A128GCM"}, MalformedMessageError, "JWE enc 'A128GCM'"),
        ({"enc": "A256CBC-HS512"}, MalformedMessageError, "JWE enc"),
        ({"typ": RECEIPT_TYPE}, MessageTypeError, "JWE typ"),
        ({"cty": "json"}, MalformedMessageError, "JWE cty"),
        ({"zip": "DEF"}, MalformedMessageError, "not allowed: zip"),
        ({"crit": ["exp"]}, MalformedMessageError, "not allowed: crit"),
        ({"kid": None}, WrongRecipientError, "encrypted to certificate"),
        ({"kid": "f\u00fcr-muster"}, WrongRecipientError, "encrypted to certificate"),
        ({"kid": 7}, WrongRecipientError, "encrypted to certificate"),
    ],
)
def test_only_the_exact_envelope_header_is_accepted(
    parties: Parties, changes: dict[str, Any], error: type[MessageError], match: str
) -> None:
    header = {
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "cty": "JWT",
        "typ": ENVELOPE_TYPE,
        "kid": certificate_fingerprint(parties.muster_ka.certificate),
    }
    header.update(changes)
    header = {k: v for k, v in header.items() if v is not None}
    plaintext = decrypt(seal(parties), parties.muster_ka.key)
    if header["alg"] in ("dir",):
        # jwcrypto needs a symmetric key for dir: the header check comes before any key
        fake = (
            b64url_encode(json.dumps(header).encode())
            + "..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"
        )
        token = fake
    else:
        token = envelope(plaintext, parties.muster_ka.certificate, header=header)
    with pytest.raises(error, match=match):
        open_(parties, token)


def test_an_encrypted_key_is_refused(parties: Parties, token: str) -> None:
    # RFC 7518 4.6: ECDH-ES in direct key agreement mode has no encrypted key
    with pytest.raises(MalformedMessageError, match="carries an encrypted key"):
        open_(parties, with_part(token, 1, "AAAA"))


def test_oversize_is_refused_before_parsing(parties: Parties, token: str) -> None:
    with pytest.raises(MessageTooLargeError, match="at most 1024"):
        open_(parties, "x" * 1025, max_size=1024)  # not a JWE at all: never parsed
    with pytest.raises(MessageTooLargeError, match=f"has {len(token)} characters"):
        open_(parties, token, max_size=len(token) - 1)
    assert open_(parties, token, max_size=len(token)).id == "msg-0001"


@pytest.mark.parametrize(
    "text",
    ["", "a.b.c", "....", "é....", "not-a-jwe", "e30.." + "A" * 10 + ".AA.AA"],
)
def test_garbage_is_malformed(parties: Parties, text: str) -> None:
    with pytest.raises(MalformedMessageError):
        open_(parties, text)


# -- opening refuses: the signed message ---------------------------------------------------------


def test_a_tampered_inner_signature_is_refused(parties: Parties, token: str) -> None:
    header_b64, payload_b64, signature = decrypt(token, parties.muster_ka.key).decode().split(".")
    forged = envelope(
        f"{header_b64}.{payload_b64}.{flip(signature)}".encode(), parties.muster_ka.certificate
    )
    with pytest.raises(TamperedMessageError, match="signature does not verify"):
        open_(parties, forged)
    # a changed claim under the old signature
    claims = json.loads(b64url_decode(payload_b64))
    claims["purpose"] = "marketing"
    changed = b64url_encode(canonical_json(claims))
    forged = envelope(f"{header_b64}.{changed}.{signature}".encode(), parties.muster_ka.certificate)
    with pytest.raises(TamperedMessageError, match="signature does not verify"):
        open_(parties, forged)


def _unsigned(parties: Parties, token: str, alg: str) -> tuple[str, str, dict[str, Any]]:
    header, claims, _ = inner_parts(parties, token)
    header["alg"] = alg
    return b64url_encode(canonical_json(header)), b64url_encode(canonical_json(claims)), header


def test_alg_none_is_refused(parties: Parties, token: str) -> None:
    header_b64, payload_b64, _ = _unsigned(parties, token, "none")
    for signature in ("", "AAAA"):
        forged = envelope(
            f"{header_b64}.{payload_b64}.{signature}".encode(), parties.muster_ka.certificate
        )
        with pytest.raises(MessageError, match=r"empty|'none' is refused"):
            open_(parties, forged)


def test_hs256_keyed_with_the_public_certificate_is_refused(parties: Parties, token: str) -> None:
    # the classic confusion: HMAC keyed with the sender's (public) certificate or key
    header_b64, payload_b64, header = _unsigned(parties, token, "HS256")
    signing_input = f"{header_b64}.{payload_b64}".encode()
    for secret in (base64.b64decode(header["x5c"][0]), json.dumps(header["x5c"]).encode()):
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        forged = envelope(
            f"{header_b64}.{payload_b64}.{b64url_encode(mac)}".encode(),
            parties.muster_ka.certificate,
        )
        with pytest.raises(TamperedMessageError, match="'HS256' is not ES256"):
            open_(parties, forged)


def test_es384_header_for_a_p256_leaf_is_refused(parties: Parties, token: str) -> None:
    header_b64, payload_b64, _ = _unsigned(parties, token, "ES384")
    _, _, signature = inner_parts(parties, token)
    forged = envelope(
        f"{header_b64}.{payload_b64}.{signature}".encode(), parties.muster_ka.certificate
    )
    with pytest.raises(TamperedMessageError, match="'ES384' is not ES256"):
        open_(parties, forged)


def test_a_digest_mismatch_is_refused(parties: Parties, token: str) -> None:
    forged = resigned(parties, token, digest=b64url_encode(hashlib.sha256(b"other").digest()))
    with pytest.raises(TamperedMessageError, match="does not match its digest") as caught:
        open_(parties, forged)
    assert caught.value.sender_identified
    forged = resigned(parties, token, content=b64url_encode(b"other content"))
    with pytest.raises(TamperedMessageError, match="does not match its digest"):
        open_(parties, forged)


def test_expired_and_future_messages_are_refused(parties: Parties, token: str) -> None:
    # within the clock skew on both sides
    open_(parties, token, at=NOW - timedelta(seconds=29))
    open_(parties, token, at=NOW + timedelta(minutes=10, seconds=29))
    with pytest.raises(ExpiredMessageError, match="expired at 2026-06-01T12:10:00"):
        open_(parties, token, at=NOW + timedelta(minutes=10, seconds=30))
    with pytest.raises(NotYetValidMessageError, match="issued at 2026-06-01T12:00:00"):
        open_(parties, token, at=NOW - timedelta(seconds=31))
    with pytest.raises(ExpiredMessageError):
        open_(parties, token, at=NOW + timedelta(minutes=10), max_skew=timedelta(0))


def test_a_lifetime_beyond_a_day_is_refused(parties: Parties, token: str) -> None:
    iat = int(NOW.timestamp())
    forged = resigned(parties, token, exp=iat + 86401)
    with pytest.raises(MalformedMessageError, match="lifetime"):
        open_(parties, forged)
    forged = resigned(parties, token, exp=iat)
    with pytest.raises(MalformedMessageError, match="lifetime"):
        open_(parties, forged)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"iss": MUSTER_ID}, WrongSenderError, "iss 'VATDE-123456789' is not"),
        ({"sub": "urn:trustbridge:software:x:y:1"}, WrongSenderError, "sub"),
        ({"aud": [MUSTER_ID]}, MalformedMessageError, "claim aud is not a str"),
        ({"iat": "2026-06-01"}, MalformedMessageError, "claim iat is not an integer"),
        ({"exp": True}, MalformedMessageError, "claim exp is not an integer"),
        ({"contract": None}, MalformedMessageError, "claim contract is missing"),
        ({"element": "Test Report"}, MalformedMessageError, "element"),
        ({"component": 7}, MalformedMessageError, "claim component is not a str"),
        ({"extra": "x"}, MalformedMessageError, "claim extra is not allowed"),
        ({"content": "not base64!"}, MalformedMessageError, "claim content is not base64url"),
    ],
)
def test_claims_are_checked(
    parties: Parties, token: str, changes: dict[str, Any], error: type[MessageError], match: str
) -> None:
    with pytest.raises(error, match=match):
        open_(parties, resigned(parties, token, **changes))


def test_a_message_signed_with_a_foreign_header_member_is_refused(
    parties: Parties, token: str
) -> None:
    header, claims, _ = inner_parts(parties, token)
    header.pop("alg")
    header["jku"] = "https://attacker.example/keys"
    jws = sign_jws(header, canonical_json(claims), parties.gateway.signer)
    with pytest.raises(MalformedMessageError, match="not allowed: jku"):
        open_(parties, envelope(jws.encode(), parties.muster_ka.certificate))


def test_a_message_signed_with_a_key_agreement_key_is_refused(parties: Parties, token: str) -> None:
    with pytest.raises(InputError, match="does not allow digital signatures"):
        seal(parties, sender=parties.muster_ka.signer, sender_chain=parties.muster_ka.chain)
    header, claims, _ = inner_parts(parties, token)
    claims.update(iss=MUSTER_ID, sub=parties.muster_ka.certificate.subject.rfc4514_string())
    header = {"typ": MESSAGE_TYPE, "x5c": x5c(parties.muster_ka.chain)}
    jws = sign_jws(header, canonical_json(claims), parties.muster_ka.signer)
    with pytest.raises(WrongSenderError, match="does not allow digital signatures"):
        open_(parties, envelope(jws.encode(), parties.muster_ka.certificate))


# -- receipts ----------------------------------------------------------------------------------


def receipt(parties: Parties, message: OpenedMessage | None, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "message_id": message.id if message else "msg-0001",
        "token_digest": message.token_digest if message else "A" * 43,
        "accepted": True,
        "reason": "allowed by the contract's data-usage policy",
        "policies": ("contract-2026-0042/test-report",),
        "signer": parties.muster.signer,
        "chain": parties.muster.chain,
        "at": NOW + timedelta(seconds=6),
        "receiver": MUSTER_ID,
    }
    arguments.update(overrides)
    return make_receipt(message, **arguments)


def test_receipt_round_trip(parties: Parties, token: str) -> None:
    message = open_(parties, token)
    signed = receipt(parties, message)
    checked = verify_receipt(
        signed, at=NOW + timedelta(seconds=7), expect_digest=message.token_digest, source="muster"
    )
    assert checked.message_id == "msg-0001"
    assert checked.digest == message.token_digest
    assert checked.accepted is True
    assert checked.reason == "allowed by the contract's data-usage policy"
    assert checked.policies == ("contract-2026-0042/test-report",)
    assert checked.issued_at == NOW + timedelta(seconds=6)
    assert checked.signer_chain == parties.muster.chain
    assert checked.receiver == MUSTER_ID
    assert checked.sender == HAYABUSA_ID
    assert checked.to_json()["accepted"] is True
    header = json.loads(b64url_decode(signed.split(".")[0]))
    assert header["typ"] == RECEIPT_TYPE
    # jwcrypto verifies it with the x5c leaf
    jws = jwcrypto_jws.JWS()
    jws.deserialize(signed)
    jws.verify(_jwk(parties.muster.certificate.public_key()), alg="ES256")


def test_a_refused_message_gets_a_receipt_naming_its_sender(parties: Parties, token: str) -> None:
    with pytest.raises(MessageError) as caught:
        open_(parties, token, at=NOW + timedelta(hours=1))
    error = caught.value
    assert error.message_id is not None and error.token_digest is not None
    signed = receipt(
        parties,
        None,
        message_id=error.message_id,
        token_digest=error.token_digest,
        accepted=False,
        reason=error.message,
        policies=(),
        sender_organization=error.organization,
    )
    checked = verify_receipt(signed, at=NOW + timedelta(hours=1))
    assert checked.accepted is False
    assert "expired" in checked.reason
    assert checked.sender == HAYABUSA_ID
    assert checked.policies == ()


def test_a_receipt_must_match_its_message_and_signer(parties: Parties, token: str) -> None:
    message = open_(parties, token)
    with pytest.raises(InputError, match="but the opened message is"):
        receipt(parties, message, message_id="msg-9999")
    with pytest.raises(InputError, match="belongs to VATDE-123456789, not to"):
        receipt(parties, message, receiver="VATDE-987654321")
    with pytest.raises(InputError, match="does not certify the key"):
        receipt(parties, message, signer=parties.gateway.signer)
    with pytest.raises(InputError, match="does not allow digital signatures"):
        receipt(parties, message, signer=parties.muster_ka.signer, chain=parties.muster_ka.chain)
    with pytest.raises(InputError, match="reason"):
        receipt(parties, message, reason="")


def test_a_receipt_for_another_message_is_refused(parties: Parties, token: str) -> None:
    message = open_(parties, token)
    signed = receipt(parties, message)
    with pytest.raises(ReceiptMismatchError, match="not the message with digest"):
        verify_receipt(signed, at=NOW + timedelta(seconds=7), expect_digest="B" * 43)


def test_a_tampered_receipt_is_refused(parties: Parties, token: str) -> None:
    signed = receipt(parties, open_(parties, token), accepted=False, reason="denied")
    header_b64, payload_b64, signature = signed.split(".")
    claims = json.loads(b64url_decode(payload_b64))
    claims["accepted"] = True
    forged = f"{header_b64}.{b64url_encode(canonical_json(claims))}.{signature}"
    with pytest.raises(TamperedMessageError, match="signature does not verify"):
        verify_receipt(forged, at=NOW + timedelta(seconds=7))
    with pytest.raises(TamperedMessageError, match="signature does not verify"):
        verify_receipt(f"{header_b64}.{payload_b64}.{flip(signature)}", at=NOW)
    with pytest.raises(NotYetValidMessageError, match="receipt was issued"):
        verify_receipt(signed, at=NOW - timedelta(minutes=1))


def test_a_receipt_is_not_a_message(parties: Parties, token: str) -> None:
    signed = receipt(parties, open_(parties, token))
    with pytest.raises(MalformedMessageError, match="3 dot-separated parts instead of 5"):
        open_(parties, signed)
    # even encrypted to the recipient (its key-agreement certificate is public)
    with pytest.raises(MessageTypeError, match="'tb-receipt\\+jwt' is not 'tb-message\\+jwt'"):
        open_(parties, envelope(signed.encode(), parties.muster_ka.certificate))


def test_a_message_is_not_a_receipt(parties: Parties, token: str) -> None:
    with pytest.raises(MalformedMessageError, match="not a JWT"):
        verify_receipt(token, at=NOW)
    inner = open_(parties, token).jws
    with pytest.raises(MessageTypeError, match="'tb-message\\+jwt' is not 'tb-receipt\\+jwt'"):
        verify_receipt(inner, at=NOW)


# -- interoperability with jwcrypto --------------------------------------------------------------


def test_jwcrypto_opens_what_we_seal(parties: Parties, token: str) -> None:
    jwe = jwcrypto_jwe.JWE()
    jwe.deserialize(token, key=_jwk(parties.muster_ka.key))
    assert jwe.jose_header["alg"] == "ECDH-ES" and jwe.jose_header["enc"] == "A256GCM"
    jws = jwcrypto_jws.JWS()
    jws.deserialize(jwe.payload.decode())
    jws.verify(_jwk(parties.gateway.certificate.public_key()), alg="ES256")
    claims = json.loads(jws.payload)
    assert b64url_decode(claims["content"]) == REPORT
    assert jws.jose_header["typ"] == MESSAGE_TYPE


def test_we_open_what_jwcrypto_seals(parties: Parties) -> None:
    content = b"firmware bill of materials"
    iat = int(NOW.timestamp())
    claims = {
        "iss": HAYABUSA_ID,
        "sub": "urn:trustbridge:software:NTRJP-3180001012345:hayabusa-data-gateway:1.4.0",
        "aud": MUSTER_ID,
        "jti": "jwcrypto-1",
        "iat": iat,
        "exp": iat + 300,
        "contract": "contract-2026-0042",
        "element": "firmware-bom",
        "purpose": "vulnerability-management",
        "name": "Firmware BOM HPS200",
        "media_type": "application/spdx+json",
        "content": b64url_encode(content),
        "digest": b64url_encode(hashlib.sha256(content).digest()),
    }
    jws = jwcrypto_jws.JWS(json.dumps(claims).encode())
    jws.add_signature(
        _jwk(parties.gateway.key),
        alg="ES256",
        protected=json.dumps(
            {
                "alg": "ES256",
                "typ": MESSAGE_TYPE,
                "x5c": x5c(parties.gateway.chain),
            }
        ),
    )
    token = envelope(jws.serialize(compact=True).encode(), parties.muster_ka.certificate)
    message = open_(parties, token)
    assert message.content == content
    assert message.element == "firmware-bom"
    assert message.component is None
    assert message.sender == parties.gateway.certificate


def test_naive_and_aware_times_agree(parties: Parties, token: str) -> None:
    naive = (NOW + timedelta(seconds=5)).astimezone(UTC).replace(tzinfo=None)
    assert open_(parties, token, at=naive).issued_at == NOW
