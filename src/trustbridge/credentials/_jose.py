"""JOSE plumbing for credentials: JWKs, compact JWS with a chosen header, ``x5c`` chains.

Built on :mod:`trustbridge.trust._jws`. As there, the algorithm follows from the key type
(RFC 7518 3.1, RFC 8037 3.1) and never from the header: a header whose ``alg`` is not the one
the key implies is refused, ``none`` included.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPublicKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ConfigDict, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from trustbridge._canonical import canonical_json
from trustbridge.credentials.errors import MalformedCredentialError, TamperedCredentialError
from trustbridge.errors import InputError
from trustbridge.pki.keys import KeyType, hash_for
from trustbridge.pki.signers import Signer, jose_signature, jose_signature_valid
from trustbridge.trust._jws import (
    CompactJws,
    JwsFormatError,
    algorithm_for,
    b64url_decode,
    b64url_encode,
    parse_json,
)

__all__ = [
    "PublicKey",
    "decode_jwt",
    "decode_jwt_shared",
    "jwk_thumbprint",
    "key_from_jwk",
    "public_jwk",
    "sign_jws",
    "verify_jws",
    "verify_x5c_jws",
    "x5c_encode",
    "x5c_of",
]

#: The public keys trustbridge signs and verifies with.
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

#: RFC 7518 6.2.1.1 curve names and their coordinate lengths (6.2.1.2, 6.2.1.3).
_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
}
_CURVE_NAMES = {KeyType.P256: "P-256", KeyType.P384: "P-384"}
#: Members that carry private key material: RFC 7518 6.2.2, 6.3.2, 6.4.1; RFC 8037 2.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: RFC 7638 3.2: the required members each key type's thumbprint covers.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}
_MAX_CHAIN = 10


def public_jwk(key: CertificateIssuerPublicKeyTypes) -> dict[str, str]:
    """The public JWK of ``key``: EC (P-256, P-384), OKP (Ed25519) or RSA."""
    key_type = KeyType.of(key)
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = _CURVES[_CURVE_NAMES[key_type]][1]
        numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": _CURVE_NAMES[key_type],
            # RFC 7518 6.2.1.2/6.2.1.3: full coordinate length, leading zeros kept
            "x": b64url_encode(numbers.x.to_bytes(size, "big")),
            "y": b64url_encode(numbers.y.to_bytes(size, "big")),
        }
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    if isinstance(key, rsa.RSAPublicKey):
        rsa_numbers = key.public_numbers()
        return {"kty": "RSA", "n": _uint(rsa_numbers.n), "e": _uint(rsa_numbers.e)}
    raise InputError(f"key algorithm {type(key).__name__} is not supported")  # pragma: no cover


def _uint(value: int) -> str:
    """RFC 7518 2 Base64urlUInt: the minimal big-endian octets of a positive integer."""
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _member(jwk: Mapping[str, Any], name: str, *, size: int | None = None) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise MalformedCredentialError(f"JWK member {name!r} is missing or not a string")
    try:
        data = b64url_decode(value)
    except JwsFormatError as exc:
        raise MalformedCredentialError(f"JWK member {name!r} is {exc}") from None
    if size is not None and len(data) != size:
        raise MalformedCredentialError(
            f"JWK member {name!r} has {len(data)} octets instead of {size}"
        )
    return data


def _positive_uint(jwk: Mapping[str, Any], name: str) -> int:
    data = _member(jwk, name)
    # RFC 7518 6.3.1.1: minimal octets, so that one key has one JWK (and one thumbprint)
    if not data or data[0] == 0:
        raise MalformedCredentialError(f"JWK member {name!r} is not a minimal positive integer")
    return int.from_bytes(data, "big")


def key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """The public key a JWK describes; raises :class:`MalformedCredentialError` naming the problem.

    Refuses private key members, key types and curves trustbridge does not use, coordinates of
    the wrong length and points that are not on the curve.
    """
    if not isinstance(jwk, Mapping):
        raise MalformedCredentialError("a JWK must be a JSON object")
    private = sorted(_PRIVATE_MEMBERS & set(jwk))
    if private:
        raise MalformedCredentialError(
            f"JWK carries private key members {', '.join(private)}; only public keys belong here"
        )
    kty = jwk.get("kty")
    crv = jwk.get("crv")
    key: PublicKey
    if kty == "EC":
        if not isinstance(crv, str) or crv not in _CURVES:
            raise MalformedCredentialError(f"JWK curve {crv!r} is not supported (P-256, P-384)")
        curve, size = _CURVES[crv]
        point = b"\x04" + _member(jwk, "x", size=size) + _member(jwk, "y", size=size)
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        except ValueError:
            raise MalformedCredentialError(f"JWK point is not on curve {crv}") from None
    elif kty == "OKP":
        if crv != "Ed25519":
            raise MalformedCredentialError(f"JWK OKP curve {crv!r} is not supported (Ed25519)")
        try:
            key = ed25519.Ed25519PublicKey.from_public_bytes(_member(jwk, "x", size=32))
        except ValueError:
            raise MalformedCredentialError("JWK member 'x' is not an Ed25519 public key") from None
    elif kty == "RSA":
        numbers = rsa.RSAPublicNumbers(_positive_uint(jwk, "e"), _positive_uint(jwk, "n"))
        try:
            key = numbers.public_key()
        except ValueError as exc:
            raise MalformedCredentialError(f"JWK is not an RSA public key: {exc}") from None
    else:
        raise MalformedCredentialError(f"JWK key type {kty!r} is not supported (EC, OKP, RSA)")
    try:
        key_type = KeyType.of(key)
    except InputError as exc:
        raise MalformedCredentialError(f"JWK: {exc.message}") from None
    alg = jwk.get("alg")
    if alg is not None and alg != algorithm_for(key_type):
        raise MalformedCredentialError(
            f"JWK says alg {alg!r} but a {key_type.value} key signs with {algorithm_for(key_type)}"
        )
    return key


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url."""
    normalized = public_jwk(key_from_jwk(jwk))
    # RFC 7638 3.2/3.3: the required members only, sorted, no whitespace
    members = {name: normalized[name] for name in _THUMBPRINT_MEMBERS[normalized["kty"]]}
    return b64url_encode(hashlib.sha256(canonical_json(members)).digest())


