"""JOSE plumbing for credentials: JWKs, thumbprints, compact JWS, x5c, JWT decoding.

``jwcrypto`` serves as the independent implementation: it reads our JWKs, computes the same
thumbprints and verifies our signatures.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from trustbridge._canonical import canonical_json
from trustbridge.credentials._jose import (
    _der_signature,
    _header,
    _payload_bytes,
    _split,
    decode_jwt,
    decode_jwt_shared,
    jwk_thumbprint,
    key_from_jwk,
    public_jwk,
    sign_jws,
    verify_jws,
    verify_x5c_jws,
    x5c_of,
)
from trustbridge.credentials.errors import MalformedCredentialError, TamperedCredentialError
from trustbridge.errors import InputError
from trustbridge.pki.keys import KeyType, generate_private_key, hash_for
from trustbridge.pki.signers import FileSigner, Signer, jose_signature
from trustbridge.trust._jws import (
    CompactJws,
    JwsFormatError,
    algorithm_for,
    b64url_decode,
    b64url_encode,
)

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

#: RFC 7638 3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q"
    "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6We"
    "Zu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def make_signer(key_type: KeyType = KeyType.P256) -> FileSigner:
    return FileSigner(generate_private_key(key_type), source=f"test-{key_type.value}")


def self_signed(
    signer: Signer, common_name: str = "Nordsee Certification GmbH"
) -> x509.Certificate:
    """A self-signed certificate for ``signer``'s key, enough to carry it in ``x5c``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(AT - timedelta(days=1))
        .not_valid_after(AT + timedelta(days=365))
        .sign(signer.private_key, hash_for(signer.key_type))
    )


def x5c_entry(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")


def jwcrypto_key(signer: Signer) -> JWK:
    pem = signer.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return JWK.from_pem(pem)


# -- JWKs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", list(KeyType))
def test_public_jwk_round_trips_and_matches_jwcrypto(key_type: KeyType) -> None:
    signer = make_signer(key_type)
    jwk = public_jwk(signer.public_key)
    assert key_from_jwk(jwk) == signer.public_key
    independent = jwcrypto_key(signer).export_public(as_dict=True)
    independent.pop("kid", None)
    assert jwk == independent
    assert jwk_thumbprint(jwk) == jwcrypto_key(signer).thumbprint()


def test_ec_coordinates_keep_their_leading_zeros() -> None:
    # RFC 7518 6.2.1.2: x is always 32 octets for P-256, even when it starts with zeros
    while True:
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        if key.public_numbers().x < 1 << 248:
            break
    jwk = public_jwk(key)
    assert len(b64url_decode(jwk["x"])) == 32
    assert b64url_decode(jwk["x"])[0] == 0
    assert key_from_jwk(jwk) == key


def test_thumbprint_of_the_rfc_7638_example() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


def test_thumbprint_ignores_optional_members() -> None:
    jwk = public_jwk(make_signer().public_key)
    assert jwk_thumbprint({**jwk, "kid": "k1", "use": "sig"}) == jwk_thumbprint(jwk)


def _p256_jwk() -> dict[str, str]:
    return public_jwk(make_signer().public_key)


def _shift_y(jwk: dict[str, str]) -> dict[str, str]:
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    return {**jwk, "y": b64url_encode(((y + 1) % (1 << 256)).to_bytes(32, "big"))}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda j: {**j, "d": j["x"]}, "private key members d"),
        (lambda j: {"kty": "oct"}, "key type 'oct' is not supported"),
        (lambda j: {**j, "kty": "EC2"}, "key type 'EC2' is not supported"),
        (lambda j: {**j, "crv": "P-521"}, "curve 'P-521' is not supported"),
        (lambda j: {**j, "crv": "secp256k1"}, "curve 'secp256k1' is not supported"),
        (lambda j: {**j, "x": b64url_encode(b64url_decode(j["x"])[1:])}, "31 octets instead of 32"),
        (
            lambda j: {**j, "y": b64url_encode(b64url_decode(j["y"]) + b"\0")},
            "33 octets instead of 32",
        ),
        (lambda j: {k: v for k, v in j.items() if k != "y"}, "'y' is missing"),
        (lambda j: {**j, "x": 5}, "'x' is missing or not a string"),
        (lambda j: {**j, "x": j["x"] + "="}, "'x' is not base64url"),
        (_shift_y, "not on curve P-256"),
        (lambda j: {**j, "alg": "ES384"}, "alg 'ES384' but a p256 key signs with ES256"),
        (lambda j: {"kty": "OKP", "crv": "X25519", "x": j["x"]}, "OKP curve 'X25519'"),
    ],
)
def test_key_from_jwk_refuses(change: object, message: str) -> None:
    jwk = change(_p256_jwk())  # type: ignore[operator]
    with pytest.raises(MalformedCredentialError, match=message):
        key_from_jwk(jwk)


