"""Verifying trustworthiness credentials and presentations, fail closed, in a fixed order.

1. signature (the ``x5c`` leaf's key; for SD-JWT also every disclosure);
2. ``typ``, and ``@context`` (``vc+jwt``) or ``vct`` (``dc+sd-jwt``);
3. time: ``iat``, ``nbf``, ``exp``, ``validFrom``, ``validUntil`` and each claim's period,
   with a small clock skew;
4. the issuer's identity through the trust resolver, at the time of issuance and now, and that
   the identity is the issuer the credential names;
5. the issuer's authority: the criterion is in the catalogue, the value fits its type, the
   evidence kind is admitted; a certificate's issuer is a conformity assessment body, an audit's
   an auditor, that an accepted trust list lists for exactly this criterion, granted at the
   time of issuance; a self-declaration is signed by the subject's own organization identity;
6. status: every ``credentialStatus`` entry, through the issuer's published status lists;
7. holder binding, for a presentation: the key-binding JWT (``dc+sd-jwt``) or the ``vp+jwt``
   is signed by the key in ``cnf`` and names the expected audience and nonce.

Each failure raises its own :class:`~trustbridge.credentials.errors.CredentialError`; success
returns a :class:`~trustbridge.credentials.model.Verdict` with every reason.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from cryptography import x509

from trustbridge.clock import ensure_utc
from trustbridge.credentials import sdjwt
from trustbridge.credentials._jose import (
    decode_jwt_shared,
    key_from_jwk,
    verify_jws,
    verify_x5c_jws,
    x5c_of,
)
from trustbridge.credentials.criteria import Catalogue, EvidenceKind
from trustbridge.credentials.errors import (
    CredentialError,
    ExpiredCredentialError,
    HolderBindingError,
    MalformedCredentialError,
    NotAccreditedError,
    NotYetValidCredentialError,
    ReplayedPresentationError,
    StatusUnavailableError,
    UntrustedIssuerError,
    WrongTypeError,
)
from trustbridge.credentials.formats import (
    ENVELOPED_PREFIX,
    EVIDENCE_DETAILS,
    SUBJECT_DETAILS,
    Format,
    Token,
    path_text,
)
from trustbridge.credentials.model import (
    VCT,
    TrustCredential,
    Verdict,
    _new_verdict,
    issuer_id_for,
)
from trustbridge.credentials.status import (
    StatusListCache,
    StatusListSnapshot,
    StatusPurpose,
    check_status,
    read_status_list,
)
from trustbridge.errors import ValidationError
from trustbridge.oids import ID_AT_ORGANIZATION_IDENTIFIER
from trustbridge.pki.profiles import SubjectKind, subject_kind_of
from trustbridge.trust._jws import CompactJws, parse_json
from trustbridge.trust.lists import ServiceKind, TrustList, recognized
from trustbridge.trust.resolver import Resolution

__all__ = [
    "CredentialVerifier",
    "IssuerResolver",
    "VerificationParams",
    "status_list_reader",
]

_CACHE_LIMIT = 4096
_AUTHORITY = {EvidenceKind.CERTIFICATE: ServiceKind.CAB, EvidenceKind.AUDIT: ServiceKind.AUDITOR}
STATUS_LIST_TYPE = "vc+jwt"


class IssuerResolver(Protocol):
    """The part of :class:`~trustbridge.trust.resolver.TrustResolver` verification needs."""

    def resolve(
        self,
        certificate: x509.Certificate,
        *,
        at: datetime,
        extra: Sequence[x509.Certificate] = (),
        crls: Sequence[bytes] = (),
        min_level: str | None = None,
    ) -> Resolution: ...


@dataclass(frozen=True)
class VerificationParams:
    """How strict verification is; the defaults are the production ones."""

    #: Tolerance for clocks that disagree (issuer, holder, verifier).
    skew: timedelta = timedelta(minutes=1)
    #: How old a presentation's key-binding proof may be.
    max_presentation_age: timedelta = timedelta(minutes=5)
    #: The lowest reference level (``itg-loa2``) an issuer's identity must resolve to.
    min_issuer_level: str | None = None


def organization_identifier_of(certificate: x509.Certificate) -> str | None:
    values = certificate.subject.get_attributes_for_oid(ID_AT_ORGANIZATION_IDENTIFIER)
    return str(values[0].value) if values else None


def _time(payload: Mapping[str, Any], name: str, source: str) -> datetime | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # a tuple: no union built
        raise MalformedCredentialError(f"JWT claim {name} is not a NumericDate", source=source)
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedCredentialError(f"JWT claim {name} is out of range", source=source) from exc


class _Signed(NamedTuple):
    """Step 1's result: what the issuer signed, and how the holder may be bound."""

    format: Format
    header: Mapping[str, Any]
    payload: dict[str, Any]
    chain: tuple[x509.Certificate, ...]
    disclosed: tuple[str, ...]
    #: The presentation still to check in step 7 (None: a bare credential); it returns the
    #: holder's public JWK (``cnf.jwk``) it checked the binding with.
    presentation: Callable[[], dict[str, Any]] | None


