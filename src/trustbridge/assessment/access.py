"""Access policies in Cedar over the position paper's six key elements.

One schema (``cedar/schema.cedarschema``, namespace ``Trustbridge``) declares the entity types
Organization, Person, Component, Data, Procedure and System, plus the Contract under which data
is shared, and the actions read, write, share, sign, connect, operate and execute. Attributes
come from identities (:func:`entity_from_identity`), from verified trust profiles
(:func:`entity_from_profile`) and from plain data such as a contract's terms
(:func:`entity_from_data`); an :class:`EntityStore` holds them, parsed once, for many decisions.

:class:`AccessPolicies` are read from ``.cedar`` files, each policy annotated with ``@id`` and
``@reason`` and validated against the schema; a problem names the file, line and column.
:meth:`AccessPolicies.decide` answers an :class:`AccessRequest` with an :class:`AccessDecision`:
allowed or not, the policies that determined it and their reasons. Nothing permits by default,
a forbid overrides every permit, and a policy that cannot be evaluated denies (fail closed).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import cedarpy
from cryptography import x509
from cryptography.x509.oid import NameOID

from trustbridge.clock import ensure_utc
from trustbridge.credentials.criteria import ElementKind
from trustbridge.credentials.profile import TrustProfile
from trustbridge.credentials.verify import organization_identifier_of
from trustbridge.errors import AccessDeniedError, InputError
from trustbridge.pki.profiles import SubjectKind, roles_of, subject_kind_of
from trustbridge.trust.resolver import Resolution

__all__ = [
    "AccessDecision",
    "AccessPolicies",
    "AccessPolicy",
    "AccessRequest",
    "Action",
    "Entity",
    "EntityError",
    "EntityRef",
    "EntityStore",
    "EntityType",
    "PolicyDeniedError",
    "PolicyFileError",
    "PolicyProblem",
    "access_schema",
    "entity_from_data",
    "entity_from_identity",
    "entity_from_profile",
]

NAMESPACE = "Trustbridge"
#: Route of an entity whose identity was not resolved (or that has none); its level is 0.
NO_ROUTE = "none"
ROUTES = frozenset({"own-scheme", "bridge", "trust-list", NO_ROUTE})
#: Our assessment of an organization; ``unassessed`` until there is one.
ASSESSMENTS = frozenset({"accept", "accept-with-conditions", "reject", "unassessed"})


# -- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy file, at a 1-based line and column."""

    source: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"


class PolicyFileError(InputError):
    """Access policies that do not parse, do not match the schema, or lack ``@id``/``@reason``."""

    def __init__(self, problems: Sequence[PolicyProblem], *, hint: str | None = None) -> None:
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            message = str(self.problems[0])
        else:
            listed = "\n".join(f"  {p}" for p in self.problems)
            message = f"{len(self.problems)} problems in the access policies:\n{listed}"
        super().__init__(
            message,
            hint=hint
            or "fix the policy at that place; `trustbridge policy schema` prints the schema",
        )


class EntityError(InputError):
    """Entity data that does not fit the access schema (a field, a type, a reference)."""


class PolicyDeniedError(AccessDeniedError):
    """The access policies deny a request; ``decision`` says by which policies and why."""

    def __init__(self, decision: AccessDecision) -> None:
        super().__init__(decision.explain())
        self.decision = decision


# -- entities ---------------------------------------------------------------------------------


class EntityType(enum.StrEnum):
    """The key elements (and contracts) as Cedar entity types in the ``Trustbridge`` namespace."""

    ORGANIZATION = "Organization"
    PERSON = "Person"
    COMPONENT = "Component"
    SYSTEM = "System"
    PROCEDURE = "Procedure"
    DATA = "Data"
    CONTRACT = "Contract"

    @property
    def cedar(self) -> str:
        """The qualified type name, ``Trustbridge::Person``."""
        return f"{NAMESPACE}::{self.value}"

    @classmethod
    def parse(cls, text: str) -> EntityType:
        """``Person``, ``person`` or ``Trustbridge::Person``."""
        name = text.strip().removeprefix(f"{NAMESPACE}::")
        for member in cls:
            if member.value.lower() == name.lower():
                return member
        choices = ", ".join(m.value for m in cls)
        raise EntityError(f"unknown entity type {text!r}", hint=f"choose from: {choices}")


class Action(enum.StrEnum):
    """What a principal may do to a resource (``Trustbridge::Action::"read"``, ...)."""

    READ = "read"
    WRITE = "write"
    SHARE = "share"
    SIGN = "sign"
    CONNECT = "connect"
    OPERATE = "operate"
    EXECUTE = "execute"

    @classmethod
    def parse(cls, text: str) -> Action:
        """``read`` or ``Trustbridge::Action::"read"``."""
        match = re.fullmatch(rf'\s*(?:(?:{NAMESPACE}::)?Action::)?"?([a-z]+)"?\s*', text)
        try:
            return cls(match.group(1) if match else text)
        except ValueError:
            choices = ", ".join(a.value for a in cls)
            raise InputError(f"unknown action {text!r}", hint=f"choose from: {choices}") from None


_ACTION_UIDS = {a: {"type": f"{NAMESPACE}::Action", "id": a.value} for a in Action}
_REF_TEXT = re.compile(rf'\s*(?:{NAMESPACE}::)?([A-Za-z]+)::("(?:[^"\\]|\\.)*")\s*')


