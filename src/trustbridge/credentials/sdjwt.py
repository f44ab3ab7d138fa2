"""Selective Disclosure for JWTs (SD-JWT, RFC 9901), as SD-JWT VC uses it.

Generic over the claims: the issuer names the claims a holder may withhold by their
:data:`Path`; the holder presents a subset with a key-binding JWT; the verifier checks the
mechanics (issuer signature, disclosure digests, key binding) and reconstructs the payload.
What the claims mean (``typ``, ``vct``, validity) is the caller's to check.

A :data:`Path` addresses a claim in the claims as issued: ``("credentialSubject", "name")`` an
object member, ``("credentialSubject", "claims", 0)`` an array element. Array indices count
every element the issuer signed, withheld ones included, so a path names the same claim for
issuer, holder and verifier (decoys therefore go into ``_sd`` arrays only, never into arrays).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from trustbridge._canonical import canonical_json
from trustbridge.clock import ensure_utc
from trustbridge.credentials._jose import (
    decode_jwt,
    jwk_thumbprint,
    key_from_jwk,
    public_jwk,
    sign_jws,
    verify_jws,
)
from trustbridge.credentials.errors import (
    HolderBindingError,
    MalformedCredentialError,
    ReplayedPresentationError,
    TamperedCredentialError,
)
from trustbridge.errors import InputError
from trustbridge.pki.signers import Signer
from trustbridge.trust._jws import (
    CompactJws,
    JwsFormatError,
    b64url_decode,
    b64url_encode,
    parse_json,
)

__all__ = [
    "KB_JWT_TYP",
    "SD_ALG",
    "Disclosure",
    "Path",
    "SdJwtParts",
    "VerifiedSdJwt",
    "disclosable_paths",
    "issue_sd_jwt",
    "parse_sd_jwt",
    "present",
    "verify_key_binding",
    "verify_sd_jwt",
]

Path = tuple[str | int, ...]

#: The one hash algorithm for disclosure digests and ``sd_hash`` (RFC 9901 4.1.1).
SD_ALG = "sha-256"
#: The ``typ`` of a key-binding JWT (RFC 9901 4.3).
KB_JWT_TYP = "kb+jwt"

_SD = "_sd"
_ARRAY_ELEMENT = "..."
_SD_ALG_CLAIM = "_sd_alg"
#: RFC 9901 4.2.1/4.2.2: names a disclosure (and so a claim) must never have.
_RESERVED_NAMES = frozenset({_SD, _ARRAY_ELEMENT})
#: Top-level claims that must stay plain (SD-JWT VC 3.2.2.2, plus ``iat`` and ``_sd_alg``):
#: a holder must not be able to withhold them.
_PLAIN_TOP_LEVEL = frozenset(
    {_SD_ALG_CLAIM, "cnf", "iss", "iat", "nbf", "exp", "vct", "vct#integrity", "status"}
)
_MIN_SALT_BYTES = 16
_SD_JWT_CHARACTERS = re.compile(r"^[A-Za-z0-9_.~-]+$")


def _digest(data: str) -> str:
    """RFC 9901 4.2.3: base64url(SHA-256(ASCII(data)))."""
    return b64url_encode(hashlib.sha256(data.encode("ascii")).digest())


def _show(path: Path) -> str:
    return "/".join(str(step) for step in path) or "(top level)"


@dataclass(frozen=True)
class Disclosure:
    """One disclosure: ``[salt, name, value]`` for an object member, ``[salt, value]`` for an
    array element (RFC 9901 4.2.1, 4.2.2); equal when their encodings are."""

    encoded: str
    salt: str = field(compare=False)
    name: str | None = field(compare=False)
    value: Any = field(compare=False)
    digest: str = field(compare=False)

    @classmethod
    def create(cls, salt: str, name: str | None, value: Any) -> Disclosure:
        """A new disclosure of ``value`` (under ``name`` for an object member)."""
        content = [salt, value] if name is None else [salt, name, value]
        encoded = b64url_encode(canonical_json(content))
        return cls(encoded, salt, name, value, _digest(encoded))

    @classmethod
    def parse(cls, encoded: str, *, source: str = "") -> Disclosure:
        """Decode a disclosure strictly: a JSON array of 2 or 3, salt and name strings."""
        try:
            content = parse_json(b64url_decode(encoded))
        except JwsFormatError as exc:
            raise MalformedCredentialError(f"disclosure is {exc}", source=source) from None
        if not isinstance(content, list) or len(content) not in (2, 3):
            raise MalformedCredentialError(
                "a disclosure must be a JSON array of 2 or 3 elements", source=source
            )
        salt = content[0]
        if not isinstance(salt, str):
            raise MalformedCredentialError("a disclosure's salt must be a string", source=source)
        if len(content) == 2:
            return cls(encoded, salt, None, content[1], _digest(encoded))
        name = content[1]
        if not isinstance(name, str):
            raise MalformedCredentialError(
                "a disclosure's claim name must be a string", source=source
            )
        if name in _RESERVED_NAMES:
            raise MalformedCredentialError(
                f"a disclosure names the reserved claim {name!r}", source=source
            )
        return cls(encoded, salt, name, content[2], _digest(encoded))


@dataclass(frozen=True)
class SdJwtParts:
    """An SD-JWT split at ``~``: issuer-signed JWT, disclosures, optional key-binding JWT."""

    issuer_jwt: CompactJws
    disclosures: tuple[Disclosure, ...]
    kb_jwt: CompactJws | None

    @property
    def presented(self) -> str:
        """The SD-JWT without key binding: everything up to and including the last ``~``."""
        jwt = self.issuer_jwt
        return "".join(
            [f"{jwt.header}.{jwt.payload}.{jwt.signature}~"]
            + [f"{disclosure.encoded}~" for disclosure in self.disclosures]
        )


@dataclass(frozen=True)
class VerifiedSdJwt:
    """What :func:`verify_sd_jwt` established: the reconstructed payload and its provenance."""

    header: dict[str, Any]
    #: The payload with the disclosed claims in place and ``_sd``, ``_sd_alg`` and withheld
    #: array elements removed (RFC 9901 7.1 step 3).
    payload: dict[str, Any]
    disclosed: tuple[Path, ...]
    holder_jwk: dict[str, Any] | None
    key_binding: dict[str, Any] | None


def parse_sd_jwt(text: str, *, source: str = "") -> SdJwtParts:
    """Split ``<issuer-jwt>~<disclosure>~...~[<kb-jwt>]`` strictly (RFC 9901 4)."""
    text = text.strip()
    if not _SD_JWT_CHARACTERS.match(text):
        raise MalformedCredentialError(
            "an SD-JWT holds only base64url, '.' and '~' characters", source=source
        )
    parts = text.split("~")
    if len(parts) < 2:
        raise MalformedCredentialError(
            "not an SD-JWT: no '~' after the issuer-signed JWT", source=source
        )
    issuer_jwt = _compact(parts[0], "issuer-signed JWT", source)
    disclosures = []
    for index, encoded in enumerate(parts[1:-1]):
        if not encoded:
            raise MalformedCredentialError(f"disclosure {index} is empty", source=source)
        disclosures.append(Disclosure.parse(encoded, source=source))
    kb_jwt = _compact(parts[-1], "key-binding JWT", source) if parts[-1] else None
    return SdJwtParts(issuer_jwt, tuple(disclosures), kb_jwt)


def _compact(text: str, what: str, source: str) -> CompactJws:
    try:
        return CompactJws.parse(text.encode("ascii"))
    except JwsFormatError as exc:
        raise MalformedCredentialError(f"the {what} is not a JWS: {exc}", source=source) from None


# -- issuance --------------------------------------------------------------------------------


def _check_claims(value: Any, path: Path) -> None:
    """Refuse what is no JSON or uses a name RFC 9901 reserves."""
    if isinstance(value, Mapping):
        for name, member in value.items():
            if not isinstance(name, str):
                raise InputError(f"claim {_show(path)} has a member name that is not a string")
            if name in _RESERVED_NAMES or (not path and name == _SD_ALG_CLAIM):
                raise InputError(f"claim name {name!r} at {_show(path)} is reserved by SD-JWT")
            _check_claims(member, (*path, name))
    elif isinstance(value, list | tuple):
        for index, element in enumerate(value):
            _check_claims(element, (*path, index))
    elif isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"claim {_show(path)} is {value}, which JSON cannot hold")
    elif value is not None and not isinstance(value, str | int | float):
        raise InputError(f"claim {_show(path)} is a {type(value).__name__}, not a JSON value")


def _check_path(claims: Mapping[str, Any], path: Path) -> None:
    if not path:
        raise InputError("the empty path names the whole payload, which cannot be disclosable")
    if path[0] in _PLAIN_TOP_LEVEL:
        raise InputError(
            f"claim {path[0]!r} must stay plain (SD-JWT VC): it cannot be selectively disclosable"
        )
    node: Any = claims
    for depth, step in enumerate(path):
        where = _show(path[: depth + 1])
        if isinstance(step, str) and isinstance(node, Mapping):
            if step not in node:
                raise InputError(f"disclosable path {_show(path)}: no claim {where}")
            node = node[step]
        elif (
            isinstance(step, int) and not isinstance(step, bool) and isinstance(node, list | tuple)
        ):
            if not 0 <= step < len(node):
                raise InputError(f"disclosable path {_show(path)}: no array element {where}")
            node = node[step]
        else:
            raise InputError(
                f"disclosable path {_show(path)}: step {step!r} does not fit the claim at {where}"
            )


@dataclass
class _Issuance:
    disclosable: frozenset[Path]
    salt: Callable[[], bytes]
    decoys: int
    disclosures: list[Disclosure] = field(default_factory=list)

    def fresh_salt(self) -> str:
        data = self.salt()
        if len(data) < _MIN_SALT_BYTES:
            # RFC 9901 9.3: at least 128 bits of salt
            raise InputError(f"a salt of {len(data)} bytes is too short; use at least 16")
        return b64url_encode(data)

    def disclose(self, name: str | None, value: Any) -> str:
        disclosure = Disclosure.create(self.fresh_salt(), name, value)
        self.disclosures.append(disclosure)
        return disclosure.digest

    def value(self, value: Any, path: Path) -> Any:
        # the inner disclosable claims become disclosures before the value that holds them
        if isinstance(value, Mapping):
            return self.object(value, path)
        if isinstance(value, list | tuple):
            return self.array(value, path)
        return value

    def object(self, claims: Mapping[str, Any], path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        digests: list[str] = []
        for name, member in claims.items():
            processed = self.value(member, (*path, name))
            if (*path, name) in self.disclosable:
                # RFC 9901 4.2.4.1: the member is replaced by a digest in _sd
                digests.append(self.disclose(name, processed))
            else:
                result[name] = processed
        if digests:
            # RFC 9901 4.2.5: decoy digests hide how many claims are disclosable
            digests += [_digest(self.fresh_salt()) for _ in range(self.decoys)]
            # RFC 9901 4.2.4.1: sorted, so the order does not reveal the claims
            result[_SD] = sorted(digests)
        return result

    def array(self, elements: Iterable[Any], path: Path) -> list[Any]:
        result = []
        for index, element in enumerate(elements):
            processed = self.value(element, (*path, index))
            if (*path, index) in self.disclosable:
                # RFC 9901 4.2.4.2: the element is replaced by {"...": digest}
                result.append({_ARRAY_ELEMENT: self.disclose(None, processed)})
            else:
                result.append(processed)
        return result


def _random_salt() -> bytes:
    return secrets.token_bytes(_MIN_SALT_BYTES)


def issue_sd_jwt(
    claims: Mapping[str, Any],
    *,
    disclosable: Iterable[Path],
    signer: Signer,
    header: Mapping[str, Any],
    holder_jwk: Mapping[str, Any] | None = None,
    salt: Callable[[], bytes] = _random_salt,
    decoys: int = 0,
) -> str:
    """Issue ``claims`` as ``<issuer-jwt>~<disclosure>~...~`` with the ``disclosable`` paths
    selectively disclosable, bound to ``holder_jwk`` (``cnf.jwk``) when given.

    ``header`` carries ``typ``, ``x5c`` and the like; ``alg`` follows the signer's key.
    ``decoys`` decoy digests are added to every ``_sd`` array.
    """
    _check_claims(claims, ())
    if decoys < 0:
        raise InputError(f"the number of decoy digests cannot be negative ({decoys})")
    paths = frozenset(tuple(path) for path in disclosable)
    for path in sorted(paths, key=str):
        _check_path(claims, path)
    payload_claims = dict(claims)
    if holder_jwk is not None:
        if "cnf" in claims:
            raise InputError("claims carry a cnf already; give the holder key in one place only")
        try:
            key_from_jwk(holder_jwk)
        except MalformedCredentialError as exc:
            raise InputError(f"holder key: {exc.message}") from None
        payload_claims["cnf"] = {"jwk": dict(holder_jwk)}
    issuance = _Issuance(paths, salt, decoys)
    payload = issuance.object(payload_claims, ())
    payload[_SD_ALG_CLAIM] = SD_ALG
    jwt = sign_jws(header, canonical_json(payload), signer)
    return "".join([f"{jwt}~"] + [f"{d.encoded}~" for d in issuance.disclosures])


# -- reconstruction --------------------------------------------------------------------------


@dataclass
class _Reconstruction:
    """RFC 9901 7.1 step 3: substitute disclosures for the digests that reference them."""

    by_digest: Mapping[str, Disclosure]
    keep: Callable[[Path], bool]
    source: str
    seen: set[str] = field(default_factory=set)
    used: list[Disclosure] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    def see(self, digest: str) -> None:
        # RFC 9901 7.1 step 3.4: no digest may appear twice, directly or via disclosures
        if digest in self.seen:
            raise TamperedCredentialError(
                f"digest {digest} appears more than once in the SD-JWT", source=self.source
            )
        self.seen.add(digest)

    def value(self, value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            return self.object(value, path)
        if isinstance(value, list):
            return self.array(value, path)
        return value

    def object(self, claims: dict[str, Any], path: Path) -> dict[str, Any]:
        # RFC 9901 7.1 step 3.5: _sd is removed; plain members stay
        result = {name: self.value(v, (*path, name)) for name, v in claims.items() if name != _SD}
        digests = claims.get(_SD, [])
        if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
            raise MalformedCredentialError(
                f"_sd at {_show(path)} is not an array of digest strings", source=self.source
            )
        for digest in digests:
            self.see(digest)
            disclosure = self.by_digest.get(digest)
            if disclosure is None:
                continue  # RFC 9901 7.1 step 3.2.1: withheld or a decoy
            if disclosure.name is None:
                # RFC 9901 7.1 step 3.2.2.1
                raise TamperedCredentialError(
                    f"an array-element disclosure is referenced from _sd at {_show(path)}",
                    source=self.source,
                )
            if disclosure.name in result or disclosure.name == _SD:
                # RFC 9901 7.1 step 3.2.2.3
                raise TamperedCredentialError(
                    f"disclosed claim {disclosure.name!r} exists already at {_show(path)}",
                    source=self.source,
                )
            if not path and disclosure.name in _PLAIN_TOP_LEVEL:
                raise MalformedCredentialError(
                    f"claim {disclosure.name!r} is selectively disclosable but must be plain",
                    source=self.source,
                )
            member_path = (*path, disclosure.name)
            if self.keep(member_path):
                self.used.append(disclosure)
                self.paths.append(member_path)
                result[disclosure.name] = self.value(disclosure.value, member_path)
        return result

    def array(self, elements: list[Any], path: Path) -> list[Any]:
        result = []
        for index, element in enumerate(elements):
            element_path = (*path, index)
            if not (isinstance(element, dict) and set(element) == {_ARRAY_ELEMENT}):
                result.append(self.value(element, element_path))
                continue
            digest = element[_ARRAY_ELEMENT]
            if not isinstance(digest, str):
                raise MalformedCredentialError(
                    f"array element {_show(element_path)} holds a '...' that is not a digest",
                    source=self.source,
                )
            self.see(digest)
            disclosure = self.by_digest.get(digest)
            if disclosure is None:
                continue  # RFC 9901 7.1 step 3.3: withheld elements are removed
            if disclosure.name is not None:
                # RFC 9901 7.1 step 3.2.3.1
                raise TamperedCredentialError(
                    f"an object-member disclosure is referenced as array element "
                    f"{_show(element_path)}",
                    source=self.source,
                )
            if self.keep(element_path):
                self.used.append(disclosure)
                self.paths.append(element_path)
                result.append(self.value(disclosure.value, element_path))
        return result


def _index(parts: SdJwtParts, source: str) -> dict[str, Disclosure]:
    by_digest: dict[str, Disclosure] = {}
    for disclosure in parts.disclosures:
        if disclosure.digest in by_digest:
            raise TamperedCredentialError(
                f"disclosure {disclosure.digest} is presented twice", source=source
            )
        by_digest[disclosure.digest] = disclosure
    return by_digest


def _reconstruct(
    payload: dict[str, Any],
    parts: SdJwtParts,
    keep: Callable[[Path], bool],
    source: str,
    *,
    complete: bool = True,
) -> tuple[dict[str, Any], _Reconstruction]:
    """The payload with the kept disclosures in place.

    With ``complete``, every disclosure of ``parts`` must be referenced (RFC 9901 7.1 step 3.5).
    """
    sd_alg = payload.get(_SD_ALG_CLAIM, SD_ALG)
    if sd_alg != SD_ALG:
        # RFC 9901 4.1.1: we support the one algorithm every implementation must
        raise MalformedCredentialError(
            f"_sd_alg {sd_alg!r} is not supported (only {SD_ALG})", source=source
        )
    walk = _Reconstruction(_index(parts, source), keep, source)
    result = walk.object(payload, ())
    result.pop(_SD_ALG_CLAIM, None)
    if not complete:
        return result, walk
    # RFC 9901 7.1 step 3.5: every disclosure must be referenced by a digest
    stray = [d for d in parts.disclosures if d.digest not in walk.seen]
    if stray:
        raise TamperedCredentialError(
            f"{len(stray)} disclosure(s) are not referenced by the issuer-signed JWT "
            f"(first: {stray[0].digest})",
            source=source,
        )
    return result, walk


def disclosable_paths(text: str, *, source: str = "") -> list[Path]:
    """The paths a holder of this SD-JWT may choose to disclose, in document order."""
    parts = parse_sd_jwt(text, source=source)
    _, _, payload = decode_jwt(_jwt_text(parts.issuer_jwt), source=source)
    _, walk = _reconstruct(payload, parts, lambda path: True, source)
    return walk.paths


def _jwt_text(jws: CompactJws) -> str:
    return f"{jws.header}.{jws.payload}.{jws.signature}"


def _holder_jwk(payload: Mapping[str, Any], source: str) -> dict[str, Any] | None:
    """The ``cnf.jwk`` of the issuer-signed payload, validated; None without ``cnf``."""
    cnf = payload.get("cnf")
    if cnf is None:
        return None
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        raise HolderBindingError("cnf does not hold a jwk object", source=source)
    jwk: dict[str, Any] = cnf["jwk"]
    try:
        key_from_jwk(jwk)
    except MalformedCredentialError as exc:
        raise HolderBindingError(f"cnf.jwk: {exc.message}", source=source) from None
    return jwk


# -- presentation ----------------------------------------------------------------------------


def present(
    sd_jwt: str,
    *,
    disclose: Callable[[Path], bool] | Collection[Path],
    holder: Signer,
    audience: str,
    nonce: str,
    issued_at: datetime,
) -> str:
    """Present ``sd_jwt`` with only the chosen disclosures and a key-binding JWT.

    A nested disclosure is presented only if the claim holding it is plain or presented too.
    A collection of paths must name disclosable claims only.
    """
    parts = parse_sd_jwt(sd_jwt)
    if parts.kb_jwt is not None:
        raise InputError("this SD-JWT is a presentation already (it ends in a key-binding JWT)")
    _, _, payload = decode_jwt(_jwt_text(parts.issuer_jwt), source="SD-JWT")
    _, everything = _reconstruct(payload, parts, lambda path: True, "SD-JWT")
    if callable(disclose):
        keep = disclose
    else:
        chosen = frozenset(tuple(path) for path in disclose)
        unknown = chosen - set(everything.paths)
        if unknown:
            shown = ", ".join(sorted(_show(path) for path in unknown))
            raise InputError(f"not selectively disclosable in this SD-JWT: {shown}")
        keep = chosen.__contains__
    _, selection = _reconstruct(payload, parts, keep, "SD-JWT", complete=False)
    cnf = _holder_jwk(payload, "SD-JWT")
    if cnf is None:
        raise InputError("the SD-JWT binds no holder key (cnf.jwk): key binding proves nothing")
    if jwk_thumbprint(cnf) != jwk_thumbprint(public_jwk(holder.public_key)):
        raise InputError(f"the SD-JWT is bound to another key than {holder.description}'s")
    kept = {disclosure.digest for disclosure in selection.used}
    presented = SdJwtParts(
        parts.issuer_jwt, tuple(d for d in parts.disclosures if d.digest in kept), None
    ).presented
    # RFC 9901 4.3: the KB-JWT binds audience, nonce, time and the presented SD-JWT
    kb_payload = {
        "iat": int(ensure_utc(issued_at).timestamp()),
        "aud": audience,
        "nonce": nonce,
        "sd_hash": _digest(presented),
    }
    return presented + sign_jws({"typ": KB_JWT_TYP}, canonical_json(kb_payload), holder)


# -- verification ----------------------------------------------------------------------------


def verify_sd_jwt(
    text: str,
    *,
    issuer_key: CertificatePublicKeyTypes,
    at: datetime,
    audience: str | None,
    nonce: str | None,
    require_key_binding: bool = True,
    max_kb_age: timedelta = timedelta(minutes=5),
    skew: timedelta = timedelta(minutes=1),
    source: str = "",
) -> VerifiedSdJwt:
    """Verify the mechanics of an SD-JWT (RFC 9901 7.1, 7.3) and reconstruct its payload.

    Checks the issuer's signature, every disclosure against the signed digests and, when
    present or required, the key binding: signed by ``cnf.jwk``, for ``audience`` and
    ``nonce``, issued within ``max_kb_age`` before ``at``, over exactly this presentation.
    ``typ``, ``vct`` and the validity period of the issuer JWT are the caller's to check.
    """
    at = ensure_utc(at)
    parts = parse_sd_jwt(text, source=source)
    jws, header, payload = decode_jwt(_jwt_text(parts.issuer_jwt), source=source)
    # RFC 9901 7.1 step 2: the issuer's signature, before anything in the payload is used
    verify_jws(jws, issuer_key, source=source)
    reconstructed, walk = _reconstruct(payload, parts, lambda path: True, source)
    holder_jwk = _holder_jwk(payload, source)
    key_binding = None
    if parts.kb_jwt is not None or require_key_binding:
        key_binding = _verify_key_binding(
            parts,
            holder_jwk,
            at=at,
            audience=audience,
            nonce=nonce,
            required=require_key_binding,
            max_age=max_kb_age,
            skew=skew,
            source=source,
        )
    return VerifiedSdJwt(header, reconstructed, tuple(walk.paths), holder_jwk, key_binding)


def verify_key_binding(
    text: str,
    holder_jwk: dict[str, Any] | None,
    *,
    at: datetime,
    audience: str,
    nonce: str,
    max_kb_age: timedelta = timedelta(minutes=5),
    skew: timedelta = timedelta(minutes=1),
    source: str = "",
) -> dict[str, Any]:
    """Only the key binding of a presentation whose issuer part :func:`verify_sd_jwt` verified
    already (``holder_jwk``: its ``cnf.jwk``); returns the key-binding JWT's payload."""
    return _verify_key_binding(
        parse_sd_jwt(text, source=source),
        holder_jwk,
        at=ensure_utc(at),
        audience=audience,
        nonce=nonce,
        required=True,
        max_age=max_kb_age,
        skew=skew,
        source=source,
    )


