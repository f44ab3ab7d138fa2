"""Securing trustworthiness credentials: ``vc+jwt`` (VC-JOSE-COSE) and ``dc+sd-jwt`` (SD-JWT VC).

Both carry the same VCDM 2.0 members. A ``vc+jwt`` is the VCDM document as JWT payload, with
the JWT claims ``iss``, ``sub``, ``jti``, ``iat``, ``nbf``, ``exp`` and ``cnf`` beside it. A
``dc+sd-jwt`` has the SD-JWT VC claims (``vct`` instead of ``@context``) and makes every claim,
the subject's product and location details and the evidence details selectively disclosable.
The issuer's certificate chain travels in the JOSE header's ``x5c``; the holder's key in
``cnf.jwk``. A holder presents a ``vc+jwt`` inside a ``vp+jwt`` and a ``dc+sd-jwt`` with a
key-binding JWT, both bound to the verifier's audience and nonce.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from cryptography import x509

from trustbridge._canonical import canonical_json
from trustbridge.clock import ensure_utc
from trustbridge.credentials import sdjwt
from trustbridge.credentials._jose import jwk_thumbprint, public_jwk, sign_jws, x5c_encode
from trustbridge.credentials.errors import MalformedCredentialError
from trustbridge.credentials.model import VCDM_CONTEXT, VCT, TrustCredential
from trustbridge.errors import InputError
from trustbridge.pki.signers import Signer
from trustbridge.trust._jws import (
    CompactJws,
    JwsFormatError,
    b64url_decode,
    parse_json,
)

__all__ = [
    "ENVELOPED_PREFIX",
    "EVIDENCE_DETAILS",
    "SUBJECT_DETAILS",
    "Format",
    "Token",
    "disclosable_paths",
    "issue_credential",
    "path_text",
    "present",
    "token_kind",
    "unverified_payload",
]

#: How a ``vp+jwt`` envelopes a ``vc+jwt`` (VC-JOSE-COSE, EnvelopedVerifiableCredential).
ENVELOPED_PREFIX = "data:application/vc+jwt,"
#: What a dc+sd-jwt makes selectively disclosable besides the claims (verify.py insists).
SUBJECT_DETAILS = ("partNumber", "serialNumber", "globalAssetId", "location")
EVIDENCE_DETAILS = ("reference", "statement", "auditor", "scope", "findings")


class Format(enum.StrEnum):
    VC_JWT = "vc+jwt"
    SD_JWT = "dc+sd-jwt"


class Token(enum.StrEnum):
    """What a compact token is, by its JOSE ``typ`` (and the SD-JWT ``~``)."""

    VC_JWT = "vc+jwt"
    VP_JWT = "vp+jwt"
    SD_JWT = "dc+sd-jwt"


def _numeric(value: datetime) -> int:
    return int(ensure_utc(value).timestamp())


def _check_chain(signer: Signer, chain: Sequence[x509.Certificate]) -> None:
    if not chain:
        raise InputError("issuing a credential needs the issuer's certificate chain, leaf first")
    if chain[0].public_key() != signer.public_key:
        raise InputError(
            f"the first certificate of the chain ({chain[0].subject.rfc4514_string()}) does not "
            f"certify the key of {signer.description}"
        )


def path_text(path: sdjwt.Path) -> str:
    """``credentialSubject.claims[0]``: how messages and verdicts name a disclosable claim."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def issue_credential(
    credential: TrustCredential,
    *,
    format: Format,
    signer: Signer,
    chain: Sequence[x509.Certificate],
    holder_key: Any,
    issued_at: datetime,
) -> str:
    """Sign ``credential`` in ``format``, bound to the holder's public key."""
    _check_chain(signer, chain)
    if not credential.claims:
        raise InputError(f"credential {credential.id} has no claims")
    jwt_claims: dict[str, Any] = {
        "iss": credential.issuer.id,
        "sub": credential.subject.id,
        "jti": credential.id,
        "iat": _numeric(issued_at),
        "nbf": _numeric(credential.valid_from),
        "exp": _numeric(credential.valid_until),
        "cnf": {"jwk": public_jwk(holder_key)},
    }
    document = credential.to_vc()
    header = {"typ": str(format), "x5c": x5c_encode(chain)}
    if format is Format.VC_JWT:
        payload = {**document, **jwt_claims}
        return sign_jws(header, canonical_json(payload), signer)
    document.pop("@context")
    claims = {**document, **jwt_claims, "vct": VCT}
    return sdjwt.issue_sd_jwt(
        claims,
        disclosable=_disclosable(document),
        signer=signer,
        header=header,
    )