def test_key_from_jwk_refuses_rsa_that_is_not_minimal_or_not_supported() -> None:
    with pytest.raises(MalformedCredentialError, match="'n' is not a minimal positive integer"):
        key_from_jwk({**RFC7638_JWK, "n": b64url_encode(b"\0" + b64url_decode(RFC7638_JWK["n"]))})
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    numbers = small.public_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64url_encode(numbers.n.to_bytes(128, "big")),
        "e": b64url_encode(numbers.e.to_bytes(3, "big")),
    }
    with pytest.raises(MalformedCredentialError, match="RSA key size 1024 is not supported"):
        key_from_jwk(jwk)
    with pytest.raises(MalformedCredentialError, match="private key members dp, p, q"):
        key_from_jwk({**RFC7638_JWK, "p": "AQ", "q": "AQ", "dp": "AQ"})


def test_key_from_jwk_refuses_what_is_no_object() -> None:
    with pytest.raises(MalformedCredentialError, match="must be a JSON object"):
        key_from_jwk(["kty", "EC"])  # type: ignore[arg-type]


# -- JWS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", list(KeyType))
def test_sign_jws_verifies_with_us_and_with_jwcrypto(key_type: KeyType) -> None:
    signer = make_signer(key_type)
    text = sign_jws({"typ": "example+jwt"}, b'{"hello":"world"}', signer)
    jws = CompactJws.parse(text.encode())
    verify_jws(jws, signer.public_key)
    assert b64url_decode(jws.header) == canonical_json(
        {"alg": _alg(key_type), "typ": "example+jwt"}
    )
    independent = JWS()
    independent.deserialize(text)
    independent.verify(jwcrypto_key(signer))
    assert independent.payload == b'{"hello":"world"}'


def _alg(key_type: KeyType) -> str:
    return {
        KeyType.P256: "ES256",
        KeyType.P384: "ES384",
        KeyType.ED25519: "EdDSA",
        KeyType.RSA2048: "RS256",
        KeyType.RSA3072: "RS256",
    }[key_type]


def test_ec_signature_is_raw_r_and_s() -> None:
    # RFC 7518 3.4: 64 octets for ES256, 96 for ES384, never DER
    for key_type, size in ((KeyType.P256, 64), (KeyType.P384, 96)):
        text = sign_jws({}, b"{}", make_signer(key_type))
        assert len(CompactJws.parse(text.encode()).signature_bytes()) == size


def _replace_header(text: str, header: dict[str, object]) -> CompactJws:
    jws = CompactJws.parse(text.encode())
    return CompactJws(b64url_encode(canonical_json(header)), jws.payload, jws.signature)


def test_verify_jws_refuses_a_changed_payload_and_another_key() -> None:
    signer = make_signer()
    jws = CompactJws.parse(sign_jws({}, b'{"a":1}', signer).encode())
    changed = CompactJws(jws.header, b64url_encode(b'{"a":2}'), jws.signature)
    with pytest.raises(TamperedCredentialError, match="signature does not verify"):
        verify_jws(changed, signer.public_key)
    with pytest.raises(TamperedCredentialError, match="signature does not verify"):
        verify_jws(jws, make_signer().public_key)


def test_the_key_decides_the_algorithm_never_the_header() -> None:
    signer = make_signer()
    text = sign_jws({}, b"{}", signer)
    with pytest.raises(TamperedCredentialError, match="'none' is refused"):
        verify_jws(_replace_header(text, {"alg": "none"}), signer.public_key)
    with pytest.raises(TamperedCredentialError, match="'HS256' is not ES256"):
        verify_jws(_replace_header(text, {"alg": "HS256"}), signer.public_key)
    with pytest.raises(TamperedCredentialError, match="None is refused"):
        verify_jws(_replace_header(text, {}), signer.public_key)
    # an ES256 token offered to a P-384 key
    with pytest.raises(TamperedCredentialError, match="'ES256' is not ES384"):
        verify_jws(CompactJws.parse(text.encode()), make_signer(KeyType.P384).public_key)


