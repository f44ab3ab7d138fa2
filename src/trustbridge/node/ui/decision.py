"""A registration officer's release decision, signed in the browser.

The node prepares the exact :class:`~trustbridge.pki.release.Decision` statement for a request
(:func:`prepare_decision`); the page signs those bytes with WebCrypto and the officer's private
key, which never leaves the browser (:func:`browser_key` tells the page the curve and hash of
the officer's certificate, and its public key to check the chosen file against). WebCrypto
gives an ECDSA signature as ``r || s`` (IEEE P1363); :func:`der_signature` turns it into the
DER form :meth:`Home.decide` checks, as ``trustbridge request approve`` makes it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from trustbridge.errors import ApprovalError, InputError
from trustbridge.home import Home
from trustbridge.pki.keys import KeyType, hash_for
from trustbridge.pki.release import Decision, RequestState

__all__ = [
    "BrowserKey",
    "MAX_REASON",
    "browser_key",
    "der_signature",
    "prepare_decision",
]

#: Longest reason an officer may give.
MAX_REASON = 500
#: WebCrypto's names of the curves trustbridge person identities use.
_CURVES = {KeyType.P256: "P-256", KeyType.P384: "P-384"}


@dataclass(frozen=True)
class BrowserKey:
    """What the page needs to sign with the officer's key: WebCrypto parameters and the public
    key of the certificate (JWK ``x``/``y``, base64url) to compare the chosen key with."""

    curve: str
    hash: str
    x: str
    y: str


def _b64url(value: int, size: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(size, "big")).decode().rstrip("=")


def _size(key: ec.EllipticCurvePublicKey) -> int:
    return (key.curve.key_size + 7) // 8


def browser_key(certificate: x509.Certificate) -> BrowserKey | None:
    """WebCrypto parameters for the certificate's key; None where the browser cannot sign
    (keys other than ECDSA P-256 and P-384: those officers decide with the command line)."""
    key = certificate.public_key()
    try:
        key_type = KeyType.of(key)
    except InputError:
        return None
    if key_type not in _CURVES or not isinstance(key, ec.EllipticCurvePublicKey):
        return None
    algorithm = hash_for(key_type)
    assert algorithm is not None
    numbers, size = key.public_numbers(), _size(key)
    return BrowserKey(
        curve=_CURVES[key_type],
        hash=f"SHA-{algorithm.digest_size * 8}",
        x=_b64url(numbers.x, size),
        y=_b64url(numbers.y, size),
    )


def prepare_decision(home: Home, request_id: str, decision: str, reason: str = "") -> Decision:
    """The statement an officer signs to decide on a pending request, dated now."""
    if decision not in ("approve", "reject"):
        raise InputError(f"decision {decision!r} must be approve or reject")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise InputError(f"the reason has {len(reason)} characters; at most {MAX_REASON}")
    info = home.request(request_id)
    if info.state != RequestState.PENDING.value:
        raise InputError(f"request {request_id} is {info.state}, not pending")
    verdict: Literal["approve", "reject"] = "approve" if decision == "approve" else "reject"
    return Decision(request_id, info.digest, verdict, home.now(), reason)


def der_signature(certificate: x509.Certificate, signature: bytes) -> bytes:
    """A WebCrypto ECDSA signature (``r || s``, fixed length) as DER, for the certificate's
    key; refused with :class:`ApprovalError` when its length does not fit the curve."""
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ApprovalError(
            "the web UI takes ECDSA signatures only",
            hint="decide with trustbridge request approve|reject instead",
        )
    size = _size(key)
    if len(signature) != 2 * size:
        raise ApprovalError(
            f"the signature has {len(signature)} bytes; an ECDSA {key.curve.name} signature "
            f"from WebCrypto (r || s) has {2 * size}"
        )
    return encode_dss_signature(
        int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    )
