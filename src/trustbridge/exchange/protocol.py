"""First contact between two company nodes: the pure parts of the protocol.

Two nodes that have never met talk HTTPS. Each request is signed with the caller's identity
(RFC 9421, :mod:`trustbridge.node.httpsig`); each answer is a compact JWS, an *envelope*,
signed with the answering organization's identity, with its chain in ``x5c``, bound to the
request it answers (``req``: the request signature's nonce) and to the caller (``aud``). Both
sides resolve the other's chain with their own trust resolver (bridge or trust-list route).

The initiator (the customer) drives the session through fixed steps; the responder (the
supplier) accepts each step only after the one before it::

    discover -> hello -> presentation -> profile -> propose -> countersign -> conclude

- ``discover``: ``GET /.well-known/trustbridge?nonce=N`` returns the node description, an
  envelope of type ``tb-node+jwt`` (organization, endpoints, formats, newcomer policy, the
  SHA-256 of the node's TLS certificate, which the caller then pins).
- ``hello``: the initiator offers formats (its preference order); the responder selects, per
  category, the first offered format it supports and returns the selection with the digest of
  the offer it saw and a challenge (nonce, audience, expiry) for the initiator's profile. The
  initiator recomputes the selection from its offer and the responder's signed description: any
  other selection is a downgrade and ends the session.
- ``presentation``: the initiator sends its own challenge; the responder presents its trust
  profile as a package bound to it. ``profile``: the initiator presents its package for the
  responder's challenge, which the responder refuses once expired.
- ``propose``, ``countersign``, ``conclude``: the contract
  (see :mod:`trustbridge.exchange.contract`).

This module knows no HTTP and no database: it builds and opens envelopes, negotiates formats
and states the ordering rules. The node (``trustbridge.node.partner``) and the driver
(``trustbridge.node.onboard``) apply them.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from trustbridge._canonical import canonical_json
from trustbridge.credentials._jose import decode_jwt, sign_jws, verify_jws, x5c_encode, x5c_of
from trustbridge.credentials.errors import CredentialError
from trustbridge.errors import ValidationError
from trustbridge.pki.signers import Signer

__all__ = [
    "CHALLENGE_LIFETIME",
    "DISCOVERY_TYPE",
    "ENVELOPE_LIFETIME",
    "FORMATS",
    "PROTOCOL",
    "RESPONSE_TYPE",
    "WELL_KNOWN",
    "Challenge",
    "ChallengeExpiredError",
    "DowngradeError",
    "Envelope",
    "ExchangeError",
    "Step",
    "StepOrderError",
    "check_selection",
    "negotiate",
    "new_nonce",
    "offer_digest",
    "open_envelope",
    "seal_envelope",
]

PROTOCOL = "trustbridge-exchange/1"
WELL_KNOWN = "/.well-known/trustbridge"
DISCOVERY_TYPE = "tb-node+jwt"
RESPONSE_TYPE = "tb-response+jwt"
#: How long a presentation challenge stays open.
CHALLENGE_LIFETIME = timedelta(minutes=10)
#: How long an envelope is valid after it was signed.
ENVELOPE_LIFETIME = timedelta(minutes=5)
#: How far the other node's clock may run ahead of ours.
MAX_SKEW = timedelta(seconds=30)

#: What this implementation speaks, per category, strongest first. Every category is required:
#: two nodes without a common format in one of them cannot do business with each other.
FORMATS: Mapping[str, tuple[str, ...]] = {
    "credentials": ("dc+sd-jwt", "vc+jwt"),
    "presentations": ("tb-presentations/1",),
    "contracts": ("pades-b-lta",),
    "messages": ("jws-in-jwe/ECDH-ES/A256GCM",),
    "http-signatures": ("rfc9421/trustbridge-v1",),
}


class ExchangeError(ValidationError):
    """The partner broke the protocol, or its answer cannot be trusted; the session stops."""


class DowngradeError(ExchangeError):
    """The partner selected a weaker format than both sides support."""


class StepOrderError(ExchangeError):
    """A step came out of order, twice with different content, or after the session ended."""


class ChallengeExpiredError(ExchangeError):
    """A presentation answered a challenge that had expired (or was never issued)."""


class Step(enum.StrEnum):
    DISCOVER = "discover"
    HELLO = "hello"
    PRESENTATION = "presentation"
    PROFILE = "profile"
    PROPOSE = "propose"
    COUNTERSIGN = "countersign"
    CONCLUDE = "conclude"

    @property
    def position(self) -> int:
        return list(Step).index(self)

    @property
    def previous(self) -> Step | None:
        return list(Step)[self.position - 1] if self.position else None


def new_nonce() -> str:
    """A fresh random nonce: 128 bits, base64url."""
    return secrets.token_urlsafe(16)


# -- formats -------------------------------------------------------------------------------------


def _checked_formats(value: Any, what: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ExchangeError(f"{what} is not an object of format lists")
    formats: dict[str, tuple[str, ...]] = {}
    for category, names in value.items():
        if not isinstance(category, str) or not isinstance(names, list | tuple):
            raise ExchangeError(f"{what}: {category!r} is not a list of formats")
        if not all(isinstance(n, str) and 0 < len(n) <= 100 for n in names) or len(names) > 20:
            raise ExchangeError(f"{what}: the {category} formats are not short strings")
        formats[category] = tuple(names)
    return formats


def negotiate(
    offer: Mapping[str, Sequence[str]], supported: Mapping[str, Sequence[str]] = FORMATS
) -> dict[str, str]:
    """Per category, the first offered format that is supported; every category is required."""
    offered = _checked_formats(offer, "the offer")
    own = _checked_formats(supported, "the supported formats")
    selection: dict[str, str] = {}
    for category in FORMATS:
        common = [f for f in offered.get(category, ()) if f in own.get(category, ())]
        if not common:
            raise ExchangeError(
                f"no common {category} format: offered {list(offered.get(category, ()))}, "
                f"supported {list(own.get(category, ()))}"
            )
        selection[category] = common[0]
    return selection


def offer_digest(offer: Mapping[str, Sequence[str]]) -> str:
    """SHA-256 (hex) of the offer's canonical JSON: the responder echoes what it saw."""
    return hashlib.sha256(canonical_json({k: list(v) for k, v in offer.items()})).hexdigest()