def _supported(key: CertificatePublicKeyTypes) -> PublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise InputError(f"key algorithm {type(key).__name__} is not supported")
    KeyType.of(key)
    return key


def sign_jws(header: Mapping[str, Any], payload: bytes, signer: Signer) -> str:
    """A compact JWS of ``payload`` under ``header`` plus the ``alg`` of the signer's key.

    A header ``alg`` other than the key's, or an ``x5c`` whose leaf does not certify the
    signer's key, is refused; the signature is checked before it is returned.
    """
    key = _supported(signer.public_key)
    alg = algorithm_for(signer.key_type)
    if header.get("alg", alg) != alg:
        raise InputError(f"header alg {header['alg']!r} differs from {alg} of {signer.description}")
    if "x5c" in header:
        leaf = x5c_of(header)[0]
        if leaf.public_key() != key:
            raise InputError(
                f"the first x5c certificate ({leaf.subject.rfc4514_string()}) does not certify "
                f"the key of {signer.description}"
            )
    full = {**header, "alg": alg}
    signing_input = f"{b64url_encode(canonical_json(full))}.{b64url_encode(payload)}"
    signature = jose_signature(signer, signing_input.encode("ascii"))
    if not jose_signature_valid(key, signing_input.encode("ascii"), signature):
        raise InputError(f"{signer.description} produced a signature its own key rejects")
    return f"{signing_input}.{b64url_encode(signature)}"


@dataclass(frozen=True)
class _Verifier:
    """A supported public key made ready once: the ``alg`` its type implies and, for ECDSA, the
    coordinate length and signature algorithm (immutable, so it may be shared and cached)."""

    key: PublicKey
    alg: str
    #: ECDSA only (None for RSA and EdDSA): the key, the octets of each of R and S
    #: (RFC 7518 3.4) and the signature algorithm.
    ec_key: ec.EllipticCurvePublicKey | None = None
    size: int = 0
    ecdsa: ec.ECDSA | None = None

    @classmethod
    def of(cls, key: CertificatePublicKeyTypes) -> _Verifier:
        """Raises :class:`InputError` for a key type trustbridge does not use."""
        verifying_key = _supported(key)
        key_type = KeyType.of(verifying_key)
        if isinstance(verifying_key, ec.EllipticCurvePublicKey):
            algorithm = hash_for(key_type)
            assert algorithm is not None
            size = _CURVES[_CURVE_NAMES[key_type]][1]
            return cls(
                verifying_key, algorithm_for(key_type), verifying_key, size, ec.ECDSA(algorithm)
            )
        return cls(verifying_key, algorithm_for(key_type))

    def valid(self, data: bytes, signature: bytes) -> bool:
        """Whether the JOSE-form ``signature`` verifies ``data`` (as ``jose_signature_valid``,
        without finding the key type and algorithm again on every call)."""
        ec_key, ecdsa, size = self.ec_key, self.ecdsa, self.size
        if ec_key is None or ecdsa is None:
            return jose_signature_valid(self.key, data, signature)
        if len(signature) != 2 * size:
            return False
        try:
            ec_key.verify(_der_signature(signature, size), data, ecdsa)
        except (InvalidSignature, ValueError):
            return False
        return True