def test_verify_jws_refuses_critical_extensions() -> None:
    signer = make_signer()
    text = sign_jws({"crit": ["b64"], "b64": False}, b"{}", signer)
    with pytest.raises(MalformedCredentialError, match="critical extensions"):
        verify_jws(CompactJws.parse(text.encode()), signer.public_key, source="t.jwt")


def test_verify_jws_names_the_source() -> None:
    signer = make_signer()
    jws = CompactJws.parse(sign_jws({}, b"{}", signer).encode())
    with pytest.raises(TamperedCredentialError, match=r"^peer-7: the JWS signature"):
        verify_jws(jws, make_signer().public_key, source="peer-7")


def test_sign_jws_refuses_another_alg_and_a_foreign_x5c() -> None:
    signer = make_signer()
    with pytest.raises(InputError, match="header alg 'RS256' differs from ES256"):
        sign_jws({"alg": "RS256"}, b"{}", signer)
    foreign = self_signed(make_signer())
    with pytest.raises(InputError, match="does not certify the key of file:test-p256"):
        sign_jws({"x5c": [x5c_entry(foreign)]}, b"{}", signer)
    own = self_signed(signer)
    text = sign_jws({"alg": "ES256", "x5c": [x5c_entry(own)]}, b"{}", signer)
    verify_jws(CompactJws.parse(text.encode()), own.public_key())


# -- x5c -------------------------------------------------------------------------------------


def test_x5c_of_parses_the_chain_leaf_first_and_caches() -> None:
    leaf, other = self_signed(make_signer(), "leaf"), self_signed(make_signer(), "other")
    header = {"x5c": [x5c_entry(leaf), x5c_entry(other)]}
    chain = x5c_of(header)
    assert chain == (leaf, other)
    assert x5c_of({"x5c": [x5c_entry(leaf)]})[0] is chain[0]


@pytest.mark.parametrize(
    ("x5c", "message"),
    [
        (None, "no x5c certificate chain"),
        ([], "no x5c certificate chain"),
        ("MIIB", "no x5c certificate chain"),
        ([7], "x5c entry 0 is not a string"),
        (["not base64!"], "x5c entry 0: an x5c entry is not standard base64"),
        (["AAAA", "-_-_"], "x5c entry 0: an x5c entry is not a DER certificate"),
        (["QUJD"], "is not a DER certificate"),
    ],
)
def test_x5c_of_refuses(x5c: object, message: str) -> None:
    with pytest.raises(MalformedCredentialError, match=message):
        x5c_of({} if x5c is None else {"x5c": x5c}, source="h")


def test_x5c_of_refuses_urlsafe_base64_and_long_chains() -> None:
    entry = x5c_entry(self_signed(make_signer()))
    urlsafe = entry.replace("+", "-").replace("/", "_")
    if urlsafe != entry:
        with pytest.raises(MalformedCredentialError, match="not standard base64"):
            x5c_of({"x5c": [urlsafe]})
    with pytest.raises(MalformedCredentialError, match="not standard base64"):
        x5c_of({"x5c": [entry.rstrip("=") + "_"]})
    with pytest.raises(MalformedCredentialError, match="11 certificates; at most 10"):
        x5c_of({"x5c": [entry] * 11})


# -- JWT -------------------------------------------------------------------------------------


def _jwt(header: object, payload: object | bytes) -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(body)}.c2ln"


def test_decode_jwt_returns_header_and_payload() -> None:
    jws, header, payload = decode_jwt(_jwt({"alg": "ES256"}, {"iss": "x"}), source="t")
    assert header == {"alg": "ES256"}
    assert payload == {"iss": "x"}
    assert jws.signature == "c2ln"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.b", "2 dot-separated parts"),
        (_jwt({"alg": "ES256"}, [1, 2]), "payload is not a JSON object"),
        (_jwt(["alg"], {}), "header is not a JSON object"),
        (_jwt({"alg": "ES256"}, b'{"a":1,"a":2}'), "duplicate member 'a'"),
        (_jwt({"alg": "ES256"}, b'{"a":NaN}'), "NaN is not JSON"),
        (_jwt({"alg": "ES256"}, b"\xff"), "not UTF-8"),
        ("é.b.c", "not ASCII"),
    ],
)
def test_decode_jwt_refuses(text: str, message: str) -> None:
    with pytest.raises(
        MalformedCredentialError, match=f"^vc.jwt: not a JWT: .*{message}|{message}"
    ):
        decode_jwt(text, source="vc.jwt")