@dataclass(frozen=True)
class EntityRef:
    """A reference to one entity: its type and id (``Trustbridge::Person::"anna@..."``)."""

    type: EntityType
    id: str
    _uid: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise EntityError(f"{self.type.value} id must be a non-empty string, not {self.id!r}")
        object.__setattr__(self, "_uid", {"type": self.type.cedar, "id": self.id})

    @classmethod
    def parse(cls, text: str) -> EntityRef:
        """``Person::"id"`` or ``Trustbridge::Person::"id"`` (the id a JSON string)."""
        match = _REF_TEXT.fullmatch(text)
        if match is None:
            raise InputError(
                f"{text!r} is not an entity reference",
                hint='write it as Person::"anna@example.com"',
            )
        return cls(EntityType.parse(match.group(1)), json.loads(match.group(2)))

    def __str__(self) -> str:
        return f"{self.type.cedar}::{json.dumps(self.id, ensure_ascii=False)}"


# The attribute kinds of the schema, as the entity builders check them.
_Kind = Literal["string", "long", "strings", "datetime", "ref", "refs"]


@dataclass(frozen=True)
class _Attr:
    kind: _Kind
    target: EntityType | None = None
    required: bool = True


_S, _L, _SS, _T = _Attr("string"), _Attr("long"), _Attr("strings"), _Attr("datetime")
_ORG = _Attr("ref", EntityType.ORGANIZATION)
_IDENTITY = {"organization": _ORG, "reference_level": _L, "route": _S}

#: Mirrors ``cedar/schema.cedarschema`` (a test builds every attribute through Cedar's check).
_SPEC: dict[EntityType, dict[str, _Attr]] = {
    EntityType.ORGANIZATION: {
        "name": _S,
        **_IDENTITY,
        "country": _S,
        "criteria": _SS,
        "assessment": _S,
    },
    EntityType.PERSON: {"name": _S, **_IDENTITY, "country": _S, "criteria": _SS, "roles": _SS},
    EntityType.COMPONENT: {
        "name": _S,
        **_IDENTITY,
        "criteria": _SS,
        "part_number": _Attr("string", required=False),
        "serial_number": _Attr("string", required=False),
    },
    EntityType.SYSTEM: {"name": _S, **_IDENTITY, "criteria": _SS},
    EntityType.PROCEDURE: {"name": _S, "organization": _ORG, "criteria": _SS},
    EntityType.CONTRACT: {
        "parties": _Attr("refs", EntityType.ORGANIZATION),
        "purposes": _SS,
        "retention_days": _L,
        "valid_until": _Attr("datetime", required=False),
    },
    EntityType.DATA: {
        "name": _S,
        "organization": _ORG,
        "criteria": _SS,
        "category": _S,
        "contract": _Attr("ref", EntityType.CONTRACT, required=False),
        "shared_at": _Attr("datetime", required=False),
    },
}
_PARENTS: dict[EntityType, frozenset[EntityType]] = {
    EntityType.ORGANIZATION: frozenset(),
    EntityType.CONTRACT: frozenset(),
    EntityType.DATA: frozenset({EntityType.ORGANIZATION, EntityType.COMPONENT}),
    **{
        t: frozenset({EntityType.ORGANIZATION})
        for t in (EntityType.PERSON, EntityType.COMPONENT, EntityType.SYSTEM, EntityType.PROCEDURE)
    },
}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _check_value(entity: str, name: str, spec: _Attr, value: Any) -> None:
    where = f"{entity} attribute {name}"
    if spec.kind == "string":
        if not isinstance(value, str) or not value:
            raise EntityError(f"{where} must be a non-empty string, not {value!r}")
    elif spec.kind == "long":
        if isinstance(value, bool) or not isinstance(value, int):
            raise EntityError(f"{where} must be an integer, not {value!r}")
    elif spec.kind == "strings":
        if not isinstance(value, frozenset) or not all(
            isinstance(v, str) and _SLUG.match(v) for v in value
        ):
            raise EntityError(
                f"{where} must be a set of lowercase names, not {value!r}",
                hint="names such as iso-iec-27001 or quality-engineer",
            )
    elif spec.kind == "datetime":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise EntityError(f"{where} must be a time with a time zone, not {value!r}")
    elif spec.kind == "ref":
        if not isinstance(value, EntityRef) or value.type is not spec.target:
            raise EntityError(f"{where} must refer to a {spec.target}, not {value!r}")
    elif not isinstance(value, frozenset) or not all(
        isinstance(v, EntityRef) and v.type is spec.target for v in value
    ):
        raise EntityError(f"{where} must be a set of {spec.target} references, not {value!r}")


def _check_domain(entity: str, attrs: Mapping[str, Any]) -> None:
    """Value ranges the schema's types cannot say."""
    level = attrs.get("reference_level")
    if level is not None and not 0 <= level <= 3:
        raise EntityError(f"{entity}: reference_level {level} is not 0..3 (itg-loa1..3, 0: none)")
    route = attrs.get("route")
    if route is not None and route not in ROUTES:
        raise EntityError(f"{entity}: route {route!r} is none of {', '.join(sorted(ROUTES))}")
    if route == NO_ROUTE and level:
        raise EntityError(f"{entity}: an identity without a route has no reference level")
    assessment = attrs.get("assessment")
    if assessment is not None and assessment not in ASSESSMENTS:
        choices = ", ".join(sorted(ASSESSMENTS))
        raise EntityError(f"{entity}: assessment {assessment!r} is none of {choices}")
    country = attrs.get("country")
    if country is not None and not _COUNTRY.match(country):
        raise EntityError(f"{entity}: country {country!r} is not an ISO 3166 code such as DE")
    days = attrs.get("retention_days")
    if days is not None and days < 0:
        raise EntityError(f"{entity}: retention_days {days} is negative")


