"""SD-JWT (RFC 9901): issuance, presentation with key binding, verification.

Independent checks: the ``sd-jwt`` reference implementation (0.10.4) verifies our presentations
and discloses the same claims, ``jwcrypto`` verifies the issuer-signed JWT, and our verifier
accepts what the reference issuer and holder produce.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from tests.credentials.test_jose import jwcrypto_key, make_signer, self_signed, x5c_entry
from trustbridge._canonical import canonical_json
from trustbridge.credentials._jose import public_jwk, sign_jws, x5c_of
from trustbridge.credentials.errors import (
    HolderBindingError,
    MalformedCredentialError,
    ReplayedPresentationError,
    TamperedCredentialError,
)
from trustbridge.credentials.sdjwt import (
    Disclosure,
    Path,
    disclosable_paths,
    issue_sd_jwt,
    parse_sd_jwt,
    present,
    verify_sd_jwt,
)
from trustbridge.errors import InputError
from trustbridge.pki.signers import FileSigner
from trustbridge.trust._jws import b64url_decode, b64url_encode

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
AUDIENCE = "https://muster-maschinenbau.example/verifier"
NONCE = "n-0S6_WzA2Mj"

ISSUER = make_signer()
HOLDER = make_signer()
ISSUER_CERTIFICATE = self_signed(ISSUER)

CLAIMS: dict[str, Any] = {
    "iss": "https://fuji-conformity.example",
    "iat": 1740830400,
    "vct": "https://trustbridge.example/vct/trust-profile",
    "credentialSubject": {
        "id": "did:example:hayabusa",
        "name": "Hayabusa Sensor Components K.K.",
        "serialNumber": "HSC-0042",
        "claims": [
            {"criterion": "iso-iec-27001", "value": True},
            {"criterion": "iec-62443-4-1", "value": "ML3"},
            {"criterion": "mtbf", "value": 120000},
        ],
        "address": {"locality": "Nagoya", "country": "JP"},
    },
}
DISCLOSABLE: list[Path] = [
    ("credentialSubject", "serialNumber"),
    ("credentialSubject", "claims", 0),
    ("credentialSubject", "claims", 2),
    ("credentialSubject", "address"),
    ("credentialSubject", "address", "locality"),
]


def issue(
    claims: dict[str, Any] = CLAIMS,
    disclosable: list[Path] = DISCLOSABLE,
    *,
    bind: bool = True,
    decoys: int = 0,
) -> str:
    return issue_sd_jwt(
        claims,
        disclosable=disclosable,
        signer=ISSUER,
        header={"typ": "dc+sd-jwt", "x5c": [x5c_entry(ISSUER_CERTIFICATE)]},
        holder_jwk=public_jwk(HOLDER.public_key) if bind else None,
        decoys=decoys,
    )


def show(
    sd_jwt: str,
    disclose: Callable[[Path], bool] | list[Path] = lambda path: True,
    *,
    issued_at: datetime = AT,
    audience: str = AUDIENCE,
    nonce: str = NONCE,
) -> str:
    return present(
        sd_jwt,
        disclose=disclose,
        holder=HOLDER,
        audience=audience,
        nonce=nonce,
        issued_at=issued_at,
    )


def verify(text: str, *, at: datetime = AT, **options: Any) -> Any:
    options.setdefault("audience", AUDIENCE)
    options.setdefault("nonce", NONCE)
    return verify_sd_jwt(text, issuer_key=ISSUER.public_key, at=at, source="t.sd-jwt", **options)


def signed_payload(text: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(b64url_decode(text.split("~", 1)[0].split(".")[1]))
    return payload


def crafted(payload: dict[str, Any], disclosures: list[Disclosure]) -> str:
    """An SD-JWT whose issuer-signed payload is exactly ``payload`` (for broken structures)."""
    jwt = sign_jws({"typ": "dc+sd-jwt"}, canonical_json(payload), ISSUER)
    return "".join([f"{jwt}~"] + [f"{d.encoded}~" for d in disclosures])


def key_binding(
    presented: str,
    *,
    signer: FileSigner = HOLDER,
    typ: str = "kb+jwt",
    **changes: Any,
) -> str:
    """A KB-JWT over ``presented`` (which ends in ``~``), with ``changes`` to its payload."""
    sd_hash = b64url_encode(hashlib.sha256(presented.encode("ascii")).digest())
    payload = {"iat": int(AT.timestamp()), "aud": AUDIENCE, "nonce": NONCE, "sd_hash": sd_hash}
    payload.update(changes)
    payload = {k: v for k, v in payload.items() if v is not None}
    return presented + sign_jws({"typ": typ}, canonical_json(payload), signer)


def salt_counter() -> Callable[[], bytes]:
    counter: Iterator[int] = iter(range(1, 10**6))
    return lambda: next(counter).to_bytes(16, "big")


# -- issuance --------------------------------------------------------------------------------


def test_round_trip_discloses_everything() -> None:
    result = verify(show(issue()))
    assert result.payload == {**CLAIMS, "cnf": {"jwk": public_jwk(HOLDER.public_key)}}
    assert sorted(result.disclosed, key=str) == sorted(DISCLOSABLE, key=str)
    assert result.holder_jwk == public_jwk(HOLDER.public_key)
    assert result.header["typ"] == "dc+sd-jwt"
    assert result.key_binding is not None
    assert result.key_binding["aud"] == AUDIENCE
    assert result.key_binding["nonce"] == NONCE
    assert result.key_binding["iat"] == int(AT.timestamp())


def test_issued_payload_hides_the_disclosable_claims() -> None:
    sd_jwt = issue()
    payload = signed_payload(sd_jwt)
    subject = payload["credentialSubject"]
    assert payload["_sd_alg"] == "sha-256"
    assert "_sd" not in payload
    assert set(subject) == {"id", "name", "claims", "_sd"}
    assert len(subject["_sd"]) == 2
    assert subject["_sd"] == sorted(subject["_sd"])
    assert subject["claims"][1] == CLAIMS["credentialSubject"]["claims"][1]
    assert set(subject["claims"][0]) == {"..."}
    assert set(subject["claims"][2]) == {"..."}
    assert payload["cnf"] == {"jwk": public_jwk(HOLDER.public_key)}
    assert sd_jwt.endswith("~")
    assert len(parse_sd_jwt(sd_jwt).disclosures) == len(DISCLOSABLE)


def test_nested_disclosure_is_processed_inside_out() -> None:
    parts = parse_sd_jwt(issue())
    by_name = {d.name: d for d in parts.disclosures if d.name}
    address = by_name["address"]
    locality = by_name["locality"]
    # the parent's disclosed value holds the child's digest, not the child's value
    assert address.value == {"country": "JP", "_sd": [locality.digest]}
    assert locality.value == "Nagoya"


def test_array_element_disclosures_are_two_element_arrays() -> None:
    parts = parse_sd_jwt(issue())
    elements = [d for d in parts.disclosures if d.name is None]
    assert [d.value for d in elements] == [
        CLAIMS["credentialSubject"]["claims"][0],
        CLAIMS["credentialSubject"]["claims"][2],
    ]
    assert all(len(json.loads(b64url_decode(d.encoded))) == 2 for d in elements)


def test_salts_come_from_the_salt_source() -> None:
    text = issue_sd_jwt(
        {"a": 1, "b": 2},
        disclosable=[("a",), ("b",)],
        signer=ISSUER,
        header={},
        salt=salt_counter(),
    )
    salts = sorted(b64url_decode(d.salt) for d in parse_sd_jwt(text).disclosures)
    assert salts == [(1).to_bytes(16, "big"), (2).to_bytes(16, "big")]
    with pytest.raises(InputError, match="salt of 8 bytes is too short"):
        issue_sd_jwt(
            {"a": 1}, disclosable=[("a",)], signer=ISSUER, header={}, salt=lambda: b"12345678"
        )


def test_decoys_pad_every_sd_array() -> None:
    sd_jwt = issue(decoys=3)
    payload = signed_payload(sd_jwt)
    assert len(payload["credentialSubject"]["_sd"]) == 2 + 3
    address = next(d for d in parse_sd_jwt(sd_jwt).disclosures if d.name == "address")
    assert len(address.value["_sd"]) == 1 + 3
    assert len(parse_sd_jwt(sd_jwt).disclosures) == len(DISCLOSABLE)
    result = verify(show(sd_jwt))
    assert result.payload["credentialSubject"] == CLAIMS["credentialSubject"]


@pytest.mark.parametrize(
    ("claims", "disclosable", "message"),
    [
        (CLAIMS, [("credentialSubject", "nickname")], "no claim credentialSubject/nickname"),
        (
            CLAIMS,
            [("credentialSubject", "claims", 3)],
            "no array element credentialSubject/claims/3",
        ),
        (CLAIMS, [("credentialSubject", "claims", -1)], "no array element"),
        (CLAIMS, [("credentialSubject", 0)], "step 0 does not fit"),
        (CLAIMS, [("credentialSubject", "claims", "0")], "step '0' does not fit"),
        (CLAIMS, [("credentialSubject", "claims", True)], "step True does not fit"),
        (CLAIMS, [()], "the empty path"),
        (CLAIMS, [("exp",)], "'exp' must stay plain"),
        (CLAIMS, [("iss",)], "'iss' must stay plain"),
        (CLAIMS, [("vct",)], "'vct' must stay plain"),
        (CLAIMS, [("iat",)], "'iat' must stay plain"),
        ({"status": {"idx": 1}}, [("status", "idx")], "'status' must stay plain"),
        ({"cnf": {"jwk": {}}}, [("cnf",)], "'cnf' must stay plain"),
        ({"a": {"_sd": []}}, [], "'_sd' at a is reserved"),
        ({"a": [{"...": "x"}]}, [], r"'\.\.\.' at a/0 is reserved"),
        ({"_sd_alg": "sha-256"}, [], "'_sd_alg' at \\(top level\\) is reserved"),
        ({"a": float("nan")}, [], "claim a is nan"),
        ({"a": {1: 2}}, [], "member name that is not a string"),
        ({"a": {1, 2}}, [], "claim a is a set"),
    ],
)
def test_issue_refuses(claims: dict[str, Any], disclosable: list[Path], message: str) -> None:
    with pytest.raises(InputError, match=message):
        issue(claims, disclosable, bind=False)


def test_issue_refuses_a_second_cnf_a_private_holder_key_and_negative_decoys() -> None:
    with pytest.raises(InputError, match="cnf already"):
        issue({"cnf": {"jwk": {}}}, [])
    private = {**public_jwk(HOLDER.public_key), "d": "AAAA"}
    with pytest.raises(InputError, match="holder key: JWK carries private key members d"):
        issue_sd_jwt({}, disclosable=[], signer=ISSUER, header={}, holder_jwk=private)
    with pytest.raises(InputError, match="cannot be negative"):
        issue(decoys=-1)


# -- parsing ---------------------------------------------------------------------------------


def encoded(content: object) -> str:
    return b64url_encode(json.dumps(content).encode())


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("", "no '~' after the issuer-signed JWT"),
        ("~~", "disclosure 0 is empty"),
        (f"~{encoded({'a': 1})}~", "JSON array of 2 or 3"),
        (f"~{encoded(['s'])}~", "JSON array of 2 or 3"),
        (f"~{encoded(['s', 'a', 1, 2])}~", "JSON array of 2 or 3"),
        (f"~{encoded([1, 'a', 1])}~", "salt must be a string"),
        (f"~{encoded(['s', 1, 1])}~", "claim name must be a string"),
        (f"~{encoded(['s', '_sd', 1])}~", "reserved claim '_sd'"),
        (f"~{encoded(['s', '...', 1])}~", r"reserved claim '\.\.\.'"),
        ("~bm90IGpzb24~", "not JSON"),
        ("~x y~", "only base64url, '.' and '~'"),
        ("~not-a-jws", "the key-binding JWT is not a JWS: 1 dot-separated"),
    ],
)
def test_parse_sd_jwt_refuses(tail: str, message: str) -> None:
    jwt = issue().split("~")[0]
    with pytest.raises(MalformedCredentialError, match=message):
        parse_sd_jwt(jwt + tail, source="t")


def test_parse_sd_jwt_splits_a_presentation() -> None:
    parts = parse_sd_jwt(show(issue(), [("credentialSubject", "serialNumber")]) + "\n")
    assert [d.name for d in parts.disclosures] == ["serialNumber"]
    assert parts.kb_jwt is not None
    assert parts.presented.count("~") == 2


def test_disclosable_paths_follow_the_disclosures() -> None:
    assert sorted(disclosable_paths(issue()), key=str) == sorted(DISCLOSABLE, key=str)
    shown = show(issue(), [("credentialSubject", "address")])
    assert disclosable_paths(shown) == [("credentialSubject", "address")]


# -- presentation ----------------------------------------------------------------------------


def test_presentation_keeps_only_the_chosen_disclosures() -> None:
    chosen: list[Path] = [("credentialSubject", "serialNumber"), ("credentialSubject", "claims", 2)]
    result = verify(show(issue(), chosen))
    subject = result.payload["credentialSubject"]
    assert subject["serialNumber"] == "HSC-0042"
    assert "address" not in subject
    # the withheld element disappears; the plain one and the chosen one stay in order
    assert subject["claims"] == CLAIMS["credentialSubject"]["claims"][1:]
    assert set(result.disclosed) == set(chosen)


def test_a_nested_disclosure_needs_its_parent() -> None:
    child: Path = ("credentialSubject", "address", "locality")
    parent: Path = ("credentialSubject", "address")
    with_parent = verify(show(issue(), [parent]))
    assert with_parent.payload["credentialSubject"]["address"] == {"country": "JP"}
    assert with_parent.disclosed == (parent,)
    both = verify(show(issue(), [parent, child]))
    assert both.payload["credentialSubject"]["address"] == {"country": "JP", "locality": "Nagoya"}
    orphan = show(issue(), lambda path: path == child)
    assert verify(orphan).disclosed == ()
    assert orphan.count("~") == 1
    # a collection may name the child alone too; it is dropped with its parent
    assert verify(show(issue(), [child])).disclosed == ()


def test_present_refuses() -> None:
    sd_jwt = issue()
    with pytest.raises(
        InputError, match=r"not selectively disclosable in this SD-JWT: credentialSubject/name"
    ):
        show(sd_jwt, [("credentialSubject", "name")])
    with pytest.raises(InputError, match="a presentation already"):
        show(show(sd_jwt))
    with pytest.raises(InputError, match="binds no holder key"):
        show(issue(bind=False))
    with pytest.raises(InputError, match="bound to another key than file:test-p256's"):
        present(
            sd_jwt,
            disclose=[],
            holder=make_signer(),
            audience=AUDIENCE,
            nonce=NONCE,
            issued_at=AT,
        )


# -- verification: issuer signature and disclosures ------------------------------------------


def test_verify_refuses_another_issuer_and_a_changed_payload() -> None:
    presentation = show(issue())
    with pytest.raises(TamperedCredentialError, match="signature does not verify"):
        verify_sd_jwt(
            presentation,
            issuer_key=make_signer().public_key,
            at=AT,
            audience=AUDIENCE,
            nonce=NONCE,
        )
    header, _, signature = presentation.split("~", 1)[0].split(".")
    claims = signed_payload(presentation)
    claims["credentialSubject"]["name"] = "Someone Else K.K."
    forged = ".".join([header, b64url_encode(canonical_json(claims)), signature])
    with pytest.raises(TamperedCredentialError, match=r"^t\.sd-jwt: the JWS signature"):
        verify(forged + presentation[presentation.index("~") :])


def test_verify_refuses_a_disclosure_the_issuer_did_not_sign() -> None:
    sd_jwt = issue(bind=False)
    foreign = Disclosure.create(b64url_encode(bytes(16)), "serialNumber", "FAKE-1")
    with pytest.raises(TamperedCredentialError, match="not referenced by the issuer-signed JWT"):
        verify(sd_jwt + f"{foreign.encoded}~", require_key_binding=False)


def test_verify_refuses_a_child_presented_without_its_parent() -> None:
    sd_jwt = issue(bind=False)
    parts = parse_sd_jwt(sd_jwt)
    child = next(d for d in parts.disclosures if d.name == "locality")
    jwt = sd_jwt.split("~")[0]
    with pytest.raises(TamperedCredentialError, match="not referenced"):
        verify(f"{jwt}~{child.encoded}~", require_key_binding=False)


def test_verify_refuses_a_disclosure_presented_twice() -> None:
    sd_jwt = issue(bind=False)
    first = parse_sd_jwt(sd_jwt).disclosures[0]
    with pytest.raises(TamperedCredentialError, match="presented twice"):
        verify(sd_jwt + f"{first.encoded}~", require_key_binding=False)


def _disclosure(name: str | None, value: Any) -> Disclosure:
    return Disclosure.create(b64url_encode(b"0123456789abcdef"), name, value)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda d: ({"_sd": [d.digest, d.digest]}, [d]),
            TamperedCredentialError,
            "appears more than once",
        ),
        (
            lambda d: ({"_sd": [d.digest], "x": {"_sd": [d.digest]}}, [d]),
            TamperedCredentialError,
            "appears more than once",
        ),
        (
            lambda d: ({"_sd": ["decoy"], "x": ["1", {"...": "decoy"}]}, []),
            TamperedCredentialError,
            "digest decoy appears more than once",
        ),
        (
            lambda d: ({"a": "plain", "_sd": [d.digest]}, [d]),
            TamperedCredentialError,
            "claim 'a' exists already at \\(top level\\)",
        ),
        (
            lambda d: ({"list": [{"...": d.digest}]}, [d]),
            TamperedCredentialError,
            "object-member disclosure is referenced as array element list/0",
        ),
        (
            lambda d: ({"_sd": [_disclosure(None, 1).digest]}, [_disclosure(None, 1)]),
            TamperedCredentialError,
            "array-element disclosure is referenced from _sd",
        ),
        (
            lambda d: ({"_sd": [d.digest], "_sd_alg": "sha-512"}, [d]),
            MalformedCredentialError,
            "_sd_alg 'sha-512' is not supported",
        ),
        (
            lambda d: ({"x": {"_sd": d.digest}}, [d]),
            MalformedCredentialError,
            "_sd at x is not an array",
        ),
        (
            lambda d: ({"x": [{"...": 5}]}, []),
            MalformedCredentialError,
            "x/0 holds a '...' that is not a digest",
        ),
        (
            lambda d: ({"_sd": [_disclosure("exp", 1).digest]}, [_disclosure("exp", 1)]),
            MalformedCredentialError,
            "'exp' is selectively disclosable but must be plain",
        ),
    ],
)
def test_verify_refuses_broken_structures(
    build: Callable[[Disclosure], tuple[dict[str, Any], list[Disclosure]]],
    error: type[Exception],
    message: str,
) -> None:
    payload, disclosures = build(_disclosure("a", "value"))
    with pytest.raises(error, match=message):
        verify(crafted(payload, disclosures), require_key_binding=False)


def test_verify_accepts_a_crafted_but_sound_structure() -> None:
    inner = _disclosure(None, "element")
    outer = _disclosure("a", [{"...": inner.digest}, "plain"])
    result = verify(crafted({"_sd": [outer.digest]}, [outer, inner]), require_key_binding=False)
    assert result.payload == {"a": ["element", "plain"]}
    assert result.disclosed == (("a",), ("a", 0))
    assert result.key_binding is None


# -- verification: key binding ---------------------------------------------------------------


def test_key_binding_is_required_by_default() -> None:
    with pytest.raises(HolderBindingError, match="no key-binding JWT"):
        verify(issue())
    assert verify(issue(), require_key_binding=False).key_binding is None
    with pytest.raises(InputError, match="needs the expected audience and nonce"):
        verify(show(issue()), audience=None)


def test_key_binding_needs_a_bound_key() -> None:
    sd_jwt = issue(bind=False)
    with pytest.raises(HolderBindingError, match="binds no holder key"):
        verify(key_binding(sd_jwt))
    broken = crafted({"cnf": {"kid": "k1"}}, [])
    with pytest.raises(HolderBindingError, match="cnf does not hold a jwk"):
        verify(key_binding(broken))


def test_key_binding_must_be_signed_by_the_holder_key_and_typed() -> None:
    sd_jwt = issue()
    assert verify(key_binding(sd_jwt)).key_binding is not None
    with pytest.raises(HolderBindingError, match="not signed by the holder key"):
        verify(key_binding(sd_jwt, signer=make_signer()))
    with pytest.raises(HolderBindingError, match="typ is 'JWT', not 'kb\\+jwt'"):
        verify(key_binding(sd_jwt, typ="JWT"))


def test_replays_are_refused() -> None:
    presentation = show(issue())
    with pytest.raises(ReplayedPresentationError, match=r"for audience .* not 'https://other"):
        verify(presentation, audience="https://other.example")
    with pytest.raises(ReplayedPresentationError, match="another nonce"):
        verify(presentation, nonce="n-other")
    with pytest.raises(ReplayedPresentationError, match="older than 0:05:00"):
        verify(presentation, at=AT + timedelta(minutes=5, seconds=1))
    assert verify(presentation, at=AT + timedelta(minutes=5)).key_binding is not None
    with pytest.raises(ReplayedPresentationError, match="in the future"):
        verify(presentation, at=AT - timedelta(minutes=1, seconds=1))
    assert verify(presentation, at=AT - timedelta(minutes=1)).key_binding is not None
    assert verify(presentation, at=AT + timedelta(minutes=9), max_kb_age=timedelta(minutes=10))


def _without_serial_number(presentation: str) -> str:
    """The presentation with its serialNumber disclosure dropped and its KB-JWT kept."""
    serial = next(d for d in parse_sd_jwt(presentation).disclosures if d.name == "serialNumber")
    return presentation.replace(f"~{serial.encoded}~", "~")


def test_sd_hash_binds_the_presented_disclosures() -> None:
    presentation = show(issue())
    fewer = _without_serial_number(presentation)
    with pytest.raises(TamperedCredentialError, match="sd_hash does not match"):
        verify(fewer)
    with pytest.raises(TamperedCredentialError, match="sd_hash does not match"):
        verify(key_binding(issue(), sd_hash="AAAA"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"aud": None}, "lacks a string 'aud'"),
        ({"nonce": 7}, "lacks a string 'nonce'"),
        ({"sd_hash": None}, "lacks a string 'sd_hash'"),
        ({"iat": "1740830400"}, "lacks an integer 'iat'"),
        ({"iat": True}, "lacks an integer 'iat'"),
        ({"iat": 10**20}, "is no time"),
    ],
)
def test_key_binding_payload_must_be_complete(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedCredentialError, match=message):
        verify(key_binding(issue(), **changes))


# -- independent checks ----------------------------------------------------------------------


def private_jwcrypto_key(signer: FileSigner) -> JWK:
    pem = signer.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return JWK.from_pem(pem)


def _reference_key(issuer: str | None, header: dict[str, Any]) -> JWK:
    leaf = x5c_of(header)[0]
    return JWK.from_pem(
        leaf.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.mark.parametrize(
    "chosen",
    [
        DISCLOSABLE,
        [("credentialSubject", "claims", 2), ("credentialSubject", "address")],
        [],
    ],
)
def test_reference_implementation_verifies_our_presentation(chosen: list[Path]) -> None:
    presentation = show(issue(decoys=2), chosen)
    ours = verify(presentation)
    reference = SDJWTVerifier(
        presentation, _reference_key, expected_aud=AUDIENCE, expected_nonce=NONCE
    )
    assert reference.get_verified_payload() == ours.payload


def test_reference_implementation_refuses_our_presentation_for_someone_else() -> None:
    presentation = show(issue())
    with pytest.raises(ValueError, match="Invalid nonce in KB-JWT"):
        SDJWTVerifier(presentation, _reference_key, expected_aud=AUDIENCE, expected_nonce="x")
    with pytest.raises(ValueError, match="Invalid audience in KB-JWT"):
        SDJWTVerifier(presentation, _reference_key, expected_aud="x", expected_nonce=NONCE)
    with pytest.raises(ValueError, match="Invalid digest in KB-JWT"):
        SDJWTVerifier(
            _without_serial_number(presentation),
            _reference_key,
            expected_aud=AUDIENCE,
            expected_nonce=NONCE,
        )


def test_jwcrypto_verifies_the_issuer_signed_jwt() -> None:
    jwt = issue().split("~")[0]
    leaf = x5c_of(json.loads(b64url_decode(jwt.split(".")[0])))[0]
    assert leaf == ISSUER_CERTIFICATE
    pem = leaf.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    token = JWS()
    token.deserialize(jwt)
    token.verify(JWK.from_pem(pem))
    assert json.loads(token.payload)["_sd_alg"] == "sha-256"
    assert token.jose_header == {
        "alg": "ES256",
        "typ": "dc+sd-jwt",
        "x5c": [x5c_entry(ISSUER_CERTIFICATE)],
    }


def test_we_verify_what_the_reference_implementation_issues_and_presents() -> None:
    issuer_key, holder_key = private_jwcrypto_key(ISSUER), private_jwcrypto_key(HOLDER)
    user_claims = {
        "iss": "https://fuji-conformity.example",
        SDObj("serialNumber"): "HSC-0042",
        "claims": [SDObj({"criterion": "mtbf", "value": 120000}), "plain"],
        SDObj("address"): {SDObj("locality"): "Nagoya", "country": "JP"},
    }
    issuance = SDJWTIssuer(user_claims, issuer_key, holder_key, add_decoy_claims=True)
    holder = SDJWTHolder(issuance.sd_jwt_issuance)
    holder.create_presentation(
        {"serialNumber": True, "claims": [True], "address": {"locality": True}},
        nonce=NONCE,
        aud=AUDIENCE,
        holder_key=holder_key,
    )
    presentation = holder.sd_jwt_presentation
    iat = holder.key_binding_jwt_payload["iat"]
    ours = verify(presentation, at=datetime.fromtimestamp(iat, tz=UTC))
    reference = SDJWTVerifier(
        presentation,
        lambda issuer, header: jwcrypto_key(ISSUER),
        expected_aud=AUDIENCE,
        expected_nonce=NONCE,
    )
    assert ours.payload == reference.get_verified_payload()
    assert ours.payload["address"] == {"country": "JP", "locality": "Nagoya"}
    assert set(ours.disclosed) == {
        ("serialNumber",),
        ("claims", 0),
        ("address",),
        ("address", "locality"),
    }


# -- property --------------------------------------------------------------------------------

_NAMES = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
_LEAVES = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAMES, inner, max_size=3),
    max_leaves=8,
)
_CLAIM_SETS = st.dictionaries(_NAMES, _VALUES, min_size=1, max_size=4)


def _all_paths(value: Any, path: Path = ()) -> Iterator[Path]:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for step, member in items:
        yield (*path, step)
        yield from _all_paths(member, (*path, step))


def _view(value: Any, path: Path, hidden: Callable[[Path], bool]) -> Any:
    """What a verifier sees: the claims without the withheld ones (and what they hold)."""
    if isinstance(value, dict):
        return {k: _view(v, (*path, k), hidden) for k, v in value.items() if not hidden((*path, k))}
    if isinstance(value, list):
        return [_view(v, (*path, i), hidden) for i, v in enumerate(value) if not hidden((*path, i))]
    return value


@settings(max_examples=50, deadline=None)
@given(data=st.data(), claims=_CLAIM_SETS)
def test_any_subset_of_disclosures_verifies_and_discloses_exactly_that(
    data: st.DataObject, claims: dict[str, Any]
) -> None:
    paths = list(_all_paths(claims))
    disclosable = data.draw(st.lists(st.sampled_from(paths), unique=True) if paths else st.just([]))
    chosen = set(
        data.draw(
            st.lists(st.sampled_from(disclosable), unique=True) if disclosable else st.just([])
        )
    )
    sd_jwt = issue(claims, disclosable, decoys=data.draw(st.integers(0, 2)))
    presentation = show(sd_jwt, sorted(chosen, key=str))
    result = verify(presentation)

    def hidden(path: Path) -> bool:
        return path in disclosable and path not in chosen

    # a chosen claim is disclosed exactly when no claim holding it is withheld
    expected = {p for p in chosen if not any(hidden(p[:n]) for n in range(1, len(p)))}
    assert set(result.disclosed) == expected
    assert len(result.disclosed) == len(expected)
    cnf = {"cnf": {"jwk": public_jwk(HOLDER.public_key)}}
    assert result.payload == {**_view(claims, (), hidden), **cnf}
    reference = SDJWTVerifier(
        presentation, _reference_key, expected_aud=AUDIENCE, expected_nonce=NONCE
    )
    assert reference.get_verified_payload() == result.payload