class CredentialVerifier:
    """Verifies credentials and presentations against a relying party's trust configuration.

    ``trust_lists`` are the lists the relying party accepted (their CAB and auditor services
    decide authority); ``status`` fetches and caches the issuers' status lists.
    """

    def __init__(
        self,
        resolver: IssuerResolver,
        *,
        trust_lists: Sequence[TrustList],
        status: StatusListCache,
        catalogue: Catalogue | None = None,
        params: VerificationParams | None = None,
    ) -> None:
        self.resolver = resolver
        self.trust_lists = tuple(trust_lists)
        self.status = status
        self.catalogue = catalogue or Catalogue.default()
        self.params = params or VerificationParams()
        # Issuer chains seen before: their resolutions (until the resolver says they expire)
        # and the accreditations found for them. A verifier sees few issuers, many credentials.
        self._resolutions: dict[tuple[str, ...], list[Resolution]] = {}
        self._accreditations: dict[tuple[str, str, ServiceKind, datetime], str | None] = {}
        self._lock = threading.Lock()

    # -- the steps -----------------------------------------------------------------------------

    def verify(
        self,
        token: str | bytes,
        *,
        at: datetime,
        audience: str | None = None,
        nonce: str | None = None,
        source: str = "",
    ) -> Verdict:
        """Verify a credential, or (with ``audience`` and ``nonce``) a holder's presentation."""
        at = ensure_utc(at)
        text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
        text = text.strip()
        if (audience is None) != (nonce is None):
            raise ReplayedPresentationError(
                "a presentation is checked against both an audience and a nonce", source=source
            )
        expect_presentation = audience is not None
        signed = self._signature(text, at, audience, nonce, expect_presentation, source)
        credential = self._types(signed, source)
        issued = self._times(signed.payload, credential, at, source)
        now_resolution = self._issuer(signed, credential, at, issued, source)
        accreditation = self._authority(signed, credential, issued, source)
        self._status(signed, credential, at, source)
        holder_jwk = signed.presentation() if signed.presentation is not None else None
        identity = _leaf(signed.header["x5c"][0]).subject
        route = str(now_resolution.route)
        level = str(now_resolution.reference_level) if now_resolution.reference_level else None
        reasons = [
            f"signature of {identity} verified ({signed.format})",
            f"issuer identity trusted by the {route} route" + (f" at {level}" if level else ""),
            accreditation
            if accreditation is not None
            else "self-declaration signed by the organization identity of "
            f"{credential.subject.organization}",
            "status: not revoked, not suspended",
        ]
        if signed.presentation is not None:
            reasons.append(f"presented by the holder to {audience} with the expected nonce")
        return _new_verdict(
            credential=credential,
            format=signed.format.value,
            issuer_identity=identity,
            issuer_route=route,
            issuer_level=level,
            accredited_by=accreditation,
            disclosed=signed.disclosed,
            holder_jwk=holder_jwk,
            reasons=tuple(reasons),
            verified_at=at,
        )

    def _signature(
        self,
        text: str,
        at: datetime,
        audience: str | None,
        nonce: str | None,
        expect_presentation: bool,
        source: str,
    ) -> _Signed:
        if "~" in text:
            return self._sd_jwt(text, at, audience, nonce, expect_presentation, source)
        jws, header, payload = decode_jwt_shared(text, source=source)
        kind = _kind(header, source)
        if kind is Token.VP_JWT:
            if not expect_presentation:
                raise ReplayedPresentationError(
                    "a presentation needs the audience and nonce it was made for", source=source
                )
            return self._vp_jwt(jws, header, payload, at, audience or "", nonce or "", source)
        if expect_presentation:
            raise HolderBindingError(
                "a bare vc+jwt proves nothing about its holder; present it in a vp+jwt",
                source=source,
            )
        chain = verify_x5c_jws(jws, header, source=source)
        return _Signed(Format.VC_JWT, header, payload, chain, (), None)

    def _sd_jwt(
        self,
        text: str,
        at: datetime,
        audience: str | None,
        nonce: str | None,
        expect_presentation: bool,
        source: str,
    ) -> _Signed:
        parts = sdjwt.parse_sd_jwt(text, source=source)
        header = parts.issuer_jwt.header_json()
        if not isinstance(header, dict):
            raise MalformedCredentialError("the JOSE header is not an object", source=source)
        chain = x5c_of(header, source=source)
        issuer_key = chain[0].public_key()
        if parts.kb_jwt is not None and not expect_presentation:
            raise ReplayedPresentationError(
                "a presentation needs the audience and nonce it was made for", source=source
            )
        # Step 1 checks the issuer's signature and the disclosures only; the key binding is
        # step 7, so that a presentation of a revoked credential says "revoked".
        bare = text if parts.kb_jwt is None else text[: text.rindex("~") + 1]
        verified = sdjwt.verify_sd_jwt(
            bare,
            issuer_key=issuer_key,
            at=at,
            audience=None,
            nonce=None,
            require_key_binding=False,
            source=source,
        )

        _check_layout(parts.issuer_jwt, verified.disclosed, source)

        def bind() -> dict[str, Any]:
            if parts.kb_jwt is None:
                raise HolderBindingError("the presentation has no key-binding JWT", source=source)
            holder_jwk = verified.holder_jwk
            if holder_jwk is None:
                raise HolderBindingError(
                    "the credential binds no holder key (cnf.jwk)", source=source
                )
            sdjwt.verify_key_binding(
                text,
                holder_jwk,
                at=at,
                audience=audience or "",
                nonce=nonce or "",
                max_kb_age=self.params.max_presentation_age,
                skew=self.params.skew,
                source=source,
            )
            return dict(holder_jwk)

        return _Signed(
            Format.SD_JWT,
            header,
            verified.payload,
            chain,
            tuple(path_text(p) for p in verified.disclosed),
            bind if expect_presentation else None,
        )

    def _vp_jwt(
        self,
        vp: CompactJws,
        vp_header: Mapping[str, Any],
        vp_payload: dict[str, Any],
        at: datetime,
        audience: str,
        nonce: str,
        source: str,
    ) -> _Signed:
        envelopes = vp_payload.get("verifiableCredential")
        if not isinstance(envelopes, list) or len(envelopes) != 1:
            raise MalformedCredentialError(
                "a vp+jwt here carries exactly one enveloped credential", source=source
            )
        envelope = envelopes[0]
        inner = envelope.get("id") if isinstance(envelope, dict) else None
        if not isinstance(inner, str) or not inner.startswith(ENVELOPED_PREFIX):
            raise MalformedCredentialError(
                "the presentation's credential is not an enveloped vc+jwt", source=source
            )
        signed = self._signature(inner[len(ENVELOPED_PREFIX) :], at, None, None, False, source)

        def bind() -> dict[str, Any]:
            holder_jwk = _holder_jwk(signed.payload, source)
            holder = key_from_jwk(holder_jwk)
            if vp_header.get("typ") != Token.VP_JWT:
                raise WrongTypeError("the presentation's typ is not vp+jwt", source=source)
            try:
                verify_jws(vp, holder, source=source)
            except CredentialError as exc:
                raise HolderBindingError(
                    "the presentation is not signed by the key the credential binds",
                    source=source,
                ) from exc
            check_binding(vp_payload, audience, nonce, at, self.params, source)
            return holder_jwk

        return _Signed(signed.format, signed.header, signed.payload, signed.chain, (), bind)

    def _types(self, signed: _Signed, source: str) -> TrustCredential:
        typ = signed.header.get("typ")
        if typ != signed.format:  # a StrEnum: compared as its text
            raise WrongTypeError(f"typ is {typ!r}, expected {signed.format.value}", source=source)
        payload = signed.payload
        if signed.format is Format.SD_JWT:
            if payload.get("vct") != VCT:
                raise WrongTypeError(
                    f"vct is {payload.get('vct')!r}, expected {VCT}", source=source
                )
            if "@context" in payload:
                raise WrongTypeError("an SD-JWT VC carries vct, not @context", source=source)
        # from_vc reads the VCDM members only, never the JWT claims (iss, sub, jti, iat, nbf, exp,
        # cnf, vct, aud): no copy of the payload without them is needed.
        credential = TrustCredential.from_vc(
            payload, source=source, require_context=signed.format is Format.VC_JWT
        )
        if payload.get("iss") != credential.issuer.id or payload.get("jti") != credential.id:
            raise MalformedCredentialError(
                "the JWT claims iss/jti disagree with the credential's issuer/id", source=source
            )
        if payload.get("sub") != credential.subject.id:
            raise MalformedCredentialError(
                "the JWT claim sub disagrees with the credential subject", source=source
            )
        return credential

    def _times(
        self, payload: Mapping[str, Any], credential: TrustCredential, at: datetime, source: str
    ) -> datetime:
        """Step 3; returns the time of issuance (``iat``)."""
        skew = self.params.skew
        issued = _time(payload, "iat", source)
        if issued is None:
            raise MalformedCredentialError("the credential has no iat", source=source)
        late = at + skew
        if issued > late:
            raise NotYetValidCredentialError(
                f"issued in the future ({issued:%Y-%m-%dT%H:%M:%SZ})", source=source
            )
        early = at - skew
        not_before = _time(payload, "nbf", source)
        expires = _time(payload, "exp", source)
        for start in (not_before, credential.valid_from):
            if start is not None and late < start:
                raise NotYetValidCredentialError(
                    f"not valid before {start:%Y-%m-%dT%H:%M:%SZ}", source=source
                )
        for end in (expires, credential.valid_until):
            if end is not None and early >= end:
                raise ExpiredCredentialError(f"expired at {end:%Y-%m-%dT%H:%M:%SZ}", source=source)
        for claim in credential.claims:
            if claim.valid_from and late < claim.valid_from:
                raise NotYetValidCredentialError(
                    f"claim {claim.criterion} is not valid before "
                    f"{claim.valid_from:%Y-%m-%dT%H:%M:%SZ}",
                    source=source,
                )
            if claim.valid_until and early >= claim.valid_until:
                raise ExpiredCredentialError(
                    f"claim {claim.criterion} expired at {claim.valid_until:%Y-%m-%dT%H:%M:%SZ}",
                    source=source,
                )
        return issued

    def _issuer(
        self,
        signed: _Signed,
        credential: TrustCredential,
        at: datetime,
        issued: datetime,
        source: str,
    ) -> Resolution:
        leaf, extra = signed.chain[0], signed.chain[1:]
        resolutions = []
        key = tuple(signed.header["x5c"])
        for when, moment in (("at issuance", min(issued, at)), ("now", at)):
            try:
                resolutions.append(self._resolve(key, leaf, extra, moment))
            except ValidationError as exc:
                raise UntrustedIssuerError(
                    f"issuer identity {leaf.subject.rfc4514_string()} is not trusted {when}: "
                    f"{exc.message}",
                    source=source,
                ) from exc
        organization = _leaf(key[0]).organization
        if organization is None or issuer_id_for(organization) != credential.issuer.id:
            raise UntrustedIssuerError(
                f"the credential names issuer {credential.issuer.id} but is signed by "
                f"{leaf.subject.rfc4514_string()}",
                source=source,
            )
        return resolutions[-1]

    def _resolve(
        self,
        key: tuple[str, ...],
        leaf: x509.Certificate,
        extra: Sequence[x509.Certificate],
        at: datetime,
    ) -> Resolution:
        """The resolver's answer for this chain at ``at``, from the cache while it holds."""
        # Read without the lock: a chain's list of resolutions is replaced, never changed.
        cached = self._resolutions.get(key, ())
        for resolution in cached:
            if resolution.validated_at <= at < resolution.valid_until:
                return resolution
        resolution = self.resolver.resolve(
            leaf, at=at, extra=extra, min_level=self.params.min_issuer_level
        )
        with self._lock:
            if len(self._resolutions) > _CACHE_LIMIT:
                self._resolutions.clear()
            kept = [r for r in self._resolutions.get(key, []) if r.valid_until > at]
            self._resolutions[key] = [*kept[-7:], resolution]
        return resolution

    def _accredited(
        self, leaf_b64: str, leaf: x509.Certificate, scope: str, kind: ServiceKind, at: datetime
    ) -> str | None:
        """Which accepted trust list grants ``leaf`` a ``kind`` service for ``scope`` at ``at``."""
        key = (leaf_b64, scope, kind, at)
        try:
            return self._accreditations[key]  # one look-up: no lock needed
        except KeyError:
            pass
        found = None
        for trust_list in self.trust_lists:
            match = recognized(trust_list, leaf, kind=kind, at=at)
            if match is not None and scope in match.service.scope:
                found = (
                    f"{match.provider.name} accredited for {scope} ({kind.value}) by "
                    f"{trust_list.name}"
                )
                break
        with self._lock:
            if len(self._accreditations) > _CACHE_LIMIT:
                self._accreditations.clear()
            self._accreditations[key] = found
        return found

    def _authority(
        self, signed: _Signed, credential: TrustCredential, issued: datetime, source: str
    ) -> str | None:
        kind = credential.evidence.kind
        criteria = []
        for claim in credential.claims:
            criterion = self.catalogue.get(claim.criterion)
            criteria.append(criterion)
            criterion.check_value(claim.value)
            criterion.check_evidence(kind)
            criterion.check_element(credential.subject.element)
            if claim.characteristic is not criterion.characteristic:
                raise MalformedCredentialError(
                    f"claim {claim.criterion} names characteristic {claim.characteristic}, "
                    f"the catalogue says {criterion.characteristic}",
                    source=source,
                )
        leaf = signed.chain[0]
        if not credential.claims and signed.format is Format.VC_JWT:
            raise MalformedCredentialError("the credential makes no claim", source=source)
        if kind is EvidenceKind.SELF_DECLARATION:
            if (
                _leaf(signed.header["x5c"][0]).organization != credential.subject.organization
                or subject_kind_of(leaf) is not SubjectKind.ORGANIZATION
            ):
                raise NotAccreditedError(
                    f"a self-declaration about {credential.subject.name} must be signed by the "
                    f"organization identity of {credential.subject.organization}, not by "
                    f"{leaf.subject.rfc4514_string()}",
                    source=source,
                )
            return None
        service_kind = _AUTHORITY[kind]
        if not credential.claims:
            # A presentation that discloses no claim: the issuer must still be a granted
            # body of the evidence's kind, for some scope.
            granted = [
                service
                for trust_list in self.trust_lists
                if (service := recognized(trust_list, leaf, kind=service_kind, at=issued))
            ]
            if not granted:
                raise NotAccreditedError(
                    f"{leaf.subject.rfc4514_string()} is not a granted {service_kind.value} "
                    "on any accepted trust list",
                    source=source,
                )
            return f"{granted[0].provider.name} ({service_kind.value}; no claim disclosed)"
        names = []
        for criterion in criteria:
            scope = criterion.accreditation
            match = self._accredited(signed.header["x5c"][0], leaf, scope, service_kind, issued)
            if match is None:
                raise NotAccreditedError(
                    f"{leaf.subject.rfc4514_string()} is not listed as a granted "
                    f"{service_kind.value} for {scope} at {issued:%Y-%m-%dT%H:%M:%SZ} by any "
                    f"accepted trust list",
                    source=source,
                    hint="a conformity assessment body vouches only for the criteria of its "
                    "accreditation scope",
                )
            names.append(match)
        return "; ".join(names)

    def _status(
        self, signed: _Signed, credential: TrustCredential, at: datetime, source: str
    ) -> None:
        if StatusPurpose.REVOCATION not in [e.purpose for e in credential.status]:
            # Fail closed: a credential nobody can revoke is not one we rely on.
            raise StatusUnavailableError(
                "the credential declares no revocation status list", source=source
            )
        try:
            check_status(credential.status, self.status, at, issuer=credential.issuer.id)
        except CredentialError as exc:
            if exc.source or not source:
                raise
            raise type(exc)(exc.message, source=source, hint=exc.hint) from exc