def _cedar_time(value: datetime) -> dict[str, Any]:
    return {"__extn": {"fn": "datetime", "arg": f"{ensure_utc(value):%Y-%m-%dT%H:%M:%SZ}"}}


def _cedar_value(value: Any) -> Any:
    if isinstance(value, EntityRef):
        return {"__entity": value._uid}
    if isinstance(value, datetime):
        return _cedar_time(value)
    if isinstance(value, frozenset):
        return [_cedar_value(v) for v in sorted(value, key=str)]
    return value


@dataclass(frozen=True)
class Entity:
    """One entity of the access schema: a reference, attributes and the entities it is in.

    Attributes hold Python values: ``str``, ``int``, ``frozenset`` of ``str`` or of
    :class:`EntityRef`, :class:`EntityRef` and aware ``datetime``. Construction checks them
    against the schema: every required attribute, no unknown one, the types, the value ranges,
    and that a member of an organization is ``in`` exactly that organization.
    """

    ref: EntityRef
    attrs: Mapping[str, Any]
    parents: frozenset[EntityRef] = frozenset()

    def __post_init__(self) -> None:
        spec = _SPEC[self.ref.type]
        attrs = dict(self.attrs)
        unknown = sorted(set(attrs) - set(spec))
        if unknown:
            raise EntityError(
                f"{self.ref}: unknown attribute {', '.join(unknown)}",
                hint=f"a {self.ref.type.value} has: {', '.join(spec)}",
            )
        for name, attr in spec.items():
            if name not in attrs:
                if attr.required:
                    raise EntityError(f"{self.ref}: attribute {name} is missing")
                continue
            if attr.kind == "datetime" and isinstance(attrs[name], datetime):
                attrs[name] = ensure_utc(attrs[name])
            _check_value(str(self.ref), name, attr, attrs[name])
        _check_domain(str(self.ref), attrs)
        parents = frozenset(self.parents)
        allowed = _PARENTS[self.ref.type]
        for parent in parents:
            if not isinstance(parent, EntityRef) or parent.type not in allowed:
                raise EntityError(f"{self.ref} cannot be in {parent}")
        organization = attrs.get("organization")
        if self.ref.type is EntityType.ORGANIZATION:
            if organization != self.ref:
                raise EntityError(f"{self.ref}: attribute organization must be itself")
        elif organization is not None:
            orgs = {p for p in parents if p.type is EntityType.ORGANIZATION}
            if orgs != {organization}:
                raise EntityError(
                    f"{self.ref} must be in its organization {organization} and no other"
                )
        object.__setattr__(self, "attrs", MappingProxyType(attrs))
        object.__setattr__(self, "parents", parents)

    @property
    def type(self) -> EntityType:
        return self.ref.type

    @property
    def id(self) -> str:
        return self.ref.id

    def references(self) -> Iterator[EntityRef]:
        """Every entity this one names: its parents and the entities its attributes refer to."""
        yield from self.parents
        for value in self.attrs.values():
            if isinstance(value, EntityRef):
                yield value
            elif isinstance(value, frozenset):
                yield from (v for v in value if isinstance(v, EntityRef))

    def to_cedar(self) -> dict[str, Any]:
        """The entity in Cedar's JSON entity format."""
        return {
            "uid": self.ref._uid,
            "attrs": {name: _cedar_value(value) for name, value in self.attrs.items()},
            "parents": [p._uid for p in sorted(self.parents, key=str)],
        }


# -- entity builders --------------------------------------------------------------------------


