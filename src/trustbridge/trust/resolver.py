"""The trust resolver: is this identity trusted, by which route, and at which reference level?

Two routes, one answer:

- **bridge** (and the relying party's own scheme): a path from the relying party's own roots
  through cross-certificates, validated per RFC 5280 with the relying party's levels as the
  initial policy set. The levels come from policy processing: the holder's level is the policy
  on its certificate, the relying party's equivalent is the policy it maps to in the anchor's
  domain, and the reference level is the policy the path passes through in the group's
  reference scheme (the bridge's domain).
- **trust list**: a path to a CA service that a trust list recognizes (granted at the time),
  that list being one the LOTL points to. The holder's level is a level the service may issue
  and the certificate asserts; the reference level comes from the LOTL's equivalence table,
  and the relying party's equivalent is its own level with the same reference level.

Both routes are tried. Where both validate and their reference levels differ, the result says
so and takes the lower one. Results are cached until the earliest of: a path certificate's
expiry, the next update of the CRLs the path was validated with, the next update of a list;
and the cache is keyed on the trust configuration, so a new list invalidates it.
"""

from __future__ import annotations

import enum
import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from trustbridge.clock import ensure_utc
from trustbridge.errors import ValidationError
from trustbridge.pki.cross import policy_mappings_of
from trustbridge.trust.lists import Lotl, ServiceKind, TrustList, recognized
from trustbridge.trust.paths import (
    CertificatePool,
    Fetcher,
    FoundPath,
    PathBuilder,
    SearchLimits,
)
from trustbridge.trust.schemes import AssuranceLevel, TrustScheme
from trustbridge.trust.validation import RevocationMode, ValidationParams, ValidPolicy

__all__ = [
    "InsufficientLevelError",
    "Level",
    "Resolution",
    "Route",
    "RouteOutcome",
    "TrustConfig",
    "TrustResolver",
    "UntrustedError",
]

_SHA256 = hashes.SHA256()


class Route(enum.StrEnum):
    """How an identity was found trustworthy."""

    #: A path from the relying party's own roots within its own scheme (no mapping).
    OWN_SCHEME = "own-scheme"
    #: A path through cross-certificates (bridge or bilateral), levels by policy mapping.
    BRIDGE = "bridge"
    #: A CA service recognized by a trust list the LOTL points to, levels by equivalence.
    TRUST_LIST = "trust-list"


@dataclass(frozen=True)
class Level:
    """An assurance level named by its scheme: ``jp/jp-level3`` (rank 3 of that scheme)."""

    scheme: str
    name: str
    oid: str
    rank: int

    def __str__(self) -> str:
        return f"{self.scheme}/{self.name}"

    @classmethod
    def of(cls, scheme: TrustScheme, level: AssuranceLevel) -> Level:
        return cls(scheme.code, level.name, level.oid.dotted_string, level.rank)