def _check_layout(issuer_jwt: CompactJws, disclosed: Sequence[sdjwt.Path], source: str) -> None:
    """Only what a trustworthiness SD-JWT VC may withhold is selectively disclosable: the
    claims (array elements of ``credentialSubject.claims``), the subject's product and system
    details and the evidence details. Anything else withheld (the status, a claim's validity,
    the issuer) would let a holder hide what the verifier must check."""
    payload = parse_json(issuer_jwt.payload_bytes())

    def refuse(where: str) -> MalformedCredentialError:
        return MalformedCredentialError(
            f"the issuer made {where} selectively disclosable; only the claims, "
            f"{', '.join(SUBJECT_DETAILS)} and {', '.join(EVIDENCE_DETAILS)} may be",
            source=source,
        )

    def walk(value: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(value, dict):
            if "_sd" in value and path not in _SD_OBJECTS:
                raise refuse(path_text(path) or "a top-level member")
            for name, inner in value.items():
                walk(inner, (*path, name))
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                if isinstance(inner, dict) and "..." in inner and path != _SD_ARRAY:
                    raise refuse(path_text((*path, index)))
                walk(inner, (*path, index))

    walk(payload, ())
    for path in disclosed:
        if path[:2] == _SD_ARRAY and len(path) == 3 and isinstance(path[2], int):
            continue
        if path[:1] == ("credentialSubject",) and len(path) == 2 and path[1] in SUBJECT_DETAILS:
            continue
        if path[:2] == ("evidence", 0) and len(path) == 3 and path[2] in EVIDENCE_DETAILS:
            continue
        raise refuse(path_text(path))


_SD_OBJECTS = frozenset({("credentialSubject",), ("evidence", 0)})
_SD_ARRAY = ("credentialSubject", "claims")


@dataclass(frozen=True)
class _LeafFacts:
    """What verification reads from an ``x5c`` leaf besides its key."""

    #: RFC 4514 text of the subject.
    subject: str
    #: The subject's ETSI EN 319 412-1 organization identifier, if any.
    organization: str | None


@functools.lru_cache(maxsize=1024)
def _leaf(leaf_b64: str) -> _LeafFacts:
    """The facts of an ``x5c`` leaf, keyed on its base64 text (the exact DER certificate; the
    caller has parsed it with ``x5c_of`` already)."""
    leaf = x5c_of({"x5c": [leaf_b64]})[0]
    return _LeafFacts(leaf.subject.rfc4514_string(), organization_identifier_of(leaf))


def _kind(header: Mapping[str, Any], source: str) -> Token:
    typ = header.get("typ")
    kind = _COMPACT_KINDS.get(typ) if isinstance(typ, str) else None
    if kind is not None:
        return kind
    raise MalformedCredentialError(
        f"JOSE typ {typ!r} is none of vc+jwt, vp+jwt, dc+sd-jwt", source=source
    )


#: The compact tokens by their JOSE typ (a look-up, not an enum call per token).
_COMPACT_KINDS = {str(kind): kind for kind in (Token.VC_JWT, Token.VP_JWT)}


def _holder_jwk(payload: Mapping[str, Any], source: str) -> dict[str, Any]:
    cnf = payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk, dict):
        raise HolderBindingError("the credential binds no holder key (cnf.jwk)", source=source)
    return jwk


