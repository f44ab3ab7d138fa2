"""DSSE v1: the pre-authentication encoding, the JSON envelope, signing and verification."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.provenance import World
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.signers import FileSigner
from trustbridge.provenance.dsse import (
    Envelope,
    EnvelopeFormatError,
    EnvelopeSignature,
    EnvelopeSignatureError,
    PublicKey,
    pae,
    sign_envelope,
    verify_envelope,
)

IN_TOTO = "application/vnd.in-toto+json"
#: ``{"_type":"https://in-toto.io/Statement/v1"}``, 43 bytes.
STATEMENT = b'{"_type":"https://in-toto.io/Statement/v1"}'

# Known answers from the DSSE repository: protocol.md ("Test Vectors") and
# testvectors/vectors.json (key "A" is the Ed25519 key of RFC 8032 7.1, TEST 1).
KEY_A_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
KEY_A_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
PAE_STATEMENT = bytes.fromhex(
    "445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203433207b22"
    "5f74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d"
)
SIG_STATEMENT = (
    "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA=="
)


def _key_a() -> FileSigner:
    return FileSigner(ed25519.Ed25519PrivateKey.from_private_bytes(KEY_A_SEED), source="A")


def _public_a() -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(KEY_A_PUBLIC)


# -- PAE ----------------------------------------------------------------------------------------


def test_pae_of_the_protocol_example() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize(
    ("payload_type", "payload", "expected"),
    [
        (IN_TOTO, STATEMENT, PAE_STATEMENT),
        (
            IN_TOTO,
            bytes.fromhex("fbffbf3e3f"),
            b"DSSEv1 28 " + IN_TOTO.encode() + b" 5 \xfb\xff\xbf>?",
        ),
        # LEN is the byte length of the UTF-8 type: 29 bytes for 28 characters.
        (
            "application/vnd.ex\u00e4mple+json",
            STATEMENT,
            b"DSSEv1 29 application/vnd.ex\xc3\xa4mple+json 43 " + STATEMENT,
        ),
        # An empty body keeps its separator: "... 0 ".
        (IN_TOTO, b"", b"DSSEv1 28 " + IN_TOTO.encode() + b" 0 "),
        ("", STATEMENT, b"DSSEv1 0  43 " + STATEMENT),
    ],
)
def test_pae_known_answers(payload_type: str, payload: bytes, expected: bytes) -> None:
    assert pae(payload_type, payload) == expected


def test_ed25519_signature_matches_the_dsse_test_vector() -> None:
    envelope = sign_envelope(IN_TOTO, STATEMENT, _key_a(), keyid="A")
    assert envelope.to_json() == {
        "payload": "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
        "payloadType": IN_TOTO,
        "signatures": [{"keyid": "A", "sig": SIG_STATEMENT}],
    }


# -- the vectors' envelopes ---------------------------------------------------------------------


def _vector(payload: str, payload_type: str, sig: str) -> dict[str, Any]:
    return {"payload": payload, "payloadType": payload_type, "signatures": [{"sig": sig}]}


ACCEPTED = {
    "single-signature": _vector(
        "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==", IN_TOTO, SIG_STATEMENT
    ),
    "url-safe-base64": _vector(
        "-_-_Pj8=",
        IN_TOTO,
        "P-_KHICeR7tI6S_YyejJTRtrXhcQyQ2LYPaL8h90KjC9qN8HU_svOQ6TuDOT1HIrsGW886DbWNWcCmX5twLrAw==",
    ),
    "non-ascii-payload-type": _vector(
        "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
        "application/vnd.ex\u00e4mple+json",
        "xmSk/ug66ysT7ayhkCIjhAq42zgZXSsEWuzUaNL7w2eGAdF/NU6/fRXPtmfN+5DNSAs5/i2lUnHjbbjPsu0tAw==",
    ),
    "empty-payload": _vector(
        "",
        IN_TOTO,
        "gSggCAaTLTYyRH6FIDBem6meyIynsYy8RTHVzwx9tnTb7Bg/1jMWnuVgI/gffqmbsC2VX5/jHfkkDqsj7CDbDg==",
    ),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_vectors_that_verify(name: str) -> None:
    data = ACCEPTED[name]
    envelope = Envelope.from_json(data, source=name)
    payload = verify_envelope(envelope, _public_a(), payload_type=data["payloadType"])
    assert payload == base64.urlsafe_b64decode(data["payload"].replace("+", "-").replace("/", "_"))


def test_vector_with_a_swapped_payload_type_is_refused() -> None:
    data = dict(ACCEPTED["single-signature"], payloadType="application/vnd.example.other+json")
    envelope = Envelope.from_json(data, source="payload-type-swapped")
    with pytest.raises(EnvelopeSignatureError, match="does not verify"):
        verify_envelope(envelope, _public_a(), payload_type="application/vnd.example.other+json")


def test_vector_with_an_empty_payload_type_is_refused() -> None:
    data = _vector(
        "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
        "",
        "iC3q/+3Rm0+lpAJRueDmDh15PnwCfxKmS0NAfKsbv+zgulXQC/WM9trc+j1XEqlwDIg/vf/uNfebeD6sxInrDg==",
    )
    envelope = Envelope.from_json(data, source="empty-payload-type")
    # The signature is valid, but nobody supports the empty type.
    with pytest.raises(EnvelopeSignatureError, match="payload type '' is not"):
        verify_envelope(envelope, _public_a(), payload_type=IN_TOTO)


# -- signing and verifying with each key type --------------------------------------------------


@pytest.mark.parametrize("key_type", list(KeyType))
def test_sign_and_verify_each_key_type(key_type: KeyType) -> None:
    signer = FileSigner(generate_private_key(key_type), source=key_type.value)
    envelope = sign_envelope(IN_TOTO, STATEMENT, signer, keyid="k")
    public = signer.public_key
    assert isinstance(public, PublicKey)
    assert verify_envelope(envelope, public, payload_type=IN_TOTO) == STATEMENT
    changed = Envelope(IN_TOTO, STATEMENT + b" ", envelope.signatures)
    with pytest.raises(EnvelopeSignatureError, match="does not verify"):
        verify_envelope(changed, public, payload_type=IN_TOTO)


def test_verify_with_a_certificate(w: World) -> None:
    envelope = sign_envelope(IN_TOTO, STATEMENT, w.station.identity.signer, keyid="station")
    assert (
        verify_envelope(envelope, w.station.certificate, payload_type=IN_TOTO, keyids=("station",))
        == STATEMENT
    )
    with pytest.raises(EnvelopeSignatureError, match="does not verify"):
        verify_envelope(envelope, w.qa.certificate, payload_type=IN_TOTO)
    with pytest.raises(EnvelopeSignatureError, match="no signature of the envelope names"):
        verify_envelope(envelope, w.station.certificate, payload_type=IN_TOTO, keyids=("other",))


def test_one_good_signature_among_several_suffices() -> None:
    good = sign_envelope(IN_TOTO, STATEMENT, _key_a(), keyid="A").signatures[0]
    bad = EnvelopeSignature("B", bytes(64))
    envelope = Envelope(IN_TOTO, STATEMENT, (bad, good))
    assert verify_envelope(envelope, _public_a(), payload_type=IN_TOTO) == STATEMENT
    with pytest.raises(EnvelopeSignatureError):
        verify_envelope(Envelope(IN_TOTO, STATEMENT, (bad,)), _public_a(), payload_type=IN_TOTO)


# -- the JSON envelope --------------------------------------------------------------------------


def test_json_round_trip() -> None:
    envelope = sign_envelope(IN_TOTO, STATEMENT, _key_a(), keyid="A")
    again = Envelope.from_json(envelope.to_json(), source="memory")
    assert again == envelope
    # keyid is optional: an empty one is omitted and read back as empty.
    anonymous = Envelope(IN_TOTO, STATEMENT, (EnvelopeSignature("", b"sig"),))
    assert anonymous.to_json()["signatures"] == [{"sig": "c2ln"}]
    assert Envelope.from_json(anonymous.to_json(), source="memory") == anonymous


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"payloadType": IN_TOTO, "payload": "", "signatures": []}, "non-empty list"),
        ({"payloadType": IN_TOTO, "payload": ""}, "non-empty list"),
        ({"payloadType": 7, "signatures": [{"sig": "AA=="}]}, "payloadType must be a string"),
        ({"payload": "not base64!", "signatures": [{"sig": "AA=="}]}, "payload is not base64"),
        ({"payload": "-_+/", "signatures": [{"sig": "AA=="}]}, "payload is not base64"),
        ({"payload": "A", "signatures": [{"sig": "AA=="}]}, "bad length"),
        ({"signatures": [{"sig": ""}]}, "signature 0 is empty"),
        ({"signatures": [{"sig": "AA==", "keyid": 3}]}, "keyid is not a string"),
        ({"signatures": ["AA=="]}, "signature 0 is not an object"),
        ({"signatures": [{"sig": "AA==", "cert": "x"}]}, "unknown member"),
        ({"signatures": [{"sig": "AA=="}], "extra": 1}, "unknown envelope member"),
        ({"signatures": [{"sig": "AA=="}] * 17}, "at most 16"),
    ],
)
def test_malformed_envelopes_are_refused_with_their_source(data: Any, message: str) -> None:
    with pytest.raises(EnvelopeFormatError, match=message) as caught:
        Envelope.from_json(data, source="bundle.json")
    assert caught.value.message.startswith("bundle.json: ")


def test_envelope_needs_a_signature() -> None:
    with pytest.raises(EnvelopeFormatError, match="no signature"):
        Envelope(IN_TOTO, STATEMENT, ())
