"""JWS compact serialization (RFC 7515) for signed lists: signing through a :class:`Signer`.

Only what signed trust lists need: one signature, a protected header with ``alg``, ``typ`` and
``x5c``, and verification against keys the caller already trusts. The algorithm follows from
the key type (RFC 7518 3.1, RFC 8037 3.1), never from the header, so a header cannot choose
how it is checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trustbridge._canonical import canonical_json
from trustbridge.errors import InputError
from trustbridge.pki.keys import KeyType
from trustbridge.pki.signers import Signer, jose_signature, jose_signature_valid

__all__ = [
    "CompactJws",
    "JwsFormatError",
    "algorithm_for",
    "parse_json",
    "sign_compact",
    "spki_der",
    "verifies",
]

#: JOSE ``alg`` per key type: ES256/ES384 (RFC 7518 3.4), RS256 (3.3), EdDSA (RFC 8037 3.1).
_ALGORITHMS = {
    KeyType.P256: "ES256",
    KeyType.P384: "ES384",
    KeyType.ED25519: "EdDSA",
    KeyType.RSA2048: "RS256",
    KeyType.RSA3072: "RS256",
}
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_COMPACT_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


class JwsFormatError(ValueError):
    """Input that is not a well-formed JWS compact serialization or JSON text."""


def algorithm_for(key_type: KeyType) -> str:
    """The JOSE ``alg`` a key of this type signs with."""
    return _ALGORITHMS[key_type]


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # a name given twice (built in C; the loop only on error)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JwsFormatError(f"duplicate member {key!r}")
            seen.add(key)
    return result


def _refuse_constant(name: str) -> Any:
    raise JwsFormatError(f"{name} is not JSON")


#: One decoder for every document (``json.loads`` with hooks builds a new one, and its scanner,
#: per call); a decoder keeps no state between calls.
_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)


def parse_json(data: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate member names, no NaN or Infinity."""
    try:
        text = data.decode("utf-8")
        if text.startswith("\ufeff"):  # as json.loads: a byte order mark is not JSON
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except UnicodeDecodeError as exc:
        raise JwsFormatError("not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise JwsFormatError(f"not JSON ({exc.msg} at character {exc.pos})") from exc


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url, refusing any other spelling of the same bytes."""
    if not _BASE64URL.match(text):
        raise JwsFormatError("not base64url")
    return _decode_checked(text)


#: Bits of the last character that carry no data, by ``len % 4`` (RFC 4648 3.5).
_SPARE_BITS = {0: 0, 2: 0b1111, 3: 0b11}
_ALPHABET = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}


def _decode_checked(text: str) -> bytes:
    """Decode base64url text already known to use only the alphabet."""
    remainder = len(text) % 4
    if remainder == 1:
        raise JwsFormatError("not base64url")
    # Canonical: the last character's spare bits are zero (otherwise another spelling of
    # the same bytes would verify).
    if remainder and _ALPHABET[text[-1]] & _SPARE_BITS[remainder]:
        raise JwsFormatError("not canonical base64url")
    # The base64 alphabet for the base64url one (str.replace and binascii on the text: twice as
    # fast as base64.urlsafe_b64decode, same octets for text in the base64url alphabet).
    standard = text.replace("-", "+").replace("_", "/") + "=" * (-remainder % 4)
    try:
        return binascii.a2b_base64(standard)
    except binascii.Error as exc:
        raise JwsFormatError("not base64url") from exc


def spki_der(certificate: x509.Certificate) -> bytes:
    """The DER SubjectPublicKeyInfo of a certificate."""
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class CompactJws:
    """The three parts of a JWS compact serialization, as received."""

    header: str
    payload: str
    signature: str

    @classmethod
    def parse(cls, data: bytes) -> CompactJws:
        """Split ``data`` into its parts; raises :class:`JwsFormatError` if it is no JWS."""
        data = data.strip()
        # Only the base64url alphabet and the two dots (a C-speed check: tokens with an x5c
        # chain are kilobytes long).
        if data.translate(None, _COMPACT_ALPHABET):
            try:
                data.decode("ascii")
            except UnicodeDecodeError as exc:
                raise JwsFormatError("not ASCII") from exc
            pieces = data.count(b".") + 1
            if pieces != 3:
                raise JwsFormatError(f"{pieces} dot-separated parts instead of 3")
            raise JwsFormatError("a part is empty or not base64url")
        parts = data.decode("ascii").split(".")
        if len(parts) != 3:
            raise JwsFormatError(f"{len(parts)} dot-separated parts instead of 3")
        if not all(parts):
            raise JwsFormatError("a part is empty or not base64url")
        return cls(*parts)

    @property
    def signing_input(self) -> bytes:
        """RFC 7515 5.2 step 8: ASCII(header || '.' || payload), exactly as received."""
        return f"{self.header}.{self.payload}".encode("ascii")

    # The parts were checked against the alphabet in parse().

    def header_json(self) -> Any:
        return parse_json(_decode_checked(self.header))

    def payload_bytes(self) -> bytes:
        return _decode_checked(self.payload)

    def signature_bytes(self) -> bytes:
        return _decode_checked(self.signature)


def sign_compact(
    payload: bytes, *, signer: Signer, chain: Sequence[x509.Certificate], typ: str
) -> bytes:
    """Sign ``payload`` as a JWS with header ``alg``, ``typ`` and ``x5c`` (``chain``, leaf first).

    The leaf must certify the signer's key; the signature is checked before it is returned, so
    that a misbehaving token cannot publish a list nobody can verify.
    """
    if not chain:
        raise InputError(f"signing a {typ} needs the signer's certificate chain, leaf first")
    leaf = chain[0]
    if leaf.public_key() != signer.public_key:
        raise InputError(
            f"the first certificate of the chain ({leaf.subject.rfc4514_string()}) does not "
            f"certify the key of {signer.description}"
        )
    key_type = signer.key_type
    header = {
        "alg": algorithm_for(key_type),
        "typ": typ,
        "x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in chain],
    }
    signing_input = f"{b64url_encode(canonical_json(header))}.{b64url_encode(payload)}"
    signature = jose_signature(signer, signing_input.encode("ascii"))
    if not verifies(leaf, signing_input.encode("ascii"), signature):
        raise InputError(f"{signer.description} produced a signature its certificate rejects")
    return f"{signing_input}.{b64url_encode(signature)}".encode("ascii")


def verifies(certificate: x509.Certificate, signing_input: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``signing_input`` verifies under the certificate's key.

    The algorithm is the one :func:`algorithm_for` gives the key's type.
    """
    return jose_signature_valid(certificate.public_key(), signing_input, signature)