@dataclass(frozen=True)
class TrustConfig:
    """A relying party's trust: its scheme, its own roots, the LOTL and the lists it accepted.

    Lists must have been read (signature, signer, freshness, rollback) before they are put here:
    the resolver only uses what they say.
    """

    scheme: TrustScheme
    anchors: tuple[x509.Certificate, ...] = ()
    lotl: Lotl | None = None
    trust_lists: tuple[TrustList, ...] = ()
    #: The group's reference scheme (``itg``); the LOTL's group where not given.
    reference: TrustScheme | None = None
    #: Further schemes whose level names the resolver may use (partners' schemes); the own
    #: scheme, the reference scheme and the lists' schemes are known anyway.
    known_schemes: tuple[TrustScheme, ...] = ()

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever anything the resolver decides on changes (computed once)."""
        digest = hashlib.sha256()
        digest.update(repr(self.scheme).encode())
        for anchor in self.anchors:
            digest.update(anchor.fingerprint(_SHA256))
        if self.lotl is not None:
            digest.update(f"lotl:{self.lotl.group.code}:{self.lotl.sequence}".encode())
        for trust_list in self.trust_lists:
            digest.update(f"list:{trust_list.id}:{trust_list.sequence}".encode())
        for scheme in (self.reference, *self.known_schemes):
            digest.update(repr(scheme).encode())
        return digest.hexdigest()

    @property
    def reference_scheme(self) -> TrustScheme | None:
        return self.reference or (self.lotl.group if self.lotl is not None else None)

    def schemes(self) -> list[TrustScheme]:
        found = [self.scheme, *self.known_schemes, *(t.scheme for t in self.trust_lists)]
        if self.reference_scheme is not None:
            found.append(self.reference_scheme)
        return found


@dataclass(frozen=True)
class RouteOutcome:
    """What one route said: its reference level, or why it did not validate."""

    route: Route
    reference_level: Level | None = None
    error: str | None = None


@dataclass(frozen=True)
class Resolution:
    """A trusted identity: the route, the path, the three levels, and why."""

    route: Route
    #: Trust anchor first, the identity last.
    path: tuple[x509.Certificate, ...]
    #: The holder's level in its own scheme (the policy on its certificate).
    holder_level: Level
    #: The equivalent level in the relying party's own scheme, where one exists.
    own_level: Level | None
    #: The group's reference level.
    reference_level: Level | None
    reasons: tuple[str, ...]
    #: What every route tried said (the chosen one included).
    routes: tuple[RouteOutcome, ...]
    #: Set where the two routes gave different reference levels (the lower one is used).
    disagreement: str | None
    #: The revocation information the path was validated with (CRLs, DER).
    revocation: str
    #: The validation time this answer was computed for.
    validated_at: datetime
    #: Until when this answer holds (earliest expiry, CRL or list update).
    valid_until: datetime

    @property
    def holder(self) -> str:
        return self.path[-1].subject.rfc4514_string()


class UntrustedError(ValidationError):
    """No route validated; ``routes`` says why for each."""

    def __init__(self, message: str, *, routes: Sequence[RouteOutcome], hint: str | None = None):
        super().__init__(message, hint=hint)
        self.routes = tuple(routes)


class InsufficientLevelError(ValidationError):
    """The identity is trusted, but below the minimum reference level asked for."""

    def __init__(self, message: str, *, resolution: Resolution) -> None:
        super().__init__(message, hint="ask for a lower --level, or a better identity")
        self.resolution = resolution


@dataclass(frozen=True)
class _Attempt:
    route: Route
    found: FoundPath
    holder: Level
    own: Level | None
    reference: Level | None
    reasons: tuple[str, ...]
    valid_until: datetime


@dataclass
class TrustResolver:
    """Resolves identities against one relying party's :class:`TrustConfig`."""

    config: TrustConfig
    fetcher: Fetcher | None = None
    pool: Sequence[x509.Certificate] = ()
    limits: SearchLimits = field(default_factory=SearchLimits)
    revocation: RevocationMode = RevocationMode.REQUIRE
    cache: bool = True
    #: Validate at a past ``at`` with the revocation information of now (see
    #: :attr:`ValidationParams.retroactive_revocation`): for statements logged in the past.
    retroactive_revocation: bool = False
    _cache: dict[tuple[str, ...], Resolution] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- levels ------------------------------------------------------------------------------

    def _level(self, oid: str) -> Level | None:
        target = x509.ObjectIdentifier(oid)
        for scheme in self.config.schemes():
            level = scheme.level_by_oid(target)
            if level is not None:
                return Level.of(scheme, level)
        return None

    def _is_reference(self, oid: str) -> Level | None:
        scheme = self.config.reference_scheme
        level = scheme.level_by_oid(x509.ObjectIdentifier(oid)) if scheme else None
        return Level.of(scheme, level) if scheme is not None and level is not None else None

    def _reference_by_equivalence(self, level: Level) -> Level | None:
        lotl = self.config.lotl
        if lotl is None:
            return None
        found = lotl.reference_level(level.scheme, level.oid)
        return Level.of(lotl.group, found) if found is not None else None

    def _own_for_reference(self, reference: Level) -> Level | None:
        """The relying party's highest level whose reference level is at most ``reference``."""
        lotl = self.config.lotl
        own = self.config.scheme
        if lotl is None:
            return None
        best: Level | None = None
        for level in own.levels:
            ref = lotl.reference_level(own.code, level.oid)
            fits = ref is not None and ref.rank <= reference.rank
            if fits and (best is None or level.rank > best.rank):
                best = Level.of(own, level)
        return best

    # -- routes ------------------------------------------------------------------------------

    def _params(
        self, at: datetime, policies: Iterable[str], crls: Sequence[bytes]
    ) -> ValidationParams:
        return ValidationParams(
            at=at,
            acceptable_policies=frozenset(policies),
            require_explicit_policy=True,
            revocation=self.revocation,
            crls=tuple(crls),
            retroactive_revocation=self.retroactive_revocation,
        )

    def _builder(
        self, anchors: Sequence[x509.Certificate], extra: Sequence[x509.Certificate]
    ) -> PathBuilder:
        return PathBuilder(
            anchors=anchors,
            pool=CertificatePool([*self.pool, *extra]),
            fetcher=self.fetcher,
            limits=self.limits,
        )

    def _bridge(
        self,
        leaf: x509.Certificate,
        extra: Sequence[x509.Certificate],
        at: datetime,
        crls: Sequence[bytes],
    ) -> _Attempt:
        own = self.config.scheme
        if not self.config.anchors:
            raise ValidationError("the relying party has no roots of its own to start a path from")
        params = self._params(at, (lv.oid.dotted_string for lv in own.levels), crls)
        found = self._builder(self.config.anchors, extra).find(leaf, params)
        best = self._best_policy(found.path.policies)
        own_level = self._level(best.user_domain)
        # A foreign scheme the relying party has no definition of: the level is its OID.
        holder = self._level(best.issuer_domain) or Level(
            "?", best.issuer_domain, best.issuer_domain, 0
        )
        mapped = any(policy_mappings_of(c) for c in found.path.certificates[1:])
        route = Route.BRIDGE if mapped or holder.scheme != own.code else Route.OWN_SCHEME
        reference = self._reference_along(found.path.certificates, best.user_domain)
        reasons = [
            f"path of {len(found.path.certificates)} certificates from own root "
            f"{found.path.certificates[0].subject.rfc4514_string()}",
            f"policy processing maps {holder} on the certificate to {own_level} of the relying "
            "party"
            if own_level
            else f"{holder} on the certificate",
        ]
        if reference is None and own_level is not None:
            reference = self._reference_by_equivalence(own_level)
            if reference is not None:
                reasons.append(f"reference level {reference} from the LOTL's table for {own_level}")
        elif reference is not None:
            reasons.append(f"the path passes the reference domain at {reference}")
        return _Attempt(
            route, found, holder, own_level, reference, tuple(reasons), self._until(found, at)
        )

    def _best_policy(self, policies: Iterable[ValidPolicy]) -> ValidPolicy:
        ranked = sorted(
            policies,
            key=lambda p: (self._level(p.user_domain) or Level("", "", "", 0)).rank,
            reverse=True,
        )
        if not ranked:
            raise ValidationError("the path is valid for no assurance level of the relying party")
        return ranked[0]

    def _reference_along(self, path: Sequence[x509.Certificate], user_policy: str) -> Level | None:
        """Follow ``user_policy`` through the path's mappings; the first reference level met."""
        current = {user_policy}
        found = self._is_reference(user_policy)
        for certificate in path[1:]:
            if found is not None:
                return found
            mappings = policy_mappings_of(certificate)
            if mappings:
                mapped = {
                    m.subject_domain.dotted_string
                    for m in mappings
                    if m.issuer_domain.dotted_string in current
                }
                unmapped = current - {m.issuer_domain.dotted_string for m in mappings}
                current = mapped | unmapped
            for oid in current:
                found = found or self._is_reference(oid)
        return found

    def _trust_list(
        self,
        leaf: x509.Certificate,
        extra: Sequence[x509.Certificate],
        at: datetime,
        crls: Sequence[bytes],
    ) -> _Attempt:
        lotl = self.config.lotl
        if lotl is None:
            raise ValidationError("the relying party has accepted no LOTL")
        lists = [t for t in self.config.trust_lists if lotl.pointer(t.scheme.code) is not None]
        if not lists:
            raise ValidationError(f"no accepted trust list is one {lotl.name} points to")
        services: list[x509.Certificate] = []
        for trust_list in lists:
            for provider in trust_list.providers:
                for service in provider.services:
                    if service.kind is ServiceKind.CA:
                        services += [
                            c
                            for c in service.certificates
                            if recognized(trust_list, c, kind=ServiceKind.CA, at=at)
                        ]
        if not services:
            raise ValidationError("no CA service is granted in the accepted trust lists")
        # The path is validated from the self-signed root above each listed CA (found through
        # AIA), so that the CA's own CRLs can be checked; the list must name a CA on the path.
        builder = self._builder(services, extra)
        anchors: dict[bytes, x509.Certificate] = {}
        for service_certificate in services:
            top = builder.chain_up(service_certificate)[-1]
            anchor = top if top.subject == top.issuer else service_certificate
            anchors[anchor.fingerprint(_SHA256)] = anchor
        found = self._builder(list(anchors.values()), extra).find(leaf, self._params(at, (), crls))
        listed = [
            (t, m, c)
            for c in found.path.certificates[:-1]
            for t in lists
            if (m := recognized(t, c, kind=ServiceKind.CA, at=at)) is not None
        ]
        if not listed:
            raise ValidationError(
                f"the path from {found.path.certificates[0].subject.rfc4514_string()} passes "
                "no CA that an accepted trust list grants"
            )
        # The listed CA nearest to the identity is the one that vouches for its level.
        trust_list, match, _ = listed[-1]
        offered = {lv.oid.dotted_string: lv for lv in match.service.levels}
        candidates = [
            offered[p.issuer_domain] for p in found.path.policies if p.issuer_domain in offered
        ]
        if not candidates:
            raise ValidationError(
                f"the certificate asserts no level that {match.service.name} is listed for "
                f"in {trust_list.name}"
            )
        level = max(candidates, key=lambda lv: lv.rank)
        holder = Level.of(trust_list.scheme, level)
        reference = self._reference_by_equivalence(holder)
        own = self._own_for_reference(reference) if reference is not None else None
        reasons = (
            f"issued under {match.service.name} of {match.provider.name}, granted in "
            f"{trust_list.name}",
            f"{lotl.name} maps {holder} to {reference}"
            if reference
            else f"{lotl.name} has no equivalence for {holder}",
        )
        until = min(self._until(found, at), trust_list.next_update, lotl.next_update)
        return _Attempt(Route.TRUST_LIST, found, holder, own, reference, reasons, until)

    @staticmethod
    def _until(found: FoundPath, at: datetime) -> datetime:
        times = [c.not_valid_after_utc for c in found.path.certificates]
        for der in found.crls:
            try:
                crl = x509.load_der_x509_crl(der)
            except ValueError:
                continue
            if crl.next_update_utc is not None and crl.next_update_utc > at:
                times.append(crl.next_update_utc)
        return min(times)

    # -- resolve -----------------------------------------------------------------------------

    def resolve(
        self,
        certificate: x509.Certificate,
        *,
        at: datetime,
        extra: Sequence[x509.Certificate] = (),
        crls: Sequence[bytes] = (),
        min_level: str | None = None,
    ) -> Resolution:
        """Resolve ``certificate``; raise :class:`UntrustedError` or
        :class:`InsufficientLevelError` (``min_level``: a reference level name, a minimum)."""
        at = ensure_utc(at)
        if not self.cache:
            resolution = self._resolve(certificate, at, extra, crls)
        else:
            key = (
                self.config.fingerprint,
                certificate.fingerprint(_SHA256).hex(),
                *sorted(c.fingerprint(_SHA256).hex() for c in extra),
                *sorted(hashlib.sha256(c).hexdigest() for c in crls),
                self.revocation.value,
                str(self.retroactive_revocation),
            )
            cached = self._cached(key, at)
            if cached is None:
                cached = self._resolve(certificate, at, extra, crls)
                with self._lock:
                    self._cache[key] = cached
            resolution = cached
        if min_level is not None:
            self._check_minimum(resolution, min_level)
        return resolution

    def _cached(self, key: tuple[str, ...], at: datetime) -> Resolution | None:
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            return None
        # Valid from when it was computed until the earliest expiry or update it depends on.
        if not hit.validated_at <= at < hit.valid_until:
            return None
        return hit

    def _resolve(
        self,
        certificate: x509.Certificate,
        at: datetime,
        extra: Sequence[x509.Certificate],
        crls: Sequence[bytes],
    ) -> Resolution:
        attempts: list[_Attempt] = []
        outcomes: list[RouteOutcome] = []
        for route, method in ((Route.BRIDGE, self._bridge), (Route.TRUST_LIST, self._trust_list)):
            try:
                attempt = method(certificate, extra, at, crls)
            except ValidationError as exc:
                outcomes.append(RouteOutcome(route, error=exc.message))
                continue
            attempts.append(attempt)
            outcomes.append(RouteOutcome(attempt.route, reference_level=attempt.reference))
        if not attempts:
            reasons = "; ".join(f"{o.route}: {o.error}" for o in outcomes)
            raise UntrustedError(
                f"{certificate.subject.rfc4514_string()} is not trusted: {reasons}",
                routes=outcomes,
                hint="check the anchors, the cross-certificates and the accepted trust lists",
            )
        chosen = attempts[0]
        disagreement = None
        references = [a.reference for a in attempts if a.reference is not None]
        if len(references) == 2 and references[0] != references[1]:
            lower = min(references, key=lambda r: r.rank)
            disagreement = (
                "the routes disagree on the reference level: "
                + ", ".join(f"{a.route} says {a.reference}" for a in attempts)
                + f"; using the lower, {lower}"
            )
            chosen = next(a for a in attempts if a.reference == lower)
        return Resolution(
            route=chosen.route,
            path=chosen.found.path.certificates,
            holder_level=chosen.holder,
            own_level=chosen.own,
            reference_level=chosen.reference,
            reasons=chosen.reasons,
            routes=tuple(outcomes),
            disagreement=disagreement,
            revocation=(
                f"checked against {len(chosen.found.crls)} CRL(s)"
                if self.revocation is not RevocationMode.UNSAFE_SOFT_FAIL
                else "not required"
            ),
            validated_at=at,
            valid_until=min(a.valid_until for a in attempts),
        )

    def _check_minimum(self, resolution: Resolution, minimum: str) -> None:
        scheme = self.config.reference_scheme
        levels = scheme.levels if scheme is not None else ()
        wanted = next(
            (Level.of(scheme, lv) for lv in levels if lv.name == minimum and scheme is not None),
            None,
        )
        if wanted is None:
            raise ValidationError(f"{minimum!r} is not a reference level the relying party knows")
        got = resolution.reference_level
        if got is None or got.rank < wanted.rank:
            raise InsufficientLevelError(
                f"{resolution.holder} is trusted at {got or 'no reference level'}, "
                f"below the required {wanted}",
                resolution=resolution,
            )