# -- the fast paths of decoding and verifying (the same answers as the plain ones) ------------

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _outcome(parse: Callable[[], CompactJws | bytes]) -> object:
    try:
        return parse()
    except JwsFormatError as exc:
        return ("refused", str(exc))


def test_payload_decoding_gives_what_payload_bytes_gives_on_every_short_segment() -> None:
    # Every segment of up to three characters (non-canonical spare bits and the impossible
    # length 1 included): the fast decoder accepts, refuses and decodes as CompactJws does.
    for length in range(1, 4):
        for chars in itertools.product(_ALPHABET, repeat=length):
            jws = CompactJws("e30", "".join(chars), "c2ln")
            assert _outcome(functools.partial(_payload_bytes, jws)) == _outcome(jws.payload_bytes)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(["", "A", "B", "AB", "Q", "_"]))
def test_payload_decoding_gives_what_payload_bytes_gives(data: bytes, tail: str) -> None:
    segment = b64url_encode(data) + tail
    jws = CompactJws("e30", segment, "c2ln")
    assert _outcome(lambda: _payload_bytes(jws)) == _outcome(jws.payload_bytes)


_KNOWN_HEADER = b64url_encode(b'{"alg":"ES256","typ":"vc+jwt"}')


@settings(max_examples=800, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([_KNOWN_HEADER, "e30", ".", "..", " ", "\n", "=", "+", "/", "é"]),
            st.text(alphabet=_ALPHABET + ". \t\r\n=+/~é\x00", max_size=12),
        ),
        max_size=6,
    )
)
def test_splitting_a_token_gives_what_compact_jws_parse_gives(pieces: list[str]) -> None:
    _header(_KNOWN_HEADER)  # a header seen before: the split skips checking it again
    text = "".join(pieces)
    expected = _outcome(lambda: CompactJws.parse(text.encode("utf-8")))
    assert _outcome(lambda: _split(text)) == expected


def test_a_known_header_does_not_let_the_rest_of_a_token_pass_unchecked() -> None:
    _header(_KNOWN_HEADER)
    for rest in ("e30.c2l=", "e3+.c2ln", "e30.c2ln.", "e30", "e30.", "e 0.c2ln", "e\n0.c2ln"):
        text = f"{_KNOWN_HEADER}.{rest}"
        with pytest.raises(JwsFormatError):
            CompactJws.parse(text.encode())
        with pytest.raises(JwsFormatError):
            _split(text)
    # Surrounding blanks are stripped, as CompactJws.parse strips them.
    assert _split(f" {_KNOWN_HEADER}.e30.c2ln\n") == CompactJws(_KNOWN_HEADER, "e30", "c2ln")


def test_a_byte_order_mark_is_not_json() -> None:
    with pytest.raises(MalformedCredentialError, match="BOM"):
        decode_jwt(_jwt({"alg": "ES256"}, "\ufeff{}".encode()), source="t")


def _x5c_token(signer: Signer, chain: list[x509.Certificate], payload: bytes = b"{}") -> str:
    return sign_jws({"x5c": [x5c_entry(c) for c in chain]}, payload, signer)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_each_chain_verifies_with_its_own_leaf_key(key_type: KeyType) -> None:
    first, second = make_signer(key_type), make_signer(key_type)
    first_leaf, second_leaf = self_signed(first, "first"), self_signed(second, "second")
    other = self_signed(make_signer(), "intermediate")
    for signer, chain in ((first, [first_leaf]), (second, [second_leaf]), (first, [first_leaf])):
        jws, header, _ = decode_jwt(_x5c_token(signer, chain), source="t")
        assert verify_x5c_jws(jws, header, source="t") == tuple(chain)
    # The same leaf with another chain behind it: that chain, not the one seen before.
    jws, header, _ = decode_jwt(_x5c_token(first, [first_leaf, other]), source="t")
    assert verify_x5c_jws(jws, header, source="t") == (first_leaf, other)
    # A token whose x5c names a chain seen before but that another key signed.
    header_text = b64url_encode(
        canonical_json({"alg": algorithm_for(key_type), "x5c": [x5c_entry(first_leaf)]})
    )
    signing_input = f"{header_text}.{b64url_encode(b'{}')}"
    signature = jose_signature(second, signing_input.encode("ascii"))
    jws, header, _ = decode_jwt(f"{signing_input}.{b64url_encode(signature)}", source="t")
    with pytest.raises(TamperedCredentialError, match="signature does not verify"):
        verify_x5c_jws(jws, header, source="t")