def _verify_key_binding(
    parts: SdJwtParts,
    holder_jwk: dict[str, Any] | None,
    *,
    at: datetime,
    audience: str | None,
    nonce: str | None,
    required: bool,
    max_age: timedelta,
    skew: timedelta,
    source: str,
) -> dict[str, Any]:
    """RFC 9901 7.3 step 5: the key-binding JWT."""
    if required and (audience is None or nonce is None):
        raise InputError("verifying key binding needs the expected audience and nonce")
    if parts.kb_jwt is None:
        raise HolderBindingError("the presentation has no key-binding JWT", source=source)
    if holder_jwk is None:
        raise HolderBindingError(
            "the credential binds no holder key (cnf.jwk), so key binding cannot be checked",
            source=source,
        )
    jws, header, payload = decode_jwt(_jwt_text(parts.kb_jwt), source=source)
    if header.get("typ") != KB_JWT_TYP:
        raise HolderBindingError(
            f"key-binding JWT typ is {header.get('typ')!r}, not {KB_JWT_TYP!r}", source=source
        )
    try:
        verify_jws(jws, key_from_jwk(holder_jwk), source=source)
    except TamperedCredentialError as exc:
        raise HolderBindingError(
            f"key-binding JWT is not signed by the holder key: {exc.message}", source=source
        ) from None
    iat = payload.get("iat")
    for name in ("aud", "nonce", "sd_hash"):
        if not isinstance(payload.get(name), str):
            raise MalformedCredentialError(
                f"key-binding JWT lacks a string {name!r}", source=source
            )
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise MalformedCredentialError("key-binding JWT lacks an integer 'iat'", source=source)
    # RFC 9901 7.3 step 5.5: sd_hash covers the issuer JWT and exactly the presented disclosures
    if payload["sd_hash"] != _digest(parts.presented):
        raise TamperedCredentialError(
            "key-binding JWT sd_hash does not match the presented disclosures", source=source
        )
    if audience is not None and payload["aud"] != audience:
        raise ReplayedPresentationError(
            f"presentation is for audience {payload['aud']!r}, not {audience!r}", source=source
        )
    if nonce is not None and payload["nonce"] != nonce:
        raise ReplayedPresentationError("presentation carries another nonce", source=source)
    try:
        issued = datetime.fromtimestamp(iat, tz=at.tzinfo)
    except (OverflowError, OSError, ValueError):
        raise MalformedCredentialError(
            f"key-binding JWT iat {iat} is no time", source=source
        ) from None
    if issued > at + skew:
        raise ReplayedPresentationError(
            f"key-binding JWT issued at {issued.isoformat()}, in the future", source=source
        )
    if at - issued > max_age:
        raise ReplayedPresentationError(
            f"key-binding JWT issued at {issued.isoformat()} is older than {max_age}",
            source=source,
        )
    return payload