def check_selection(
    offer: Mapping[str, Sequence[str]],
    partner_formats: Mapping[str, Sequence[str]],
    selected: Any,
    echoed_digest: Any,
) -> dict[str, str]:
    """Refuse a selection other than the best common one, or an offer the partner saw changed."""
    if echoed_digest != offer_digest(offer):
        raise DowngradeError(
            "the partner answered a different offer than the one sent (offer digest mismatch)"
        )
    expected = negotiate(offer, partner_formats)
    chosen = _checked_formats(
        {k: [v] for k, v in selected.items()} if isinstance(selected, Mapping) else selected,
        "the selection",
    )
    flat = {k: v[0] for k, v in chosen.items()}
    if flat != expected:
        changed = sorted(k for k in set(expected) | set(flat) if flat.get(k) != expected.get(k))
        raise DowngradeError(
            "the partner selected "
            + ", ".join(f"{k} {flat.get(k)!r} instead of {expected.get(k)!r}" for k in changed)
            + ": a downgrade from the best format both sides support",
            hint="the session is closed; start a new one with a node that selects honestly",
        )
    return expected


# -- challenges ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """What a presentation must be bound to: a nonce, the asking node's audience, an expiry."""

    nonce: str
    audience: str
    expires: datetime

    @classmethod
    def issue(cls, audience: str, at: datetime) -> Challenge:
        return cls(new_nonce(), audience, at + CHALLENGE_LIFETIME)

    def to_json(self) -> dict[str, str]:
        return {"nonce": self.nonce, "audience": self.audience, "expires": self.expires.isoformat()}

    @classmethod
    def from_json(cls, data: Any) -> Challenge:
        if not isinstance(data, Mapping):
            raise ExchangeError("the challenge is not an object")
        nonce, audience, expires = data.get("nonce"), data.get("audience"), data.get("expires")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
            raise ExchangeError("the challenge nonce must be a string of 16 to 128 characters")
        if not isinstance(audience, str) or not audience:
            raise ExchangeError("the challenge has no audience")
        try:
            when = datetime.fromisoformat(str(expires))
        except ValueError:
            raise ExchangeError(f"the challenge expiry {expires!r} is not a time") from None
        if when.tzinfo is None:
            raise ExchangeError("the challenge expiry has no time zone")
        return cls(nonce, audience, when.astimezone(UTC))

    def check_open(self, at: datetime) -> None:
        if at >= self.expires:
            raise ChallengeExpiredError(
                f"the challenge {self.nonce[:8]}... expired at {self.expires:%Y-%m-%d %H:%M:%S}Z",
                hint="ask for a new challenge: start a new session",
            )