def _disclosable(document: Mapping[str, Any]) -> list[sdjwt.Path]:
    subject = document["credentialSubject"]
    paths: list[sdjwt.Path] = [
        ("credentialSubject", "claims", index) for index in range(len(subject["claims"]))
    ]
    paths += [("credentialSubject", name) for name in SUBJECT_DETAILS if name in subject]
    evidence = document["evidence"][0]
    paths += [("evidence", 0, name) for name in EVIDENCE_DETAILS if name in evidence]
    return paths


def token_kind(token: str, *, source: str = "") -> Token:
    """Tell a ``vc+jwt``, a ``vp+jwt`` and a ``dc+sd-jwt`` apart (no verification)."""
    text = token.strip()
    first = text.split("~", 1)[0]
    try:
        header = CompactJws.parse(first.encode("ascii")).header_json()
    except (JwsFormatError, UnicodeEncodeError) as exc:
        raise MalformedCredentialError(f"not a JWS compact token ({exc})", source=source) from exc
    typ = header.get("typ") if isinstance(header, dict) else None
    if "~" in text:
        return Token.SD_JWT
    try:
        return Token(str(typ))
    except ValueError:
        raise MalformedCredentialError(
            f"JOSE typ {typ!r} is none of vc+jwt, vp+jwt, dc+sd-jwt", source=source
        ) from None


def disclosable_paths(token: str) -> list[str]:
    """The claims a holder may choose to disclose from a ``dc+sd-jwt``."""
    return [path_text(p) for p in sdjwt.disclosable_paths(token)]


def _chosen(token: str, disclose: Collection[str] | None) -> list[sdjwt.Path]:
    paths = sdjwt.disclosable_paths(token)
    if disclose is None:
        return paths
    by_text = {path_text(p): p for p in paths}
    unknown = sorted(set(disclose) - set(by_text))
    if unknown:
        raise InputError(
            f"cannot disclose {', '.join(unknown)}: not disclosable in this credential",
            hint=f"disclosable: {', '.join(by_text)}",
        )
    return [by_text[text] for text in disclose]


def present(
    token: str,
    *,
    holder: Signer,
    audience: str,
    nonce: str,
    issued_at: datetime,
    disclose: Collection[str] | None = None,
) -> str:
    """A presentation of ``token`` for ``audience`` and ``nonce``, signed with the holder's key.

    For a ``dc+sd-jwt``, ``disclose`` names the claims to reveal (``path_text`` form; all of
    them by default); a ``vc+jwt`` is always presented whole.
    """
    kind = token_kind(token)
    if not audience or not nonce:
        raise InputError("a presentation needs the verifier's audience and nonce")
    if kind is Token.SD_JWT:
        return sdjwt.present(
            token.strip(),
            disclose=_chosen(token, disclose),
            holder=holder,
            audience=audience,
            nonce=nonce,
            issued_at=issued_at,
        )
    if kind is not Token.VC_JWT:
        raise InputError(f"a {kind} cannot be presented again")
    if disclose is not None:
        raise InputError("a vc+jwt cannot disclose selectively; issue a dc+sd-jwt for that")
    cnf = unverified_payload(token).get("cnf")
    bound = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(bound, dict) or jwk_thumbprint(bound) != jwk_thumbprint(
        public_jwk(holder.public_key)
    ):
        raise InputError(f"the credential is bound to another key than {holder.description}'s")
    payload = {
        "@context": [VCDM_CONTEXT],
        "type": ["VerifiablePresentation"],
        "verifiableCredential": [
            {
                "@context": VCDM_CONTEXT,
                "id": ENVELOPED_PREFIX + token.strip(),
                "type": "EnvelopedVerifiableCredential",
            }
        ],
        "aud": audience,
        "nonce": nonce,
        "iat": _numeric(issued_at),
    }
    return sign_jws({"typ": str(Token.VP_JWT)}, canonical_json(payload), holder)


def unverified_payload(token: str, *, source: str = "") -> dict[str, Any]:
    """The issuer-signed payload of a token, not verified (for listing and messages)."""
    first = token.strip().split("~", 1)[0]
    try:
        payload = parse_json(b64url_decode(CompactJws.parse(first.encode()).payload))
    except (JwsFormatError, UnicodeEncodeError) as exc:
        raise MalformedCredentialError(f"not a JWS compact token ({exc})", source=source) from exc
    if not isinstance(payload, dict):
        raise MalformedCredentialError("the payload is not a JSON object", source=source)
    return payload