def _der_signature(signature: bytes, size: int) -> bytes:
    """``encode_dss_signature`` of the JOSE form R || S (RFC 7518 3.4; ``size`` octets each, at
    most 48): the DER SEQUENCE of the two INTEGERs (X.690 8.3: minimal, non-negative), built
    from the octets without making ints of them."""
    r = signature[:size].lstrip(b"\0") or b"\0"
    s = signature[size:].lstrip(b"\0") or b"\0"
    if r[0] > 0x7F:
        r = b"\0" + r
    if s[0] > 0x7F:
        s = b"\0" + s
    # Every length is below 128 (short form): 2 * (2 + 49) octets at most.
    return bytes((0x30, len(r) + len(s) + 4, 0x02, len(r))) + r + bytes((0x02, len(s))) + s


def verify_jws(jws: CompactJws, key: CertificatePublicKeyTypes, *, source: str = "") -> None:
    """Raise :class:`TamperedCredentialError` unless ``jws`` is signed by ``key``.

    The key decides the algorithm: a header ``alg`` other than the one its type implies is
    refused before any signature check.
    """
    try:
        verifier = _Verifier.of(key)
    except InputError as exc:
        raise TamperedCredentialError(
            f"cannot verify with this key: {exc.message}", source=source
        ) from None
    _check_signature(jws, verifier, source)


def verify_x5c_jws(
    jws: CompactJws, header: Mapping[str, Any], *, source: str = ""
) -> tuple[x509.Certificate, ...]:
    """The header's ``x5c`` chain (:func:`x5c_of`), once ``jws`` verified under its leaf's key
    (as :func:`verify_jws`); chain and key are made ready once per exact ``x5c`` chain."""
    try:
        chain, verifier = _prepared_chain(header.get("x5c"))
    except (MalformedCredentialError, InputError, TypeError):
        # Not a chain parsed before: x5c_of and the key say why, naming the source.
        chain = x5c_of(header, source=source)
        try:
            verifier = _Verifier.of(chain[0].public_key())
        except InputError as exc:
            raise TamperedCredentialError(
                f"cannot verify with this key: {exc.message}", source=source
            ) from None
    _check_signature(jws, verifier, source)
    return chain


@functools.lru_cache(maxsize=1024)
def _prepared_chain(x5c: Any) -> tuple[tuple[x509.Certificate, ...], _Verifier]:
    """An ``x5c`` chain (hashable: the tuple of a cached header) parsed, with its leaf's key
    made ready; keyed by the exact base64 texts, so by the exact DER certificates."""
    chain = x5c_of({"x5c": x5c})
    return chain, _Verifier.of(chain[0].public_key())


def _check_signature(jws: CompactJws, verifier: _Verifier, source: str) -> None:
    try:
        header = _header(jws.header)
        signature = jws.signature_bytes()
    except JwsFormatError as exc:
        raise MalformedCredentialError(f"JWS is malformed: {exc}", source=source) from None
    if not isinstance(header, types.MappingProxyType):  # _frozen makes every object one
        raise MalformedCredentialError("JWS header is not a JSON object", source=source)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise TamperedCredentialError(f"JWS alg {alg!r} is refused", source=source)
    if alg != verifier.alg:
        raise TamperedCredentialError(
            f"JWS alg {alg!r} is not {verifier.alg}, the algorithm of the verifying key",
            source=source,
        )
    if "crit" in header:
        # RFC 7515 4.1.11: extensions we do not understand must not be ignored
        raise MalformedCredentialError(
            f"JWS header names critical extensions {header['crit']!r}", source=source
        )
    if not verifier.valid(jws.signing_input, signature):
        raise TamperedCredentialError("the JWS signature does not verify", source=source)


@functools.lru_cache(maxsize=1024)
def _certificate(text: str) -> x509.Certificate:
    """One ``x5c`` entry, parsed; cached by its base64 text (RFC 7515 4.1.6)."""
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCredentialError("an x5c entry is not standard base64") from None
    if base64.b64encode(der).decode("ascii") != text:
        raise MalformedCredentialError("an x5c entry is not canonical base64")
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MalformedCredentialError(f"an x5c entry is not a DER certificate: {exc}") from None


def x5c_encode(chain: Iterable[x509.Certificate]) -> list[str]:
    """The ``x5c`` member for ``chain``, leaf first: standard base64 (not base64url) of each
    DER certificate (RFC 7515 4.1.6); :func:`x5c_of` reads it back."""
    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in chain]


