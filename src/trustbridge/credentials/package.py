"""Presentation packages: a holder's presentations to one verifier, signed as a whole.

A partner being assessed presents several credentials at once, and perhaps its own suppliers'
packages (tier 2). A package is a JSON object::

    {"type": "tb-presentations",
     "proof": "<compact JWS, typ tb-presentations+jwt, x5c: the holder's organization identity>",
     "presentations": ["<vp+jwt or SD-JWT+KB>", ...],
     "suppliers": [{<a supplier's package>}, ...]}

The proof signs ``{"iss": "urn:trustbridge:org:NTRJP-...", "aud": "<verifier>", "nonce":
"<verifier's>", "iat": 1764000000, "presentations": [<SHA-256 of each presentation>, ...],
"suppliers": [<SHA-256 of each supplier package's canonical JSON>, ...]}`` (base64url digests,
in order): the presentations travel beside the signature instead of inside it, so they are not
base64-encoded a second time, and the proof stays small.

Opening it proves who the partner is (its organization identity, resolved by the verifier's
trust resolver at a reference level) and that every presentation and every supplier package
answers the verifier's own challenge: suppliers' packages carry the same audience and nonce
(the partner relays the challenge), so nothing can be replayed from an earlier exchange. A
presentation whose credential is bound to another key than the partner's identity, or that fails
verification, does not count and is reported; the package itself failing is an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from trustbridge._canonical import canonical_json
from trustbridge.clock import ensure_utc
from trustbridge.credentials._jose import (
    decode_jwt,
    public_jwk,
    sign_jws,
    verify_jws,
    x5c_encode,
    x5c_of,
)
from trustbridge.credentials.errors import (
    CredentialError,
    MalformedCredentialError,
    TamperedCredentialError,
    UntrustedIssuerError,
    WrongTypeError,
)
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
from trustbridge.trust._jws import JwsFormatError, b64url_encode, parse_json

__all__ = [
    "PACKAGE_TYPE",
    "PROOF_TYPE",
    "OpenedPackage",
    "PackageRefusal",
    "make_package",
    "open_package",
]

PACKAGE_TYPE = "tb-presentations"
PROOF_TYPE = "tb-presentations+jwt"
#: The largest package read (64 presentations with x5c chains, and suppliers).
MAX_PACKAGE_BYTES = 4 * 1024 * 1024
#: At most this many presentations and suppliers per package (a package is read whole).
MAX_PRESENTATIONS = 64
MAX_SUPPLIERS = 16


def _numeric(value: datetime) -> int:
    return int(ensure_utc(value).timestamp())


def _digest(data: bytes) -> str:
    return b64url_encode(hashlib.sha256(data).digest())


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
    """Sign ``presentations`` (and ``suppliers``' packages, as text) for ``audience`` and
    ``nonce``; returns the package as JSON text."""
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
    shown = [p.strip() for p in presentations]
    nested = [_container(s, "a supplier package") for s in suppliers]
    payload = {
        "iss": issuer_id_for(organization),
        "aud": audience,
        "nonce": nonce,
        "iat": _numeric(issued_at),
        "presentations": [_digest(p.encode("ascii")) for p in shown],
        "suppliers": [_digest(canonical_json(n)) for n in nested],
    }
    header = {
        "typ": PROOF_TYPE,
        "x5c": x5c_encode(chain),
    }
    proof = sign_jws(header, canonical_json(payload), signer)
    document = {
        "type": PACKAGE_TYPE,
        "proof": proof,
        "presentations": shown,
        "suppliers": nested,
    }
    return canonical_json(document).decode("ascii")


def _container(package: str | Mapping[str, Any], source: str) -> dict[str, Any]:
    """A package's JSON object, its members checked (not its proof)."""
    if isinstance(package, str):
        if len(package) > MAX_PACKAGE_BYTES:
            raise MalformedCredentialError(f"larger than {MAX_PACKAGE_BYTES} bytes", source=source)
        try:
            data = parse_json(package.strip().encode("utf-8"))
        except JwsFormatError as exc:
            raise MalformedCredentialError(
                f"not a presentation package ({exc})", source=source
            ) from None
    else:
        data = dict(package)
    if not isinstance(data, dict) or data.get("type") != PACKAGE_TYPE:
        raise WrongTypeError(
            f"not a presentation package (type {PACKAGE_TYPE} expected)", source=source
        )
    if set(data) != {"type", "proof", "presentations", "suppliers"}:
        raise MalformedCredentialError(
            "a package has exactly the members type, proof, presentations, suppliers",
            source=source,
        )
    if not isinstance(data["proof"], str):
        raise MalformedCredentialError("the proof must be a compact JWS", source=source)
    presentations, suppliers = data["presentations"], data["suppliers"]
    if not isinstance(presentations, list) or not all(isinstance(p, str) for p in presentations):
        raise MalformedCredentialError("presentations must be a list of strings", source=source)
    if not isinstance(suppliers, list) or not all(isinstance(p, dict) for p in suppliers):
        raise MalformedCredentialError("suppliers must be a list of packages", source=source)
    if len(presentations) > MAX_PRESENTATIONS or len(suppliers) > MAX_SUPPLIERS:
        raise MalformedCredentialError(
            f"more than {MAX_PRESENTATIONS} presentations or {MAX_SUPPLIERS} suppliers",
            source=source,
        )
    return data


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
    package: str | Mapping[str, Any],
    *,
    verifier: CredentialVerifier,
    resolver: IssuerResolver,
    at: datetime,
    audience: str,
    nonce: str,
    max_depth: int = 2,
    params: VerificationParams | None = None,
    source: str = "package",
    _tree: set[str] | None = None,
) -> OpenedPackage:
    """Verify a package for ``audience`` and ``nonce``; raises :class:`CredentialError` when
    the package itself cannot be relied on (signature, identity, challenge)."""
    at = ensure_utc(at)
    params = params or verifier.params
    container = _container(package, source)
    jws, header, payload = decode_jwt(container["proof"], source=source)
    if header.get("typ") != PROOF_TYPE:
        typ = header.get("typ")
        raise WrongTypeError(f"the proof's typ is {typ!r}, expected {PROOF_TYPE}", source=source)
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
    # Each organization once in the whole tree: a supplier listed twice (or a loop back to
    # an ancestor) would count twice towards the policy's required number of suppliers.
    tree = set() if _tree is None else _tree
    if organization in tree:
        raise MalformedCredentialError(
            f"{organization} appears twice in the supplier tree", source=source
        )
    tree.add(organization)
    presentations: list[str] = container["presentations"]
    supplier_packages: list[dict[str, Any]] = container["suppliers"]
    # The proof signs the digests, in order: nothing added, dropped, reordered or changed.
    if payload.get("presentations") != [_digest(p.encode("utf-8")) for p in presentations] or (
        payload.get("suppliers") != [_digest(canonical_json(s)) for s in supplier_packages]
    ):
        raise TamperedCredentialError(
            "the presentations or supplier packages are not the ones the proof signs",
            source=source,
        )
    key: Any = leaf.public_key()  # verify_jws accepted it: a supported signature key
    holder = public_jwk(key)

    verdicts: list[Verdict] = []
    refused: list[PackageRefusal] = []
    sources: dict[str, str] = {}
    for index, presentation in enumerate(presentations, start=1):
        where = f"{source}: presentation {index}"
        try:
            verdict = verifier.verify(
                presentation, at=at, audience=audience, nonce=nonce, source=where
            )
        except CredentialError as exc:
            refused.append(PackageRefusal(where, _without(exc.message, where)))
            continue
        bound = verdict.holder_jwk or {}
        # RFC 7638's required members identify the key; the verifier proved possession of it.
        if any(bound.get(name) != value for name, value in holder.items()):
            refused.append(
                PackageRefusal(
                    where,
                    "the credential is bound to another key than the partner's organization "
                    "identity",
                    verdict.credential.id,
                )
            )
            continue
        if verdict.credential.id in sources:
            refused.append(
                PackageRefusal(where, "the same credential twice", verdict.credential.id)
            )
            continue
        sources[verdict.credential.id] = where
        verdicts.append(verdict)

    suppliers: list[OpenedPackage] = []
    for index, supplier in enumerate(supplier_packages, start=1):
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
                    _tree=tree,
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


def _without(message: str, prefix: str) -> str:
    return message[len(prefix) + 2 :] if message.startswith(f"{prefix}: ") else message