def check_binding(
    payload: Mapping[str, Any],
    audience: str,
    nonce: str,
    at: datetime,
    params: VerificationParams,
    source: str,
) -> None:
    if payload.get("aud") != audience:
        raise ReplayedPresentationError(
            f"the presentation is for audience {payload.get('aud')!r}, not {audience!r}",
            source=source,
        )
    if payload.get("nonce") != nonce:
        raise ReplayedPresentationError("the presentation's nonce is not ours", source=source)
    issued = _time(payload, "iat", source)
    if issued is None or not at - params.max_presentation_age <= issued <= at + params.skew:
        raise ReplayedPresentationError(
            "the presentation is too old or from the future", source=source
        )


def status_list_reader(
    resolver: IssuerResolver, *, skew: timedelta = timedelta(minutes=1)
) -> Callable[[bytes, str, StatusPurpose, datetime], StatusListSnapshot]:
    """Reads a fetched status list ``vc+jwt``: signature by its ``x5c`` leaf, that leaf's
    identity through the resolver, the list's issuer is that identity, then the list itself."""

    def read(data: bytes, url: str, purpose: StatusPurpose, at: datetime) -> StatusListSnapshot:
        text = data.decode("ascii", "replace").strip()
        jws, header, payload = decode_jwt_shared(text, source=url)
        if header.get("typ") != STATUS_LIST_TYPE:
            raise WrongTypeError(f"typ is {header.get('typ')!r}, expected vc+jwt", source=url)
        chain = verify_x5c_jws(jws, header, source=url)
        try:
            resolver.resolve(chain[0], at=at, extra=chain[1:])
        except ValidationError as exc:
            raise UntrustedIssuerError(
                f"the status list's signer is not trusted: {exc.message}", source=url
            ) from exc
        organization = organization_identifier_of(chain[0])
        if organization is None or payload.get("iss") != issuer_id_for(organization):
            raise UntrustedIssuerError(
                "the status list is not signed by the issuer it names", source=url
            )
        return read_status_list(payload, url=url, purpose=purpose, at=at, skew=skew)

    return read