def x5c_of(header: Mapping[str, Any], *, source: str = "") -> tuple[x509.Certificate, ...]:
    """The certificates of the header's ``x5c`` member, leaf first (at most ten)."""
    chain = header.get("x5c")
    if not isinstance(chain, list | tuple) or not chain:
        raise MalformedCredentialError("header has no x5c certificate chain", source=source)
    if len(chain) > _MAX_CHAIN:
        raise MalformedCredentialError(
            f"x5c holds {len(chain)} certificates; at most {_MAX_CHAIN} are accepted",
            source=source,
        )
    certificates = []
    for index, entry in enumerate(chain):
        if not isinstance(entry, str):
            raise MalformedCredentialError(f"x5c entry {index} is not a string", source=source)
        try:
            certificates.append(_certificate(entry))
        except MalformedCredentialError as exc:
            raise MalformedCredentialError(
                f"x5c entry {index}: {exc.message}", source=source
            ) from None
    return tuple(certificates)


#: Protected headers parsed before, by their base64url segment (each checked against the
#: alphabet when its token was split); at most _HEADER_LIMIT, then the cache starts afresh.
_headers: dict[str, Any] = {}
_HEADER_LIMIT = 256
_MISSING = object()
#: RFC 4648 5: the base64url alphabet (a compact JWS part uses nothing else).
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _header(segment: str) -> Any:
    """A protected header, parsed once: an issuer's header (with its ``x5c``) is the same in
    every token it signs. Objects come back read-only (see :func:`_frozen`)."""
    parsed = _headers.get(segment, _MISSING)
    if parsed is _MISSING:
        parsed = _frozen(parse_json(b64url_decode(segment)))
        # Kept only in the strict alphabet (what _split relies on for a known header).
        if segment.isascii() and not segment.encode("ascii").translate(None, _B64URL_ALPHABET):
            if len(_headers) >= _HEADER_LIMIT:
                _headers.clear()
            _headers[segment] = parsed
    return parsed


def _frozen(value: Any) -> Any:
    """Lists as tuples, objects as read-only mappings: a cached header cannot be changed."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return types.MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


def _split(text: str) -> CompactJws:
    """``CompactJws.parse`` of ``text``; where the header segment is one parsed before (so its
    alphabet was checked then), only the payload and signature segments are checked again."""
    head, _, rest = text.partition(".")
    body, dot, signature = rest.partition(".")
    if (
        dot
        and body
        and signature
        and head in _headers
        and text.isascii()
        and not body.encode("ascii").translate(None, _B64URL_ALPHABET)
        and not signature.encode("ascii").translate(None, _B64URL_ALPHABET)
    ):
        return CompactJws(head, body, signature)
    return CompactJws.parse(text.encode("utf-8"))


def _base64_decoder() -> TypeAdapter[bytes] | None:
    """pydantic-core's base64 decoder (in Rust; binascii takes several times longer for a
    payload of a few kilobytes), where this pydantic has one. On a segment in the base64url
    alphabet it accepts exactly what ``CompactJws.payload_bytes`` accepts (unpadded, canonical)
    and gives the same octets; tests/credentials/test_jose.py compares the two."""
    adapter = TypeAdapter(bytes, config=ConfigDict(val_json_bytes="base64"))
    try:
        return adapter if adapter.validate_json('"QUJD_w"') == b"ABC\xff" else None
    except PydanticValidationError:
        return None


_BASE64 = _base64_decoder()


def _payload_bytes(jws: CompactJws) -> bytes:
    """``jws.payload_bytes()``, faster; the payload segment is in the alphabet (split checked)."""
    if _BASE64 is not None:
        try:
            return _BASE64.validate_json(f'"{jws.payload}"')
        except PydanticValidationError:
            pass
    return jws.payload_bytes()  # or refuses it, with the message it always gave


def decode_jwt(text: str, *, source: str) -> tuple[CompactJws, dict[str, Any], dict[str, Any]]:
    """Split a compact JWT and parse its header and payload as strict JSON objects."""
    jws, header, payload = decode_jwt_shared(text, source=source)
    return jws, dict(header), payload


def decode_jwt_shared(
    text: str, *, source: str
) -> tuple[CompactJws, Mapping[str, Any], dict[str, Any]]:
    """:func:`decode_jwt`, with the header as parsed once for every token that has it: read-only
    (objects as mappings, arrays as tuples), not copied."""
    try:
        jws = _split(text)
        header = _header(jws.header)
        payload = parse_json(_payload_bytes(jws))
    except JwsFormatError as exc:
        raise MalformedCredentialError(f"not a JWT: {exc}", source=source) from None
    if not isinstance(header, types.MappingProxyType):  # _frozen makes every object one
        raise MalformedCredentialError("JWT header is not a JSON object", source=source)
    if not isinstance(payload, dict):
        raise MalformedCredentialError("JWT payload is not a JSON object", source=source)
    return jws, header, payload