# -- envelopes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """An opened, signature-checked envelope. Whether its signer is trusted is the caller's
    decision (resolve ``chain`` with the trust resolver)."""

    typ: str
    claims: dict[str, Any]
    chain: tuple[x509.Certificate, ...]
    #: The envelope as received (kept as evidence).
    token: str

    @property
    def body(self) -> Any:
        return self.claims.get("body")

    @property
    def signer(self) -> x509.Certificate:
        return self.chain[0]


def seal_envelope(
    body: Any,
    *,
    typ: str,
    issuer: str,
    audience: str | None,
    request: str | None,
    signer: Signer,
    chain: Sequence[x509.Certificate],
    at: datetime,
    lifetime: timedelta = ENVELOPE_LIFETIME,
) -> str:
    """Sign ``body`` as an envelope: ``iss``, ``aud``, ``req``, ``iat``, ``exp`` and ``body``."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "iat": int(at.timestamp()),
        "exp": int((at + lifetime).timestamp()),
        "body": body,
    }
    if audience is not None:
        claims["aud"] = audience
    if request is not None:
        claims["req"] = request
    header = {"typ": typ, "x5c": x5c_encode(chain)}
    return sign_jws(header, canonical_json(claims), signer)


def open_envelope(
    token: str,
    *,
    typ: str,
    at: datetime,
    audience: str | None = None,
    request: str | None = None,
    source: str = "",
) -> Envelope:
    """Check an envelope's type, signature (by its ``x5c`` leaf), time, audience and request."""
    where = source or "the partner's answer"
    if not isinstance(token, str) or len(token) > 8 * 1024 * 1024:
        raise ExchangeError(f"{where} is not an envelope of acceptable size")
    try:
        jws, header, claims = decode_jwt(token.strip(), source=where)
        if header.get("typ") != typ:
            raise ExchangeError(f"{where} has typ {header.get('typ')!r}, not {typ!r}")
        chain = x5c_of(header, source=where)
        verify_jws(jws, chain[0].public_key(), source=where)
    except CredentialError as exc:
        raise ExchangeError(f"{where}: {exc.message}") from None
    issued, expires = claims.get("iat"), claims.get("exp")
    if type(issued) is not int or type(expires) is not int:
        raise ExchangeError(f"{where} lacks iat/exp as integers")
    now = int(at.timestamp())
    if issued > now + MAX_SKEW.total_seconds():
        raise ExchangeError(f"{where} was signed in the future")
    if expires <= now or expires - issued > ENVELOPE_LIFETIME.total_seconds() * 2:
        raise ExchangeError(f"{where} has expired or claims too long a lifetime")
    if audience is not None and claims.get("aud") != audience:
        raise ExchangeError(f"{where} is addressed to {claims.get('aud')!r}, not {audience!r}")
    if request is not None and claims.get("req") != request:
        raise ExchangeError(
            f"{where} answers another request (req {claims.get('req')!r}): replayed or misrouted"
        )
    if not isinstance(claims.get("iss"), str):
        raise ExchangeError(f"{where} names no issuer")
    return Envelope(typ, claims, chain, token.strip())
