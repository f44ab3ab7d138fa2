"""Signed trust lists and the list of trusted lists (LOTL): the paper's group construction.

A scheme operator publishes a :class:`TrustList` of the trust service providers it recognizes,
each service with its certificates and status history. The group operator publishes a
:class:`Lotl` that says where each scheme's list is, who may sign it, and how each scheme's
levels map to the group's reference levels. Both travel as JWS compact serializations (typ
``trustbridge-trust-list+jws`` / ``trustbridge-lotl+jws``) over canonical JSON that the
schemas in ``trust/schemas/`` describe.

Reading follows TUF: the signature is checked against signers the relying party already
trusts (pinned LOTL signers, or those the last accepted LOTL announced; for a trust list, the
signers its LOTL pointer names), then the schema, then rollback and freshness against a
:class:`ListState` that outlives the process. Every refusal is its own :class:`TrustListError`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import fcntl
import functools
import hashlib
import itertools
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar

import jsonschema
import referencing
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from referencing.jsonschema import DRAFT202012

from trustbridge._canonical import canonical_json
from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError, TrustbridgeError
from trustbridge.pki.keys import KeyType
from trustbridge.pki.profiles import SubjectKind
from trustbridge.pki.signers import Signer
from trustbridge.trust._jws import (
    CompactJws,
    JwsFormatError,
    algorithm_for,
    parse_json,
    sign_compact,
    spki_der,
    verifies,
)
from trustbridge.trust.schemes import AssuranceLevel, TrustScheme

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "LOTL_TYPE",
    "MAX_LIST_BYTES",
    "TRUST_LIST_TYPE",
    "AcceptedList",
    "EquivocationError",
    "FileListState",
    "LevelEquivalence",
    "ListState",
    "ListStateError",
    "Lotl",
    "MalformedListError",
    "MemoryListState",
    "NotYetValidListError",
    "Operator",
    "Pointer",
    "Provider",
    "RollbackError",
    "Service",
    "ServiceKind",
    "ServiceMatch",
    "ServiceStatus",
    "StaleListError",
    "StatusChange",
    "TamperedListError",
    "TrustList",
    "lotl_from_json",
    "lotl_to_json",
    "payload_of",
    "trust_list_from_json",
    "trust_list_to_json",
    "TrustListError",
    "UnauthorizedSignerError",
    "read_lotl",
    "read_trust_list",
    "recognized",
    "sign_lotl",
    "sign_trust_list",
]

#: JWS ``typ`` of a signed trust list.
TRUST_LIST_TYPE = "trustbridge-trust-list+jws"
#: JWS ``typ`` of a signed list of trusted lists.
LOTL_TYPE = "trustbridge-lotl+jws"
#: How far a list's ``issued_at`` may lie ahead of the reader's clock.
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
#: The largest signed list a reader looks at.
MAX_LIST_BYTES = 8 * 1024 * 1024

_MAX_CHAIN = 10
_HEADER_PARAMETERS = frozenset({"alg", "typ", "x5c"})
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# -- errors -----------------------------------------------------------------------------------


class TrustListError(TrustbridgeError):
    """A signed trust list or LOTL that must not be used; the message names the list."""

    exit_code = 3

    def __init__(self, list_name: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"{list_name}: {problem}", hint=hint)
        self.list_name = list_name


class MalformedListError(TrustListError):
    """Not a JWS, a header we do not accept, or a payload that violates the schema."""

    def __init__(
        self, list_name: str, problem: str, *, path: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(list_name, problem, hint=hint)
        #: JSON path of the schema violation (``$.providers[0].country``), when there is one.
        self.path = path


class UnauthorizedSignerError(TrustListError):
    """Signed by a certificate that is neither pinned nor announced for this list."""

    def __init__(
        self, list_name: str, problem: str, *, signer: x509.Certificate | None = None
    ) -> None:
        super().__init__(
            list_name,
            problem,
            hint="pin the group's LOTL signer, or have the LOTL name the signer of this list",
        )
        self.signer = signer


class TamperedListError(TrustListError):
    """A signature that does not verify: the list or its header changed after signing."""


class RollbackError(TrustListError):
    """A list older than one accepted before (its sequence number is lower)."""

    _HINT = "fetch the list again from its publisher"

    def __init__(self, list_name: str, problem: str, *, sequence: int, highest: int) -> None:
        super().__init__(list_name, problem, hint=self._HINT)
        self.sequence = sequence
        self.highest = highest


class EquivocationError(RollbackError):
    """A list with the sequence number of an accepted one but different content."""

    _HINT = "report it to the list's operator: it signed two lists with one sequence number"


class StaleListError(TrustListError):
    """A list read after its ``next_update``: a fresher one should exist."""

    def __init__(self, list_name: str, problem: str, *, next_update: datetime) -> None:
        super().__init__(list_name, problem, hint="fetch the current list from its publisher")
        self.next_update = next_update


class NotYetValidListError(TrustListError):
    """A list issued in the future (beyond the allowed clock skew)."""

    def __init__(self, list_name: str, problem: str, *, issued_at: datetime) -> None:
        super().__init__(list_name, problem, hint="check the clocks of publisher and reader")
        self.issued_at = issued_at


class ListStateError(TrustListError):
    """The remembered list state cannot be read or written; reading fails closed."""


# -- trust lists ------------------------------------------------------------------------------


class ServiceKind(enum.StrEnum):
    """What a listed trust service does."""

    CA = "ca"
    TSA = "tsa"
    OCSP = "ocsp"
    #: A conformity assessment body; its scope lists the criteria it is accredited for.
    CAB = "cab"
    AUDITOR = "auditor"


class ServiceStatus(enum.StrEnum):
    """The status a scheme gives a service; only ``granted`` is recognized."""

    GRANTED = "granted"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"


def _instant(value: datetime) -> datetime:
    """Aware UTC, to the second (the precision of the lists' JSON)."""
    return ensure_utc(value).replace(microsecond=0)


@dataclass(frozen=True)
class Operator:
    """Who publishes a list: a name and an ISO 3166 country code."""

    name: str
    country: str


@dataclass(frozen=True)
class StatusChange:
    """A service has had ``status`` since ``since`` (stored to the second)."""

    status: ServiceStatus
    since: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", _instant(self.since))


@dataclass(frozen=True)
class Service:
    """One trust service of a provider, identified by its certificates' keys.

    A CA names the subject kinds and the scheme levels it issues for; a conformity assessment
    body or auditor names its accreditation scope as criterion identifiers (``iec-62443-4-1``).
    """

    name: str
    kind: ServiceKind
    certificates: tuple[x509.Certificate, ...]
    #: Oldest first; the newest entry is the current status.
    status_history: tuple[StatusChange, ...]
    subject_kinds: tuple[SubjectKind, ...] = ()
    levels: tuple[AssuranceLevel, ...] = ()
    scope: tuple[str, ...] = ()
    _keys: frozenset[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            keys = frozenset(spki_der(certificate) for certificate in self.certificates)
        except (UnsupportedAlgorithm, ValueError) as exc:
            raise InputError(
                f"service {self.name!r} has a certificate with an unusable key"
            ) from exc
        object.__setattr__(self, "_keys", keys)
        if not self.status_history:
            raise InputError(f"service {self.name!r} needs a status history")
        times = [change.since for change in self.status_history]
        if any(earlier >= later for earlier, later in itertools.pairwise(times)):
            raise InputError(
                f"service {self.name!r}: status history must be in strictly ascending time"
            )

    @property
    def status(self) -> ServiceStatus:
        """The current status: that of the newest history entry."""
        return self.status_history[-1].status

    def status_at(self, at: datetime) -> ServiceStatus | None:
        """The status at ``at``, or None if the service was not listed yet."""
        at = ensure_utc(at)
        current: ServiceStatus | None = None
        for change in self.status_history:
            if change.since > at:
                break
            current = change.status
        return current

    def holds_key(self, spki: bytes) -> bool:
        """Whether one of the service's certificates has this DER SubjectPublicKeyInfo."""
        return spki in self._keys


@dataclass(frozen=True)
class Provider:
    """A recognized trust service provider and its services."""

    name: str
    country: str
    #: ETSI EN 319 412-1 organization identifier, for example ``VATDE-123456789``.
    organization_identifier: str
    services: tuple[Service, ...]


@dataclass(frozen=True)
class ServiceMatch:
    """A listed service whose certificate holds a key, and its status at the time asked."""

    provider: Provider
    service: Service
    #: None if the service was not yet listed at that time.
    status: ServiceStatus | None


@dataclass(frozen=True)
class TrustList:
    """A scheme's list of recognized trust service providers, at one sequence number.

    Times are stored to the second. The whole list is checked against the trust-list schema
    on construction, and every CA level must be one of the scheme's levels.
    """

    id: str
    scheme: TrustScheme
    operator: Operator
    sequence: int
    issued_at: datetime
    next_update: datetime
    providers: tuple[Provider, ...]

    def __post_init__(self) -> None:
        _settle(self, "trust-list", _trust_list_json)
        for provider in self.providers:
            for service in provider.services:
                unknown = [lv.name for lv in service.levels if lv not in self.scheme.levels]
                if unknown:
                    raise InputError(
                        f"{self.name}: service {service.name!r} names levels {unknown} that "
                        f"scheme {self.scheme.code} does not define"
                    )

    @property
    def name(self) -> str:
        """``trust list de, sequence 3``: how messages name the list."""
        return f"trust list {self.id}, sequence {self.sequence}"

    def services_for(
        self,
        certificate_or_spki: x509.Certificate | bytes,
        *,
        kind: ServiceKind | None = None,
        at: datetime,
    ) -> tuple[ServiceMatch, ...]:
        """Every listed service (of ``kind``, if given) holding the key, with its status at ``at``.

        A certificate matches a service certificate with the same SubjectPublicKeyInfo, so a
        re-issued CA certificate over the same key matches too. ``certificate_or_spki`` may be
        the DER SubjectPublicKeyInfo itself.
        """
        if isinstance(certificate_or_spki, x509.Certificate):
            spki = spki_der(certificate_or_spki)
        else:
            spki = certificate_or_spki
        return tuple(
            ServiceMatch(provider, service, service.status_at(at))
            for provider in self.providers
            for service in provider.services
            if (kind is None or service.kind is kind) and service.holds_key(spki)
        )


def recognized(
    trust_list: TrustList, certificate: x509.Certificate, *, kind: ServiceKind, at: datetime
) -> ServiceMatch | None:
    """The service of ``kind`` holding the certificate's key if it was granted at ``at``.

    Suspended, withdrawn and not-yet-listed services are not recognized.
    """
    return next(
        (
            match
            for match in trust_list.services_for(certificate, kind=kind, at=at)
            if match.status is ServiceStatus.GRANTED
        ),
        None,
    )


# -- the list of trusted lists ----------------------------------------------------------------


@dataclass(frozen=True)
class Pointer:
    """Where a scheme's trust list is and which certificates may sign it."""

    scheme: str
    country: str
    location: str
    signers: tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class LevelEquivalence:
    """The scheme's ``national`` level is equivalent to the group's ``reference`` level."""

    scheme: str
    national: x509.ObjectIdentifier
    reference: x509.ObjectIdentifier

    @classmethod
    def by_rank(cls, scheme: TrustScheme, group: TrustScheme) -> tuple[LevelEquivalence, ...]:
        """The scheme's levels, lowest first, equivalent to the group's reference levels of
        the same rank (a scheme with another number of levels is refused)."""
        if len(scheme.levels) != len(group.levels):
            raise InputError(
                f"scheme {scheme.code} has {len(scheme.levels)} levels, the group "
                f"{group.code} {len(group.levels)}: map them one by one"
            )
        return tuple(
            cls(scheme.code, national.oid, reference.oid)
            for national, reference in zip(scheme.levels, group.levels, strict=True)
        )


@dataclass(frozen=True)
class Lotl:
    """The group's list of trusted lists, at one sequence number.

    ``group`` is the group itself as a scheme: its code, its name and its reference levels
    (``itg-loa1`` < ``itg-loa2`` < ``itg-loa3``). Times are stored to the second; the whole
    list is checked against the LOTL schema on construction.
    """

    group: TrustScheme
    operator: Operator
    sequence: int
    issued_at: datetime
    next_update: datetime
    pointers: tuple[Pointer, ...]
    equivalences: tuple[LevelEquivalence, ...] = ()
    #: Certificates that may sign the next LOTL (key rotation).
    next_signers: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        _settle(self, "lotl", _lotl_json)
        schemes = [pointer.scheme for pointer in self.pointers]
        if len(set(schemes)) != len(schemes):
            raise InputError(f"{self.name}: more than one pointer per scheme in {schemes}")
        for certificate in (*self.next_signers, *(c for p in self.pointers for c in p.signers)):
            try:
                KeyType.of(certificate.public_key())
            except (InputError, UnsupportedAlgorithm, ValueError) as exc:
                raise InputError(
                    f"{self.name}: signer {certificate.subject.rfc4514_string()} has a key "
                    "that cannot sign lists (use P-256, P-384, Ed25519 or RSA 2048/3072)"
                ) from exc
        seen: set[tuple[str, x509.ObjectIdentifier]] = set()
        for eq in self.equivalences:
            if eq.scheme not in schemes:
                raise InputError(f"{self.name}: equivalence for scheme {eq.scheme} without pointer")
            if self.group.level_by_oid(eq.reference) is None:
                raise InputError(
                    f"{self.name}: {eq.reference.dotted_string} is not a reference level of "
                    f"group {self.group.code}"
                )
            if (eq.scheme, eq.national) in seen:
                raise InputError(
                    f"{self.name}: scheme {eq.scheme} level {eq.national.dotted_string} "
                    "is mapped twice"
                )
            seen.add((eq.scheme, eq.national))

    @property
    def name(self) -> str:
        """``LOTL itg, sequence 4``: how messages name the list."""
        return f"LOTL {self.group.code}, sequence {self.sequence}"

    def pointer(self, scheme: str) -> Pointer | None:
        """The pointer to the trust list of ``scheme`` (a scheme code), if the group has one."""
        return next((p for p in self.pointers if p.scheme == scheme), None)

    def reference_level(
        self, scheme: str, national_level_oid: x509.ObjectIdentifier | str
    ) -> AssuranceLevel | None:
        """The group's reference level equivalent to a national level, if the LOTL maps it."""
        if isinstance(national_level_oid, str):
            national_level_oid = x509.ObjectIdentifier(national_level_oid)
        for eq in self.equivalences:
            if eq.scheme == scheme and eq.national == national_level_oid:
                return self.group.level_by_oid(eq.reference)
        return None


# -- what both lists share ---------------------------------------------------------------------

#: A trust list or a LOTL.
_L = TypeVar("_L", TrustList, Lotl)


class _Publication(TypedDict):
    """The fields both lists carry: who publishes it, its sequence number and its times."""

    operator: Operator
    sequence: int
    issued_at: datetime
    next_update: datetime


def _settle(signed_list: _L, document: str, to_json: Callable[[_L], dict[str, Any]]) -> None:
    """Store a new list's times to the second, then check its JSON against the ``document``
    schema and that its ``next_update`` comes after its ``issued_at``."""
    object.__setattr__(signed_list, "issued_at", _instant(signed_list.issued_at))
    object.__setattr__(signed_list, "next_update", _instant(signed_list.next_update))
    _check_against_schema(signed_list.name, document, to_json(signed_list))
    if signed_list.next_update <= signed_list.issued_at:
        raise InputError(f"{signed_list.name}: next_update must come after issued_at")


# -- JSON -------------------------------------------------------------------------------------


def _time_json(value: datetime) -> str:
    return value.strftime(_TIME_FORMAT)


def _time_from(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def _certificate_json(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")


def _certificate_from(text: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise InputError(f"{text[:24]}... is not a base64 DER certificate") from exc


def _scheme_json(scheme: TrustScheme) -> dict[str, Any]:
    return {
        "code": scheme.code,
        "name": scheme.name,
        "levels": [{"name": lv.name, "oid": lv.oid.dotted_string} for lv in scheme.levels],
    }


def _scheme_from(data: dict[str, Any]) -> TrustScheme:
    return TrustScheme(
        code=data["code"],
        name=data["name"],
        levels=tuple(
            AssuranceLevel(lv["name"], x509.ObjectIdentifier(lv["oid"]), rank)
            for rank, lv in enumerate(data["levels"], start=1)
        ),
    )


def _operator_json(operator: Operator) -> dict[str, Any]:
    return {"name": operator.name, "country": operator.country}


def _publication_json(signed_list: TrustList | Lotl) -> dict[str, Any]:
    return {
        "operator": _operator_json(signed_list.operator),
        "sequence": signed_list.sequence,
        "issued_at": _time_json(signed_list.issued_at),
        "next_update": _time_json(signed_list.next_update),
    }


def _publication_from(data: dict[str, Any]) -> _Publication:
    return _Publication(
        operator=Operator(**data["operator"]),
        sequence=data["sequence"],
        issued_at=_time_from(data["issued_at"]),
        next_update=_time_from(data["next_update"]),
    )


def _service_json(service: Service) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": service.name,
        "kind": service.kind.value,
        "certificates": [_certificate_json(c) for c in service.certificates],
        "status_history": [
            {"status": change.status.value, "since": _time_json(change.since)}
            for change in service.status_history
        ],
    }
    if service.subject_kinds:
        data["subject_kinds"] = [kind.value for kind in service.subject_kinds]
    if service.levels:
        data["levels"] = [lv.name for lv in service.levels]
    if service.scope:
        data["scope"] = list(service.scope)
    return data


def _service_from(data: dict[str, Any], scheme: TrustScheme) -> Service:
    return Service(
        name=data["name"],
        kind=ServiceKind(data["kind"]),
        certificates=tuple(_certificate_from(c) for c in data["certificates"]),
        status_history=tuple(
            StatusChange(ServiceStatus(change["status"]), _time_from(change["since"]))
            for change in data["status_history"]
        ),
        subject_kinds=tuple(SubjectKind(kind) for kind in data.get("subject_kinds", ())),
        levels=tuple(scheme.level(name) for name in data.get("levels", ())),
        scope=tuple(data.get("scope", ())),
    )


def _trust_list_json(trust_list: TrustList) -> dict[str, Any]:
    return {
        "id": trust_list.id,
        "scheme": _scheme_json(trust_list.scheme),
        **_publication_json(trust_list),
        "providers": [
            {
                "name": provider.name,
                "country": provider.country,
                "organization_identifier": provider.organization_identifier,
                "services": [_service_json(service) for service in provider.services],
            }
            for provider in trust_list.providers
        ],
    }


def _trust_list_from(data: dict[str, Any]) -> TrustList:
    scheme = _scheme_from(data["scheme"])
    return TrustList(
        id=data["id"],
        scheme=scheme,
        **_publication_from(data),
        providers=tuple(
            Provider(
                name=provider["name"],
                country=provider["country"],
                organization_identifier=provider["organization_identifier"],
                services=tuple(_service_from(s, scheme) for s in provider["services"]),
            )
            for provider in data["providers"]
        ),
    )


def _lotl_json(lotl: Lotl) -> dict[str, Any]:
    return {
        "group": _scheme_json(lotl.group),
        **_publication_json(lotl),
        "pointers": [
            {
                "scheme": pointer.scheme,
                "country": pointer.country,
                "location": pointer.location,
                "signers": [_certificate_json(c) for c in pointer.signers],
            }
            for pointer in lotl.pointers
        ],
        "equivalences": [
            {
                "scheme": eq.scheme,
                "national": eq.national.dotted_string,
                "reference": eq.reference.dotted_string,
            }
            for eq in lotl.equivalences
        ],
        "next_signers": [_certificate_json(c) for c in lotl.next_signers],
    }


def _lotl_from(data: dict[str, Any]) -> Lotl:
    return Lotl(
        group=_scheme_from(data["group"]),
        **_publication_from(data),
        pointers=tuple(
            Pointer(
                scheme=pointer["scheme"],
                country=pointer["country"],
                location=pointer["location"],
                signers=tuple(_certificate_from(c) for c in pointer["signers"]),
            )
            for pointer in data["pointers"]
        ),
        equivalences=tuple(
            LevelEquivalence(
                scheme=eq["scheme"],
                national=x509.ObjectIdentifier(eq["national"]),
                reference=x509.ObjectIdentifier(eq["reference"]),
            )
            for eq in data["equivalences"]
        ),
        next_signers=tuple(_certificate_from(c) for c in data["next_signers"]),
    )


@functools.cache
def _document(data: bytes, document: str, what: str, source: str) -> dict[str, Any]:
    try:
        parsed = parse_json(data)
    except JwsFormatError as exc:
        raise MalformedListError(f"{what} {source}", str(exc)) from None
    if not isinstance(parsed, dict):
        raise MalformedListError(f"{what} {source}", "is not a JSON object")
    _check_against_schema(f"{what} {source}", document, parsed)
    return parsed


def trust_list_from_json(data: bytes, *, source: str = "") -> TrustList:
    """An unsigned trust list (the JSON a scheme operator drafts), checked against the schema."""
    try:
        return _trust_list_from(_document(data, "trust-list", "trust list", source))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedListError(f"trust list {source}", f"has an invalid value: {exc}") from None


def lotl_from_json(data: bytes, *, source: str = "") -> Lotl:
    """An unsigned LOTL (the JSON the group operator drafts), checked against the schema."""
    try:
        return _lotl_from(_document(data, "lotl", "LOTL", source))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedListError(f"LOTL {source}", f"has an invalid value: {exc}") from None


def trust_list_to_json(trust_list: TrustList) -> bytes:
    """The canonical JSON of a trust list (what its JWS signs)."""
    return canonical_json(_trust_list_json(trust_list))


def lotl_to_json(lotl: Lotl) -> bytes:
    """The canonical JSON of a LOTL (what its JWS signs)."""
    return canonical_json(_lotl_json(lotl))


def payload_of(data: bytes) -> dict[str, Any]:
    """The JSON payload of a signed list, WITHOUT verifying it: for display only."""
    try:
        jws = CompactJws.parse(data)
        parsed = parse_json(jws.payload_bytes())
    except JwsFormatError as exc:
        raise MalformedListError("list", str(exc)) from None
    if not isinstance(parsed, dict):
        raise MalformedListError("list", "its payload is not a JSON object")
    return parsed


def _validator(document: str) -> jsonschema.Draft202012Validator:
    """The validator of ``trust-list`` or ``lotl``; the LOTL schema refers to the other one."""
    folder = resources.files("trustbridge.trust") / "schemas"
    schemas = {
        name: json.loads((folder / f"{name}.schema.json").read_text(encoding="utf-8"))
        for name in ("trust-list", "lotl")
    }
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(
        (schema["$id"], DRAFT202012.create_resource(schema)) for schema in schemas.values()
    )
    return jsonschema.Draft202012Validator(schemas[document], registry=registry)


def _schema_violation(document: str, data: Any) -> jsonschema.ValidationError | None:
    """The most relevant schema violation of ``data``, if any."""
    violation: jsonschema.ValidationError | None = jsonschema.exceptions.best_match(
        _validator(document).iter_errors(data)
    )
    return violation


def _check_against_schema(list_name: str, document: str, data: dict[str, Any]) -> None:
    violation = _schema_violation(document, data)
    if violation is not None:
        raise InputError(f"{list_name}: {violation.json_path}: {violation.message}")


# -- publishing -------------------------------------------------------------------------------


def sign_trust_list(
    trust_list: TrustList, signer: Signer, *, chain: Sequence[x509.Certificate]
) -> bytes:
    """The trust list as a JWS compact serialization signed by ``signer``.

    ``chain`` is the signer's certificate chain, leaf first; it goes into ``x5c``. ``alg``
    follows the key type: ES256, ES384, EdDSA or RS256. Works with any :class:`Signer`,
    PKCS#11 tokens included.
    """
    payload = canonical_json(_trust_list_json(trust_list))
    return sign_compact(payload, signer=signer, chain=chain, typ=TRUST_LIST_TYPE)


def sign_lotl(lotl: Lotl, signer: Signer, *, chain: Sequence[x509.Certificate]) -> bytes:
    """The LOTL as a JWS compact serialization signed by ``signer``.

    As :func:`sign_trust_list`, with typ ``trustbridge-lotl+jws``.
    """
    payload = canonical_json(_lotl_json(lotl))
    return sign_compact(payload, signer=signer, chain=chain, typ=LOTL_TYPE)


# -- what a relying party remembers -----------------------------------------------------------


@dataclass(frozen=True)
class AcceptedList:
    """The newest version of one list a relying party accepted."""

    sequence: int
    #: SHA-256 of the signed payload, hex.
    digest: str


class ListState(Protocol):
    """What a relying party remembers between reads, for one LOTL and the lists it points to.

    Lists are keyed ``lotl:<group>`` and ``trust-list:<id>``. An implementation must keep what
    :meth:`accept` stored across restarts, and must never lower a stored sequence number.
    """

    def accepted(self, key: str) -> AcceptedList | None:
        """The newest accepted version of list ``key``, if any."""
        ...

    def lotl_signers(self) -> tuple[x509.Certificate, ...]:
        """The signer of the last accepted LOTL and the next signers that LOTL announced."""
        ...

    def accept(
        self,
        key: str,
        accepted: AcceptedList,
        *,
        lotl_signers: Sequence[x509.Certificate] | None = None,
    ) -> None:
        """Remember a list as accepted; for a LOTL, also its signer and announced signers."""
        ...


class MemoryListState:
    """A :class:`ListState` in memory, for one process (tests, short-lived tools)."""

    def __init__(self) -> None:
        self._lists: dict[str, AcceptedList] = {}
        self._lotl_signers: tuple[x509.Certificate, ...] = ()

    def accepted(self, key: str) -> AcceptedList | None:
        return self._lists.get(key)

    def lotl_signers(self) -> tuple[x509.Certificate, ...]:
        return self._lotl_signers

    def accept(
        self,
        key: str,
        accepted: AcceptedList,
        *,
        lotl_signers: Sequence[x509.Certificate] | None = None,
    ) -> None:
        previous = self._lists.get(key)
        if previous is None or previous.sequence <= accepted.sequence:
            self._lists[key] = accepted
        if lotl_signers is not None:
            self._lotl_signers = tuple(lotl_signers)


class FileListState:
    """A :class:`ListState` in a JSON file, replaced atomically on every change.

    Writers on one machine serialise on a lock file beside it. A file that cannot be read is
    an error, never an empty state: that would re-open the door to rollback.
    """

    _FORMAT = "trustbridge-list-state/1"

    def __init__(self, path: Path) -> None:
        self.path = path

    def accepted(self, key: str) -> AcceptedList | None:
        entry = self._load()["lists"].get(key)
        return None if entry is None else AcceptedList(entry["sequence"], entry["digest"])

    def lotl_signers(self) -> tuple[x509.Certificate, ...]:
        return tuple(_certificate_from(c) for c in self._load()["lotl_signers"])

    def accept(
        self,
        key: str,
        accepted: AcceptedList,
        *,
        lotl_signers: Sequence[x509.Certificate] | None = None,
    ) -> None:
        with self._locked():
            data = self._load()
            previous = data["lists"].get(key)
            if previous is None or previous["sequence"] <= accepted.sequence:
                data["lists"][key] = {"sequence": accepted.sequence, "digest": accepted.digest}
            if lotl_signers is not None:
                data["lotl_signers"] = [_certificate_json(c) for c in lotl_signers]
            self._save(data)

    def _error(self, problem: str) -> ListStateError:
        return ListStateError(f"list state {self.path}", problem)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115
        except OSError as exc:
            raise self._error(f"cannot lock: {exc.strerror}") from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"format": self._FORMAT, "lists": {}, "lotl_signers": []}
        except OSError as exc:
            raise self._error(f"cannot read: {exc.strerror}") from exc
        try:
            data = parse_json(raw)
        except JwsFormatError as exc:
            raise self._error(f"is damaged: {exc}") from exc
        if not (
            isinstance(data, dict)
            and data.get("format") == self._FORMAT
            and isinstance(data.get("lists"), dict)
            and all(
                isinstance(entry, dict)
                and type(entry.get("sequence")) is int
                and isinstance(entry.get("digest"), str)
                for entry in data["lists"].values()
            )
            and isinstance(data.get("lotl_signers"), list)
        ):
            raise self._error(f"is not a {self._FORMAT} file")
        return data

    def _save(self, data: dict[str, Any]) -> None:
        folder = self.path.parent
        try:
            fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(json.dumps(data, indent=1, sort_keys=True).encode())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            directory = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise self._error(f"cannot write: {exc.strerror}") from exc


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signed:
    """A payload whose signature verified under an authorized certificate."""

    signer: x509.Certificate
    payload: bytes
    document: dict[str, Any]

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()


def _describe(certificate: x509.Certificate) -> str:
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
    return f"{certificate.subject.rfc4514_string()} (SHA-256 {fingerprint})"


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _claimed_signer(jws: CompactJws) -> x509.Certificate | None:
    """The x5c leaf of a header that did not verify, if it can be read at all."""
    try:
        header = jws.header_json()
        return _certificate_from(header["x5c"][0])
    except (JwsFormatError, InputError, KeyError, IndexError, TypeError):
        return None


def _verify(
    data: bytes,
    *,
    list_name: str,
    typ: str,
    document: str,
    authorized: Sequence[x509.Certificate],
    authorized_as: str,
) -> _Signed:
    """Check a JWS against the authorized signers, then its header and the payload's schema.

    The signature is tried under each authorized key with the algorithm of that key, before
    anything in the header is believed: a changed header byte is tampering, not a new rule.
    """
    if len(data) > MAX_LIST_BYTES:
        raise MalformedListError(list_name, f"is larger than {MAX_LIST_BYTES} bytes")
    try:
        jws = CompactJws.parse(data)
    except JwsFormatError as exc:
        raise MalformedListError(list_name, f"is not a JWS compact serialization: {exc}") from exc
    try:
        signature = jws.signature_bytes()
    except JwsFormatError as exc:
        raise TamperedListError(list_name, f"its signature was altered: {exc}") from exc

    by_der = {_der(c): c for c in authorized}
    keys = {spki_der(c): c for c in by_der.values()}
    verifier = next((c for c in keys.values() if verifies(c, jws.signing_input, signature)), None)
    if verifier is None:
        claimed = _claimed_signer(jws)
        if claimed is not None and _der(claimed) not in by_der:
            raise UnauthorizedSignerError(
                list_name,
                f"is signed by {_describe(claimed)}, which is not {authorized_as}",
                signer=claimed,
            )
        raise TamperedListError(
            list_name,
            f"its signature does not verify under any signer {authorized_as}: "
            "the list or its header was changed after signing",
        )

    try:
        header = jws.header_json()
        payload = jws.payload_bytes()
    except JwsFormatError as exc:
        raise MalformedListError(list_name, f"has an unreadable header or payload: {exc}") from exc
    signer = _check_header(header, list_name=list_name, typ=typ, verifier=verifier, by_der=by_der)
    try:
        parsed = parse_json(payload)
    except JwsFormatError as exc:
        raise MalformedListError(list_name, f"payload is {exc}") from exc
    violation = _schema_violation(document, parsed)
    if violation is not None:
        raise MalformedListError(
            list_name,
            f"violates the {document} schema at {violation.json_path}: {violation.message}",
            path=violation.json_path,
        )
    return _Signed(signer=signer, payload=payload, document=parsed)


def _check_header(
    header: Any,
    *,
    list_name: str,
    typ: str,
    verifier: x509.Certificate,
    by_der: dict[bytes, x509.Certificate],
) -> x509.Certificate:
    """The signer certificate named by a verified header that says exactly what we expect."""
    if not isinstance(header, dict):
        raise MalformedListError(list_name, "its JWS header is not a JSON object")
    # RFC 7515 4.1.11: we understand no extension, so any other parameter (crit) is refused
    unexpected = sorted(set(header) - _HEADER_PARAMETERS)
    if unexpected:
        raise MalformedListError(
            list_name, f"its JWS header has unsupported parameters {unexpected}"
        )
    if header.get("typ") != typ:
        raise MalformedListError(list_name, f"has typ {header.get('typ')!r} instead of {typ!r}")
    expected_alg = algorithm_for(KeyType.of(verifier.public_key()))
    if header.get("alg") != expected_alg:
        raise MalformedListError(
            list_name, f"has alg {header.get('alg')!r}, but its signer's key signs {expected_alg}"
        )
    chain = header.get("x5c")
    if not (
        isinstance(chain, list)
        and 0 < len(chain) <= _MAX_CHAIN
        and all(isinstance(c, str) for c in chain)
    ):
        raise MalformedListError(
            list_name, f"its x5c must list 1 to {_MAX_CHAIN} base64 certificates"
        )
    try:
        leaf = _certificate_from(chain[0])
    except InputError as exc:
        raise MalformedListError(list_name, f"its x5c leaf is unreadable: {exc}") from exc
    signer = by_der.get(_der(leaf))
    if signer is None or spki_der(signer) != spki_der(verifier):
        raise UnauthorizedSignerError(
            list_name,
            f"names {_describe(leaf)} in x5c, which is not the authorized certificate that signed",
            signer=leaf,
        )
    return signer


def _check_version(
    state: ListState,
    *,
    key: str,
    list_name: str,
    sequence: int,
    digest: str,
) -> None:
    """Refuse a list older than, or different from, the newest one accepted under ``key``."""
    previous = state.accepted(key)
    if previous is None:
        return
    if sequence < previous.sequence:
        raise RollbackError(
            list_name,
            f"sequence {sequence} is older than sequence {previous.sequence}, accepted before",
            sequence=sequence,
            highest=previous.sequence,
        )
    if sequence == previous.sequence and digest != previous.digest:
        raise EquivocationError(
            list_name,
            f"differs from the sequence {sequence} accepted before: the publisher signed two "
            "different lists with one sequence number",
            sequence=sequence,
            highest=previous.sequence,
        )


def _check_freshness(
    *,
    list_name: str,
    issued_at: datetime,
    next_update: datetime,
    at: datetime,
    clock_skew: timedelta,
) -> None:
    if issued_at > at + clock_skew:
        raise NotYetValidListError(
            list_name,
            f"was issued at {issued_at.isoformat()}, after {at.isoformat()} "
            f"(allowed clock skew {clock_skew})",
            issued_at=issued_at,
        )
    if at > next_update:
        raise StaleListError(
            list_name,
            f"is stale: its next update was due at {next_update.isoformat()}, "
            f"before {at.isoformat()}",
            next_update=next_update,
        )


def _parsed(signed: _Signed, parse: Callable[[dict[str, Any]], _L], *, list_name: str) -> _L:
    """The list a verified payload holds; a value the schema lets through but the list refuses
    (an impossible date, an unknown level) makes it malformed."""
    try:
        return parse(signed.document)
    except InputError as exc:
        raise MalformedListError(list_name, exc.message) from exc
    except ValueError as exc:
        raise MalformedListError(list_name, f"has an invalid value: {exc}") from exc


def _remember(
    signed_list: TrustList | Lotl,
    signed: _Signed,
    state: ListState,
    *,
    key: str,
    at: datetime,
    clock_skew: timedelta,
    lotl_signers: Sequence[x509.Certificate] | None = None,
) -> None:
    """Accept a verified list under ``key`` in ``state`` unless it is older than (or, at the
    same sequence, differs from) the one accepted before, or is not fresh at ``at``."""
    _check_version(
        state,
        key=key,
        list_name=signed_list.name,
        sequence=signed_list.sequence,
        digest=signed.digest,
    )
    _check_freshness(
        list_name=signed_list.name,
        issued_at=signed_list.issued_at,
        next_update=signed_list.next_update,
        at=at,
        clock_skew=clock_skew,
    )
    state.accept(key, AcceptedList(signed_list.sequence, signed.digest), lotl_signers=lotl_signers)


def read_lotl(
    data: bytes,
    *,
    trusted_signers: Sequence[x509.Certificate],
    at: datetime,
    state: ListState,
    source: str | None = None,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> Lotl:
    """Verify and parse a signed LOTL, remembering it in ``state``; fail closed.

    Its signer must be one of ``trusted_signers`` (pinned) or one the last accepted LOTL
    announced in ``next_signers`` (or that LOTL's own signer). It must follow the LOTL schema,
    must not be older than (or, at the same sequence, differ from) the LOTL accepted before,
    and must be fresh at ``at``. ``source`` (a URL, a file) names the list in errors until its
    payload is verified.
    """
    at = ensure_utc(at)
    unverified = f"LOTL from {source}" if source else "LOTL"
    signed = _verify(
        data,
        list_name=unverified,
        typ=LOTL_TYPE,
        document="lotl",
        authorized=(*trusted_signers, *state.lotl_signers()),
        authorized_as="pinned or announced by the last accepted LOTL",
    )
    lotl = _parsed(signed, _lotl_from, list_name=unverified)
    _remember(
        lotl,
        signed,
        state,
        key=f"lotl:{lotl.group.code}",
        at=at,
        clock_skew=clock_skew,
        lotl_signers=(signed.signer, *lotl.next_signers),
    )
    return lotl


def read_trust_list(
    data: bytes,
    *,
    lotl: Lotl,
    at: datetime,
    state: ListState,
    source: str | None = None,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> TrustList:
    """Verify and parse a signed trust list, remembering it in ``state``; fail closed.

    Its signer must be one of the certificates that ``lotl``'s pointer for the list's scheme
    names. Schema, rollback and freshness are checked as for :func:`read_lotl`.
    """
    at = ensure_utc(at)
    unverified = f"trust list from {source}" if source else "trust list"
    signed = _verify(
        data,
        list_name=unverified,
        typ=TRUST_LIST_TYPE,
        document="trust-list",
        authorized=[c for pointer in lotl.pointers for c in pointer.signers],
        authorized_as=f"named by a pointer of {lotl.name}",
    )
    trust_list = _parsed(signed, _trust_list_from, list_name=unverified)
    pointer = lotl.pointer(trust_list.scheme.code)
    if pointer is None or _der(signed.signer) not in {_der(c) for c in pointer.signers}:
        raise UnauthorizedSignerError(
            trust_list.name,
            f"is signed by {_describe(signed.signer)}, which {lotl.name} does not name as a "
            f"signer of scheme {trust_list.scheme.code}",
            signer=signed.signer,
        )
    _remember(
        trust_list, signed, state, key=f"trust-list:{trust_list.id}", at=at, clock_skew=clock_skew
    )
    return trust_list
