"""Presentation packages: a holder's presentations to one verifier, signed as a whole.

A partner being assessed presents several credentials at once, and perhaps its own suppliers'
presentations (tier 2). The package is a compact JWS (``typ`` ``tb-presentations+jwt``) signed by
the holder's organization identity, with that identity's chain in ``x5c``::

    {"iss": "urn:trustbridge:org:NTRJP-...", "aud": "<verifier>", "nonce": "<verifier's>",
     "iat": 1764000000, "presentations": ["<vp+jwt or SD-JWT+KB>", ...],
     "suppliers": ["<a supplier's package>", ...]}

Opening it proves who the partner is (its organization identity, resolved by the verifier's
trust resolver at a reference level) and that every presentation and every supplier package
answers the verifier's own challenge: suppliers' packages carry the same audience and nonce
(the partner relays the challenge), so nothing can be replayed from an earlier exchange. A
presentation whose credential is bound to another key than the partner's identity, or that fails
verification, does not count and is reported; the package itself failing is an error.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from trustbridge.clock import ensure_utc
from trustbridge.credentials._jose import (
    decode_jwt,
    jwk_thumbprint,
    public_jwk,
    sign_jws,
    verify_jws,
    x5c_of,
)
from trustbridge.credentials.errors import (
    CredentialError,
    HolderBindingError,
    MalformedCredentialError,
    UntrustedIssuerError,
    WrongTypeError,
)
from trustbridge.credentials.formats import ENVELOPED_PREFIX, unverified_payload
from trustbridge.credentials.model import Verdict, issuer_id_for
from trustbridge.credentials.verify import (
    CredentialVerifier,
    IssuerResolver,
    VerificationParams,
    check_binding,
    organization_identifier_of,
)
from trustbridge.errors import InputError, ValidationError
from trustbridge.pki.profiles import SubjectKind, subject_kind_of
from trustbridge.pki.signers import Signer
from trustbridge.trust._jws import canonical_json

__all__ = [
    "PACKAGE_TYPE",
    "OpenedPackage",
    "PackageRefusal",
    "make_package",
    "open_package",
]

PACKAGE_TYPE = "tb-presentations+jwt"
#: At most this many presentations and suppliers per package (a package is read whole).
MAX_PRESENTATIONS = 64
MAX_SUPPLIERS = 16


def _numeric(value: datetime) -> int:
    return int(ensure_utc(value).timestamp())


def make_package(
    presentations: Sequence[str],
    *,
    signer: Signer,
    chain: Sequence[x509.Certificate],
    audience: str,
    nonce: str,
    issued_at: datetime,
    suppliers: Sequence[str] = (),
) -> str:
    """Sign ``presentations`` (and ``suppliers``' packages) for ``audience`` and ``nonce``."""
    if not audience or not nonce:
        raise InputError("a presentation package needs the verifier's audience and nonce")
    if not chain:
        raise InputError("a presentation package needs the holder's certificate chain")
    if len(presentations) > MAX_PRESENTATIONS or len(suppliers) > MAX_SUPPLIERS:
        raise InputError(
            f"a package holds at most {MAX_PRESENTATIONS} presentations and "
            f"{MAX_SUPPLIERS} supplier packages"
        )
    organization = organization_identifier_of(chain[0])
    if organization is None or subject_kind_of(chain[0]) is not SubjectKind.ORGANIZATION:
        raise InputError(
            f"{chain[0].subject.rfc4514_string()} is not an organization identity",
            hint="a package is signed with the holder's organization identity",
        )
    payload = {
        "iss": issuer_id_for(organization),
        "aud": audience,
        "nonce": nonce,
        "iat": _numeric(issued_at),
        "presentations": [p.strip() for p in presentations],
        "suppliers": [s.strip() for s in suppliers],
    }
    header = {
        "typ": PACKAGE_TYPE,
        "x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in chain],
    }
    return sign_jws(header, canonical_json(payload), signer)


@dataclass(frozen=True)
class PackageRefusal:
    """A presentation (or supplier package) in a package that does not count, and why."""

    source: str
    reason: str
    credential: str | None = None


@dataclass(frozen=True)
class OpenedPackage:
    """A verified package: who presented, at which level, what counted, what did not."""

    organization: str
    name: str
    identity: x509.Certificate
    route: str
    reference_level: str | None
    verdicts: tuple[Verdict, ...]
    refused: tuple[PackageRefusal, ...]
    suppliers: tuple[OpenedPackage, ...]
    #: credential id -> the presentation it came in (``package: presentation 2``).
    sources: dict[str, str] = field(default_factory=dict)


def open_package(
    token: str,
    *,
    verifier: CredentialVerifier,
    resolver: IssuerResolver,
    at: datetime,
    audience: str,
    nonce: str,
    max_depth: int = 2,
    params: VerificationParams | None = None,
    source: str = "package",
    _ancestors: tuple[str, ...] = (),
) -> OpenedPackage:
    """Verify a package for ``audience`` and ``nonce``; raises :class:`CredentialError` when
    the package itself cannot be relied on (signature, identity, challenge)."""
    at = ensure_utc(at)
    params = params or VerificationParams()
    jws, header, payload = decode_jwt(token.strip(), source=source)
    if header.get("typ") != PACKAGE_TYPE:
        raise WrongTypeError(
            f"typ is {header.get('typ')!r}, expected {PACKAGE_TYPE}", source=source
        )
    chain = x5c_of(header, source=source)
    leaf = chain[0]
    verify_jws(jws, leaf.public_key(), source=source)
    organization = organization_identifier_of(leaf)
    if organization is None or subject_kind_of(leaf) is not SubjectKind.ORGANIZATION:
        raise UntrustedIssuerError(
            f"the package is signed by {leaf.subject.rfc4514_string()}, "
            "not an organization identity",
            source=source,
        )
    if payload.get("iss") != issuer_id_for(organization):
        raise UntrustedIssuerError(
            f"the package names the issuer {payload.get('iss')!r}, its signer is "
            f"{issuer_id_for(organization)}",
            source=source,
        )
    check_binding(payload, audience, nonce, at, params, source)
    try:
        resolution = resolver.resolve(leaf, at=at, extra=chain[1:])
    except ValidationError as exc:
        raise UntrustedIssuerError(
            f"the partner's organization identity {leaf.subject.rfc4514_string()} is not "
            f"trusted: {exc.message}",
            source=source,
        ) from exc
    if organization in _ancestors:
        raise MalformedCredentialError(
            f"{organization} appears twice in the supplier tree", source=source
        )
    presentations = _strings(payload, "presentations", MAX_PRESENTATIONS, source)
    supplier_tokens = _strings(payload, "suppliers", MAX_SUPPLIERS, source)
    key: Any = leaf.public_key()  # verify_jws accepted it: a supported signature key
    holder = jwk_thumbprint(public_jwk(key))

    verdicts: list[Verdict] = []
    refused: list[PackageRefusal] = []
    sources: dict[str, str] = {}
    for index, presentation in enumerate(presentations, start=1):
        where = f"{source}: presentation {index}"
        try:
            if _bound_key(presentation, where) != holder:
                raise HolderBindingError(
                    "the credential is bound to another key than the partner's organization "
                    "identity",
                    source=where,
                )
            verdict = verifier.verify(
                presentation, at=at, audience=audience, nonce=nonce, source=where
            )
        except CredentialError as exc:
            refused.append(PackageRefusal(where, _without(exc.message, where)))
            continue
        if verdict.credential.id in sources:
            refused.append(
                PackageRefusal(where, "the same credential twice", verdict.credential.id)
            )
            continue
        sources[verdict.credential.id] = where
        verdicts.append(verdict)

    suppliers: list[OpenedPackage] = []
    for index, supplier in enumerate(supplier_tokens, start=1):
        where = f"{source}: supplier {index}"
        if max_depth < 1:
            refused.append(PackageRefusal(where, "suppliers this deep are not opened"))
            continue
        try:
            suppliers.append(
                open_package(
                    supplier,
                    verifier=verifier,
                    resolver=resolver,
                    at=at,
                    audience=audience,
                    nonce=nonce,
                    max_depth=max_depth - 1,
                    params=params,
                    source=where,
                    _ancestors=(*_ancestors, organization),
                )
            )
        except CredentialError as exc:
            refused.append(PackageRefusal(where, _without(exc.message, where)))
    names = leaf.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return OpenedPackage(
        organization=organization,
        name=str(names[0].value) if names else leaf.subject.rfc4514_string(),
        identity=leaf,
        route=str(resolution.route),
        reference_level=None
        if resolution.reference_level is None
        else str(resolution.reference_level),
        verdicts=tuple(verdicts),
        refused=tuple(refused),
        suppliers=tuple(suppliers),
        sources=sources,
    )


def _strings(payload: dict[str, Any], name: str, limit: int, source: str) -> list[str]:
    value = payload.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedCredentialError(f"{name} must be a list of strings", source=source)
    if len(value) > limit:
        raise MalformedCredentialError(f"more than {limit} {name}", source=source)
    return value


def _bound_key(presentation: str, source: str) -> str:
    """The thumbprint of the holder key (``cnf.jwk``) the presented credential binds."""
    payload = unverified_payload(presentation, source=source)
    if payload.get("type") == ["VerifiablePresentation"] or "verifiableCredential" in payload:
        envelopes = payload.get("verifiableCredential")
        inner = envelopes[0].get("id") if isinstance(envelopes, list) and envelopes else None
        if not isinstance(inner, str) or not inner.startswith(ENVELOPED_PREFIX):
            raise MalformedCredentialError("not an enveloped credential", source=source)
        payload = unverified_payload(inner[len(ENVELOPED_PREFIX) :], source=source)
    cnf = payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk, dict):
        raise HolderBindingError("the credential binds no holder key (cnf.jwk)", source=source)
    try:
        return jwk_thumbprint(jwk)
    except (InputError, CredentialError) as exc:
        raise HolderBindingError(f"the holder key is unusable: {exc}", source=source) from exc


def _without(message: str, prefix: str) -> str:
    return message[len(prefix) + 2 :] if message.startswith(f"{prefix}: ") else message