def test_verify_x5c_jws_refuses_what_x5c_of_refuses_and_names_the_source() -> None:
    signer = make_signer()
    jws = CompactJws.parse(sign_jws({}, b"{}", signer).encode())
    for header, message in (
        ({"alg": "ES256"}, "header has no x5c certificate chain"),
        ({"alg": "ES256", "x5c": ["QUJD"]}, "x5c entry 0: .* not a DER certificate"),
        ({"alg": "ES256", "x5c": [["nested"]]}, "x5c entry 0 is not a string"),
    ):
        with pytest.raises(MalformedCredentialError, match=f"^t: {message}"):
            verify_x5c_jws(jws, header, source="t")


# -- the JOSE signature as DER, and tokens whose header was seen before ----------------------

_SIGNATURE_OCTETS = st.one_of(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]), st.integers(0, 255))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([32, 48]).flatmap(
        lambda size: st.tuples(
            st.just(size),
            st.lists(_SIGNATURE_OCTETS, min_size=2 * size, max_size=2 * size).map(bytes),
        )
    )
)
def test_der_signature_is_what_encode_dss_signature_gives(sized: tuple[int, bytes]) -> None:
    size, signature = sized
    expected = encode_dss_signature(
        int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    )
    assert _der_signature(signature, size) == expected


def test_der_signature_of_zeros_and_high_bits() -> None:
    for size in (32, 48):
        for r, s in itertools.product(
            (bytes(size), b"\x80" + bytes(size - 1), b"\xff" * size, bytes(size - 1) + b"\x01"),
            repeat=2,
        ):
            expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            assert _der_signature(r + s, size) == expected


def test_decode_jwt_refuses_duplicates_nan_and_bom_in_a_compact_payload_of_a_known_header() -> None:
    header = b64url_encode(b'{"alg":"ES256","typ":"vc+jwt"}')
    for payload, message in (
        (b'{"a":1,"a":2}', "duplicate member 'a'"),
        (b'{"a":NaN}', "NaN is not JSON"),
        (b'{"a":Infinity}', "Infinity is not JSON"),
        (b'\xef\xbb\xbf{"a":1}', "BOM"),
        (b'{"a":"\xff"}', "not UTF-8"),
    ):
        text = f"{header}.{b64url_encode(payload)}.c2ln"
        for _ in range(2):  # the header parsed before on the second round
            with pytest.raises(MalformedCredentialError, match=message):
                decode_jwt(text, source="t")
    assert decode_jwt(f"{header}.{b64url_encode(b'{}')}.c2ln", source="t")[2] == {}


def test_the_shared_header_is_the_read_only_one_parsed_once() -> None:
    header = {"alg": "ES256", "typ": "vc+jwt", "x5c": ["QUJD"]}
    first = _jwt(header, {"iss": "a"})
    second = _jwt(header, {"iss": "b"})
    _, shared, payload = decode_jwt_shared(first, source="t")
    assert decode_jwt_shared(second, source="t")[1] is shared
    assert shared == decode_jwt(first, source="t")[1] == {**header, "x5c": ("QUJD",)}
    assert payload == {"iss": "a"}
    with pytest.raises(TypeError):
        shared["typ"] = "vp+jwt"  # type: ignore[index]
    copied = decode_jwt(first, source="t")[1]
    copied["typ"] = "vp+jwt"
    assert decode_jwt_shared(first, source="t")[1]["typ"] == "vc+jwt"


def test_a_payload_signed_under_another_header_is_refused() -> None:
    # A signature covers the header it came with: the signature of the same payload under
    # another header (the same chain, seen before) does not verify.
    signer = make_signer()
    leaf = self_signed(signer)
    token = sign_jws({"x5c": [x5c_entry(leaf)], "typ": "vc+jwt"}, b'{"a":1}', signer)
    other = sign_jws({"x5c": [x5c_entry(leaf)], "typ": "vp+jwt"}, b'{"a":1}', signer)
    head, body, _ = token.split(".")
    jws, header, _ = decode_jwt(token, source="t")
    verify_x5c_jws(jws, header, source="t")
    forged = f"{head}.{body}.{other.split('.')[2]}"
    jws, header, _ = decode_jwt(forged, source="t")
    with pytest.raises(TamperedCredentialError, match="signature does not verify"):
        verify_x5c_jws(jws, header, source="t")