def _reference_level(value: Any, where: str) -> int:
    if isinstance(value, str):
        match = re.fullmatch(r"itg-loa([1-3])", value.strip())
        if match is None:
            raise EntityError(f"{where}: reference_level {value!r} is none of itg-loa1..3")
        return int(match.group(1))
    if isinstance(value, bool) or not isinstance(value, int):
        raise EntityError(f"{where}: reference_level must be itg-loa1..3 or 0..3, not {value!r}")
    return value


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise EntityError(f"{where} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise EntityError(f"{where} {value!r} needs a time zone", hint="append Z for UTC")
    return ensure_utc(moment)


def _names(value: Any, where: str) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise EntityError(f"{where} must be a list, not {value!r}")
    return frozenset(value)


def entity_from_data(
    data: Mapping[str, Any], *, entity_type: EntityType | None = None, source: str = ""
) -> Entity:
    """An entity from plain data (a YAML/JSON object, a contract's terms), friendly forms allowed.

    ``type`` and ``id`` name the entity (``entity_type`` may come as an argument instead, as for a
    contract's terms: ``{"id", "parties", "purposes", "retention_days", "valid_until"?}``).
    Other keys are its attributes, with references by id (``organization: VATDE-123456789``,
    ``parties: [...]``, ``contract: C-1``), ``reference_level`` as ``itg-loa2`` or 0..3, times
    as ISO 8601 strings; a Data item may name the ``component`` it describes. Defaults: no
    criteria or roles, ``reference_level`` 0 with route ``none``, assessment ``unassessed``.
    """
    prefix = f"{source}: " if source else ""
    if not isinstance(data, Mapping):
        raise EntityError(f"{prefix}an entity must be a mapping, not {data!r}")
    values = dict(data)
    given_type = values.pop("type", None)
    etype = entity_type
    if etype is None:
        if given_type is None:
            raise EntityError(f"{prefix}entity has no type", hint="add type: Person (or Data, ...)")
        etype = EntityType.parse(str(given_type))
    elif given_type is not None and EntityType.parse(str(given_type)) is not etype:
        raise EntityError(f"{prefix}entity type {given_type!r} is not a {etype.value}")
    entity_id = values.pop("id", None)
    if not isinstance(entity_id, str) or not entity_id.strip():
        raise EntityError(f"{prefix}{etype.value} has no id (a non-empty string)")
    ref = EntityRef(etype, entity_id)
    where = f"{prefix}{ref}"
    spec = _SPEC[etype]
    parents: set[EntityRef] = set()
    component = values.pop("component", None) if etype is EntityType.DATA else None
    if component is not None:
        parents.add(EntityRef(EntityType.COMPONENT, str(component)))
    if etype is EntityType.ORGANIZATION and values.setdefault("organization", entity_id) != (
        entity_id
    ):
        raise EntityError(f"{where}: organization must be the organization's own id")
    defaults: dict[str, Any] = {
        "criteria": (),
        "roles": (),
        "reference_level": 0,
        "route": NO_ROUTE,
        "assessment": "unassessed",
    }
    attrs: dict[str, Any] = {}
    for name, attr in spec.items():
        value = values.pop(name, defaults.get(name))
        if value is None:
            continue
        if name == "reference_level":
            value = _reference_level(value, where)
        elif attr.kind == "ref" and attr.target is not None:
            value = value if isinstance(value, EntityRef) else EntityRef(attr.target, str(value))
        elif attr.kind == "refs" and attr.target is not None:
            target = attr.target
            value = frozenset(
                v if isinstance(v, EntityRef) else EntityRef(target, str(v))
                for v in _names(value, f"{where} {name}")
            )
        elif attr.kind == "strings":
            value = _names(value, f"{where} {name}")
        elif attr.kind == "datetime":
            value = _time(value, f"{where} {name}")
        attrs[name] = value
    if values:
        raise EntityError(
            f"{where}: unknown field {', '.join(sorted(values))}",
            hint=f"a {etype.value} has: id, {', '.join(spec)}"
            + (", component" if etype is EntityType.DATA else ""),
        )
    if "organization" in attrs and etype is not EntityType.ORGANIZATION:
        parents.add(attrs["organization"])
    try:
        return Entity(ref, attrs, frozenset(parents))
    except EntityError as exc:
        raise EntityError(f"{prefix}{exc.message}", hint=exc.hint) from None


_ELEMENT_TYPES = {
    ElementKind.ORGANIZATION: EntityType.ORGANIZATION,
    ElementKind.PERSON: EntityType.PERSON,
    ElementKind.PRODUCT: EntityType.COMPONENT,
    ElementKind.SYSTEM: EntityType.SYSTEM,
    ElementKind.PROCEDURE: EntityType.PROCEDURE,
    ElementKind.DATA: EntityType.DATA,
}
_KIND_TYPES = {
    SubjectKind.ORGANIZATION: EntityType.ORGANIZATION,
    SubjectKind.PERSON: EntityType.PERSON,
    SubjectKind.MACHINE: EntityType.COMPONENT,
    SubjectKind.SOFTWARE: EntityType.SYSTEM,
}


def _criteria_held(profile: TrustProfile) -> list[str]:
    # A boolean claim of false states that the subject does not meet the criterion.
    return sorted({c.criterion for c in profile.claims if c.value is not False})


def entity_from_profile(profile: TrustProfile, **attributes: Any) -> Entity:
    """The entity a trust profile describes, holding the criteria of its verified claims.

    The element gives the type (a product is a Component), the subject its id (an
    organization's: its identifier), name and organization. ``attributes`` adds or overrides
    plain-data fields as for :func:`entity_from_data` (a Data item's ``category``, say). A
    boolean claim of ``false`` does not count as holding its criterion.
    """
    subject = profile.subject
    etype = _ELEMENT_TYPES[subject.element]
    data: dict[str, Any] = {
        "id": subject.organization if etype is EntityType.ORGANIZATION else subject.id,
        "name": subject.name,
        "organization": subject.organization,
        "criteria": _criteria_held(profile),
    }
    if etype is EntityType.COMPONENT:
        data |= {"part_number": subject.part_number, "serial_number": subject.serial_number}
    data = {k: v for k, v in data.items() if v is not None} | attributes
    return entity_from_data(data, entity_type=etype, source=f"trust profile of {subject.id}")


def _first(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = certificate.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _default_id(certificate: x509.Certificate, kind: SubjectKind) -> str:
    """A person's e-mail or serial number, a machine's or software's URI, else the DN."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    if kind is SubjectKind.PERSON:
        emails = san.get_values_for_type(x509.RFC822Name)
        found = emails[0] if emails else _first(certificate, NameOID.SERIAL_NUMBER)
    else:
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        found = uris[0] if uris else None
    return found or certificate.subject.rfc4514_string()


def entity_from_identity(
    certificate: x509.Certificate,
    resolution: Resolution | None,
    *,
    roles: Iterable[str] = (),
    profile: TrustProfile | None = None,
    assessment: str | None = None,
    organization: str | None = None,
    entity_id: str | None = None,
) -> Entity:
    """The entity a trustbridge identity certificate names, as the relying party sees it.

    The subject kind gives the type (organization, person, machine -> Component, software ->
    System); ``resolution`` (the trust resolver's answer for this certificate) the route and
    reference level, or route ``none`` and level 0 where it is None. A person's ``roles`` are
    those its certificate asserts plus ``roles`` (those its own organization assigns).
    ``profile`` adds the criteria of the subject's verified claims, ``assessment`` our
    assessment decision of an organization. ``organization`` names the organization a machine
    belongs to (its certificate carries none); ``entity_id`` overrides the default id (an
    organization's identifier, a person's e-mail or serial number, a machine's or software's
    URI).
    """
    kind = subject_kind_of(certificate)
    subject = certificate.subject.rfc4514_string()
    if kind is None:
        raise EntityError(f"certificate of {subject} is not a trustbridge identity (no kind)")
    etype = _KIND_TYPES[kind]
    if resolution is not None and resolution.path[-1] != certificate:
        raise EntityError(f"the trust resolution given is not about {subject}")
    stated = organization_identifier_of(certificate)
    if organization is not None and stated is not None and organization != stated:
        raise EntityError(f"{subject} belongs to {stated}, not {organization}")
    org = stated or organization
    if org is None:
        raise EntityError(
            f"certificate of {subject} names no organization identifier",
            hint="pass organization= (the identifier of the organization it belongs to)",
        )
    data: dict[str, Any] = {
        "id": entity_id
        or (org if etype is EntityType.ORGANIZATION else _default_id(certificate, kind)),
        "name": _first(certificate, NameOID.COMMON_NAME) or subject,
        "organization": org,
    }
    if resolution is not None:
        level = resolution.reference_level
        data["route"] = str(resolution.route)
        # Level 0 with a route: resolved, but no reference level maps to the holder's.
        data["reference_level"] = level.rank if level is not None else 0
    if etype in (EntityType.ORGANIZATION, EntityType.PERSON):
        data["country"] = _first(certificate, NameOID.COUNTRY_NAME)
    if etype is EntityType.PERSON:
        data["roles"] = sorted({r.value for r in roles_of(certificate)} | set(roles))
    elif roles:
        raise EntityError(f"{subject}: only a person has roles")
    if assessment is not None:
        if etype is not EntityType.ORGANIZATION:
            raise EntityError(f"{subject}: only an organization has an assessment")
        data["assessment"] = assessment
    if profile is not None:
        element = _ELEMENT_TYPES[profile.subject.element]
        if element is not etype or profile.subject.organization != org:
            raise EntityError(
                f"the trust profile of {profile.subject.id} ({profile.subject.element} of "
                f"{profile.subject.organization}) is not about {subject}"
            )
        data["criteria"] = _criteria_held(profile)
    return entity_from_data(data, entity_type=etype, source=f"identity {subject}")


# -- the schema and the entity store ----------------------------------------------------------


@cache
def access_schema() -> str:
    """The Cedar schema of the access policies (Cedar schema syntax)."""
    return (resources.files("trustbridge.assessment") / "cedar" / "schema.cedarschema").read_text(
        encoding="utf-8"
    )


@cache
def _schema() -> cedarpy.Schema:
    return cedarpy.Schema.from_str(access_schema())


class EntityStore:
    """A schema-checked set of entities, parsed once and reused across decisions (immutable).

    Every entity an entity names (its organization, a contract's parties, ...) must be in the
    store. :meth:`with_entities` adds some (the principal of one request, say) and returns a new
    store, parsing only what it adds.
    """

    def __init__(self, entities: Iterable[Entity] = ()) -> None:
        self._entities, self._handle = self._build({}, list(entities), None)

    @classmethod
    def from_data(cls, items: Sequence[Mapping[str, Any]], *, source: str = "") -> EntityStore:
        """A store from plain data, one :func:`entity_from_data` mapping per entity."""
        if isinstance(items, Mapping | str) or not isinstance(items, Sequence):
            raise EntityError(f"{source or 'entities'}: expected a list of entities")
        label = f"{source} " if source else ""
        return cls(
            entity_from_data(item, source=f"{label}entity {index}")
            for index, item in enumerate(items, start=1)
        )

    def with_entities(self, entities: Iterable[Entity]) -> EntityStore:
        """A new store: these entities and ours (whose parsed form is reused)."""
        store = EntityStore.__new__(EntityStore)
        store._entities, store._handle = self._build(self._entities, list(entities), self._handle)
        return store

    @staticmethod
    def _build(
        base: Mapping[EntityRef, Entity], added: list[Entity], handle: cedarpy.Entities | None
    ) -> tuple[Mapping[EntityRef, Entity], cedarpy.Entities]:
        entities = dict(base)
        for entity in added:
            if not isinstance(entity, Entity):
                raise EntityError(f"not an Entity: {entity!r}")
            if entity.ref in entities:
                raise EntityError(f"{entity.ref} is in the entity store twice")
            entities[entity.ref] = entity
        for entity in added:
            for ref in entity.references():
                if ref not in entities:
                    raise EntityError(
                        f"{entity.ref} names {ref}, which is not in the entity store",
                        hint="add that entity too",
                    )
        delta = json.dumps([e.to_cedar() for e in added])
        try:
            if handle is None:
                handle = cedarpy.Entities.from_json_str(delta, _schema())
            else:
                handle = handle.with_added_json_str(delta, _schema())
        except ValueError as exc:
            raise EntityError(f"the entities do not match the access schema: {exc}") from None
        return MappingProxyType(entities), handle

    def __contains__(self, ref: object) -> bool:
        return ref in self._entities

    def __len__(self) -> int:
        return len(self._entities)

    def __iter__(self) -> Iterator[Entity]:
        return iter(self._entities.values())

    def get(self, ref: EntityRef) -> Entity | None:
        return self._entities.get(ref)

    def cedar_entities(self) -> cedarpy.Entities:
        """The parsed Cedar entities (for a direct ``cedarpy`` call)."""
        return self._handle

    def to_cedar(self) -> list[dict[str, Any]]:
        """All entities in Cedar's JSON entity format."""
        return [e.to_cedar() for e in self._entities.values()]


# -- requests and decisions -------------------------------------------------------------------


@dataclass(frozen=True)
class AccessRequest:
    """May ``principal`` do ``action`` to ``resource`` at ``at``, for ``purpose``, acting
    through ``via``?"""

    principal: EntityRef
    action: Action
    _: KW_ONLY
    resource: EntityRef
    at: datetime
    #: What the principal wants the resource for; a contract's purposes must name it.
    purpose: str = ""
    #: The software or machine (System or Component) the principal acts through, where it acts
    #: through one: a person's OPC UA client application, say. The policies see its id,
    #: organization, reference level and route as ``context.via``.
    via: Entity | None = None
    _cedar: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("principal", "resource"):
            if not isinstance(getattr(self, name), EntityRef):
                raise InputError(f"the request's {name} must be an EntityRef")
        if not isinstance(self.purpose, str):
            raise InputError(f"the request's purpose must be a string, not {self.purpose!r}")
        object.__setattr__(self, "action", Action.parse(self.action))
        object.__setattr__(self, "at", ensure_utc(self.at))
        context: dict[str, Any] = {"now": _cedar_time(self.at), "purpose": self.purpose}
        if self.via is not None:
            context["via"] = _via_context(self.via)
        # Built once: a request decided against several stores costs no rebuilding.
        cedar = {
            "principal": self.principal._uid,
            "action": _ACTION_UIDS[self.action],
            "resource": self.resource._uid,
            "context": context,
        }
        object.__setattr__(self, "_cedar", cedar)

    def cedar_request(self) -> dict[str, Any]:
        """The request as ``cedarpy.is_authorized`` takes it."""
        return self._cedar

    def __str__(self) -> str:
        purpose = f" for {json.dumps(self.purpose, ensure_ascii=False)}" if self.purpose else ""
        via = f" via {self.via.ref}" if self.via is not None else ""
        return f"{self.principal} {self.action} {self.resource}{purpose}{via}"


def _via_context(via: Entity) -> dict[str, Any]:
    """``context.via`` of a request made through ``via`` (a System or Component entity)."""
    if not isinstance(via, Entity) or via.ref.type not in (
        EntityType.SYSTEM,
        EntityType.COMPONENT,
    ):
        raise InputError(
            f"a request can be made through software or a machine (a System or Component "
            f"entity), not {getattr(via, 'ref', via)!r}"
        )
    organization = via.attrs.get("organization")
    if not isinstance(organization, EntityRef):  # pragma: no cover - the entity checks it
        raise InputError(f"{via.ref} names no organization")
    return {
        "id": via.ref.id,
        "organization": {"__entity": organization._uid},
        "reference_level": int(via.attrs.get("reference_level", 0)),
        "route": str(via.attrs.get("route", NO_ROUTE)),
    }


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """The answer to an :class:`AccessRequest`: allowed or not, by which policies, and why.

    ``policies`` are the ids of the policies that determined the decision (the permits that
    allowed it, the forbids that denied it, or the policies whose evaluation failed) and
    ``reasons`` say why, one per policy; a default deny has no policy and the reason "no policy
    permits ...". ``errors`` are Cedar's evaluation errors, if any (they deny: fail closed).
    """

    request: AccessRequest
    allowed: bool
    policies: tuple[str, ...]
    reasons: tuple[str, ...]
    errors: tuple[str, ...] = ()

    @property
    def effect(self) -> Literal["allow", "deny"]:
        return "allow" if self.allowed else "deny"

    def explain(self) -> str:
        """One line: the decision, the request and the reasons."""
        return f"{self.effect}: {self.request}: {'; '.join(self.reasons)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.effect,
            "allowed": self.allowed,
            "principal": str(self.request.principal),
            "action": self.request.action.value,
            "resource": str(self.request.resource),
            "purpose": self.request.purpose,
            **({"via": str(self.request.via.ref)} if self.request.via is not None else {}),
            "at": f"{self.request.at:%Y-%m-%dT%H:%M:%SZ}",
            "policies": list(self.policies),
            "reasons": list(self.reasons),
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class AccessPolicy:
    """One loaded policy: its ``@id``, ``@reason``, effect and where it was written."""

    id: str
    reason: str
    effect: Literal["permit", "forbid"]
    source: str
    line: int
    column: int


_EVAL_ERROR = re.compile(r"^error while evaluating policy `(?P<id>[^`]*)`: (?P<detail>.*)$", re.S)


class AccessPolicies:
    """A validated set of access policies; make one with :meth:`load`, :meth:`from_sources` or
    :meth:`default`, then :meth:`decide` requests against an :class:`EntityStore`."""

    def __init__(self, policies: Sequence[AccessPolicy], policy_set: cedarpy.PolicySet) -> None:
        self._policies = tuple(policies)
        self._by_id = {p.id: p for p in self._policies}
        self._order = {p.id: i for i, p in enumerate(self._policies)}
        self._policy_set = policy_set
        self._schema = _schema()

    @classmethod
    def load(cls, paths: Sequence[Path]) -> AccessPolicies:
        """Read and validate ``.cedar`` files (a folder: its ``*.cedar`` files, sorted).

        Raises :class:`PolicyFileError` listing every problem, each with its file, line and
        column: a parse error, a policy the schema refuses, a missing or repeated ``@id``, a
        missing ``@reason``, a template, or no policy at all.
        """
        files: list[Path] = []
        for path in paths:
            files += sorted(path.glob("*.cedar")) if path.is_dir() else [path]
        sources = []
        for file in files:
            try:
                sources.append((str(file), file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                detail = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise InputError(f"cannot read access policies {file}: {detail}") from None
        return cls.from_sources(sources)

    @classmethod
    def from_sources(cls, sources: Sequence[tuple[str, str]]) -> AccessPolicies:
        """Validate policies given as ``(source name, Cedar text)`` pairs; as :meth:`load`."""
        problems: list[PolicyProblem] = []
        policies: list[AccessPolicy] = []
        static: dict[str, Any] = {}
        for source, text in sources:
            found: list[PolicyProblem] = []
            _read_source(source, text, policies, static, found)
            problems += sorted(found, key=lambda p: (p.line, p.column, p.message))
        if not problems and not policies:
            names = ", ".join(s for s, _ in sources) or "no files"
            problems.append(
                PolicyProblem(names, 1, 1, "no access policies (nothing would be allowed)")
            )
        if problems:
            raise PolicyFileError(problems)
        document = {"staticPolicies": static, "templates": {}, "templateLinks": []}
        return cls(policies, cedarpy.PolicySet.from_json_str(json.dumps(document)))

    @classmethod
    def default(cls) -> AccessPolicies:
        """The reference policies shipped in ``trustbridge/assessment/cedar`` (cached)."""
        return _default_policies()

    @property
    def policies(self) -> tuple[AccessPolicy, ...]:
        return self._policies

    def get(self, policy_id: str) -> AccessPolicy | None:
        return self._by_id.get(policy_id)

    def cedar_policies(self) -> cedarpy.PolicySet:
        """The parsed Cedar policy set, policies keyed by their ``@id``."""
        return self._policy_set

    def decide(self, request: AccessRequest, entities: EntityStore) -> AccessDecision:
        """Whether ``entities`` and these policies allow ``request``; never raises on a denial."""
        known = entities._entities
        if request.principal not in known or request.resource not in known:
            missing = (r for r in (request.principal, request.resource) if r not in known)
            reasons = tuple(f"{ref} is not in the entity store" for ref in missing)
            return AccessDecision(request, False, (), reasons)
        result = cedarpy.is_authorized(
            request._cedar, self._policy_set, entities._handle, self._schema
        )
        return self._decision(request, result)

    def enforce(self, request: AccessRequest, entities: EntityStore) -> AccessDecision:
        """The decision when it allows; raises :class:`PolicyDeniedError` when it denies."""
        decision = self.decide(request, entities)
        if not decision.allowed:
            raise PolicyDeniedError(decision)
        return decision

    def _decision(self, request: AccessRequest, result: cedarpy.AuthzResult) -> AccessDecision:
        diagnostics = result.diagnostics
        fired = diagnostics.reasons
        if len(fired) > 1:
            fired = sorted(fired, key=lambda i: self._order.get(i, len(self._order)))
        errors = tuple(diagnostics.errors)
        decision = result.decision
        if decision is cedarpy.Decision.Allow and not errors:
            return AccessDecision(request, True, tuple(fired), self._reasons(fired))
        if decision is cedarpy.Decision.Deny and fired:
            # Forbids that fired decide, whatever else failed to evaluate.
            return AccessDecision(request, False, tuple(fired), self._reasons(fired), errors)
        if decision is cedarpy.Decision.NoDecision:
            reasons = tuple(f"the request does not fit the access schema: {e}" for e in errors)
            return AccessDecision(request, False, (), reasons or ("no decision",), errors)
        if errors:
            failed: list[str] = []
            reasons_: list[str] = []
            for error in errors:
                match = _EVAL_ERROR.match(error)
                policy = match.group("id") if match else "?"
                detail = match.group("detail") if match else error
                if policy not in failed:
                    failed.append(policy)
                    reasons_.append(
                        f"policy {policy} could not be evaluated ({detail}): denied, fail closed"
                    )
            return AccessDecision(request, False, tuple(failed), tuple(reasons_), errors)
        verb = request.action.value
        reason = f"no policy permits {request.principal} to {verb} {request.resource}"
        return AccessDecision(request, False, (), (reason,))

    def _reasons(self, ids: Sequence[str]) -> tuple[str, ...]:
        return tuple(self._by_id[i].reason if i in self._by_id else i for i in ids)


@cache
def _default_policies() -> AccessPolicies:
    folder = resources.files("trustbridge.assessment") / "cedar"
    names = sorted(f.name for f in folder.iterdir() if f.name.endswith(".cedar"))
    return AccessPolicies.from_sources(
        [
            (f"trustbridge/assessment/cedar/{name}", (folder / name).read_text(encoding="utf-8"))
            for name in names
        ]
    )


# -- reading policy text, and finding where a problem is ----------------------------------------

_TOKEN = re.compile(
    r'(?P<space>\s+)|(?P<comment>//[^\n]*)|(?P<string>"(?:[^"\\\n]|\\.)*")'
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*|[0-9]+)|(?P<op>==|!=|<=|>=|&&|\|\||::|.)",
    re.S,
)
_POLICY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PARSE_EOF = "unexpected end of input"


@dataclass(frozen=True)
class _Statement:
    """One policy's text: from its first annotation to its ``;`` (token offsets)."""

    tokens: tuple[tuple[int, int], ...]
    #: Offset of the effect (``permit``/``forbid``), after the annotations.
    body: int

    @property
    def start(self) -> int:
        return self.tokens[0][0]

    @property
    def end(self) -> int:
        return self.tokens[-1][1]


def _statements(text: str) -> list[_Statement]:
    """Split policy text at top-level ``;`` (outside strings and comments)."""
    found: list[_Statement] = []
    tokens: list[tuple[int, int, str]] = []

    def close() -> None:
        if tokens:
            words = [w for _, _, w in tokens]
            index = 0
            while index < len(words) and words[index] == "@":  # @name or @name("text")
                index += 5 if words[index + 2 : index + 3] == ["("] else 2
            body = tokens[min(index, len(tokens) - 1)][0]
            found.append(_Statement(tuple((s, e) for s, e, _ in tokens), body))
            tokens.clear()

    for match in _TOKEN.finditer(text):
        if match.lastgroup in ("space", "comment"):
            continue
        tokens.append((match.start(), match.end(), match.group()))
        if match.group() == ";":
            close()
    close()
    return found


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _parse_error(source: str, text: str, statements: list[_Statement]) -> PolicyProblem:
    """Where the first policy that does not parse goes wrong: the first token after which no
    continuation can parse (Cedar's parser names the token, not its place)."""
    for statement in statements:
        try:
            cedarpy.policies_to_json_str(text[statement.start : statement.end])
        except ValueError as exc:
            message = str(exc)
            offset = statement.end
            for start, end in statement.tokens:
                try:
                    cedarpy.policies_to_json_str(text[statement.start : end])
                except ValueError as prefix_error:
                    if str(prefix_error) != _PARSE_EOF:
                        message, offset = str(prefix_error), start
                        break
            offset = _quoted_place(text, statement, message, before=offset)
            line, column = _position(text, offset)
            return PolicyProblem(source, line, column, f"does not parse: {message}")
    return PolicyProblem(source, 1, 1, "does not parse")


def _quoted_place(text: str, statement: _Statement, message: str, *, before: int) -> int:
    """Refine a parse error's place: the last name the message quotes at or before ``before``;
    a check Cedar makes after parsing (it points at the final ``;``) falls back to the start."""
    region = text[statement.start : before + 1]
    for name in re.findall(r"`([^`]+)`", message):
        found = region.rfind(name)
        if found >= 0:
            return statement.start + found
    if before == statement.tokens[-1][0] and text[before] == ";" and "`;`" not in message:
        return statement.start
    return before


def _validation_place(text: str, statement: _Statement, message: str) -> int:
    """The offset a schema error points at: the first name it quotes that the policy's body
    contains, else the policy's start."""
    body = text[statement.body : statement.end]
    for name in re.findall(r"`([^`]+)`", message):
        if re.fullmatch(r"policy\d+", name):
            continue
        pattern = rf"\b{re.escape(name)}\b" if re.fullmatch(r"\w+", name) else re.escape(name)
        match = re.search(pattern, body)
        if match:
            return statement.body + match.start()
    return statement.start


def _read_source(
    source: str,
    text: str,
    policies: list[AccessPolicy],
    static: dict[str, Any],
    problems: list[PolicyProblem],
) -> None:
    """Parse, check and validate one file's policies; collects them or the problems."""
    statements = _statements(text)
    try:
        document = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError:
        problems.append(_parse_error(source, text, statements))
        return

    def place(index: int) -> tuple[int, int]:
        if index < len(statements):
            return _position(text, statements[index].start)
        return 1, 1

    if document.get("templates"):
        slot = re.compile(r"\?(principal|resource)\b")
        template = next((s for s in statements if slot.search(text, s.start, s.end)), None)
        line, column = _position(text, template.start) if template else (1, 1)
        problems.append(
            PolicyProblem(source, line, column, "templates (?principal, ?resource) are not used")
        )
    entries = sorted(document.get("staticPolicies", {}).items(), key=lambda kv: int(kv[0][6:]))
    known = {p.id: p for p in policies}
    ids: dict[str, str] = {}
    for key, policy in entries:
        index = int(key[6:])
        line, column = place(index)
        annotations = policy.get("annotations") or {}
        policy_id, reason = annotations.get("id"), annotations.get("reason")
        label = f'policy "{policy_id}"' if policy_id else f"policy {index + 1}"
        if not policy_id:
            problems.append(PolicyProblem(source, line, column, f'{label} has no @id("...")'))
        elif not _POLICY_ID.match(policy_id):
            problems.append(
                PolicyProblem(
                    source, line, column, f"{label}: @id must be letters, digits, '.', '_', '-'"
                )
            )
        elif policy_id in known:
            first = known[policy_id]
            problems.append(
                PolicyProblem(
                    source,
                    line,
                    column,
                    f"{label} repeats the @id of the policy at {first.source}:{first.line}",
                )
            )
        if not reason or not str(reason).strip():
            problems.append(PolicyProblem(source, line, column, f'{label} has no @reason("...")'))
        if policy_id:
            ids[key] = policy_id
        if policy_id and reason and policy_id not in known and _POLICY_ID.match(policy_id):
            known[policy_id] = AccessPolicy(
                policy_id, str(reason), policy["effect"], source, line, column
            )
            policies.append(known[policy_id])
            static[policy_id] = policy
    result = cedarpy.validate_policies(text, _schema())
    for error in result.errors:
        message = re.sub(r"^for policy `policy\d+`, ", "", error.error)
        if error.policy_id.startswith("policy") and error.policy_id[6:].isdigit():
            index = int(error.policy_id[6:])
            label = (
                f'policy "{ids[error.policy_id]}"'
                if error.policy_id in ids
                else f"policy {index + 1}"
            )
            offset = (
                _validation_place(text, statements[index], message)
                if index < len(statements)
                else 0
            )
        else:
            label, offset = "policy", 0
        line, column = _position(text, offset)
        problems.append(
            PolicyProblem(source, line, column, f"{label} does not match the schema: {message}")
        )
