"""A trust profile as an Asset Administration Shell submodel, and back.

:func:`to_submodel` writes a :class:`TrustProfile` as one ``TrustworthinessProfile`` submodel
(IDTA-01001, Details of the Asset Administration Shell, Part 1, v3.0) with the Eclipse BaSyx
Python SDK, so that a product's or organization's AAS can carry its trustworthiness claims;
:func:`to_json` wraps it in an AAS environment in the AAS JSON serialization. Layout::

    TrustworthinessProfile            semanticId SUBMODEL_SEMANTIC_ID, kind Instance
      SubjectId, Element, Name, Organization        xs:string
      PartNumber, SerialNumber, GlobalAssetId, Location   xs:string, where the subject has them
      Security, Safety, Privacy, Reliability, Resilience  one collection per characteristic
        Claim_<criterion>_<n>         one collection per claim
          Criterion, Scope, EvidenceKind, Issuer, IssuerId, CredentialId, Format, Route
                                      xs:string
          Level, AccreditedBy         xs:string, where known
          Value                       xs:boolean, xs:integer, xs:double or xs:string
          ValidFrom, ValidUntil       xs:dateTime, the claim's effective validity

:func:`from_json` and :func:`from_submodel` read such an export back into a
:class:`ProfileExport`. An export carries no signatures: it is a copy of what verification
established, for display and exchange, not evidence; rely on the credentials themselves.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from basyx.aas import model
from basyx.aas.adapter.json import object_store_to_json, read_aas_json_file
from pydantic import ValidationError

from trustbridge.clock import ensure_utc
from trustbridge.credentials.criteria import Characteristic, EvidenceKind, Value
from trustbridge.credentials.model import Claim, Issuer, ProfileSubject
from trustbridge.credentials.profile import ProfileClaim, TrustProfile
from trustbridge.errors import InputError

__all__ = [
    "SUBMODEL_ID_SHORT",
    "SUBMODEL_SEMANTIC_ID",
    "ExportedClaim",
    "ProfileExport",
    "claim_id_short",
    "from_json",
    "from_submodel",
    "submodel_id_for",
    "to_json",
    "to_submodel",
]

#: The semantic id of the submodel: our own IRI, versioned like IDTA submodel templates.
SUBMODEL_SEMANTIC_ID = "https://w3id.org/trustbridge/aas/TrustworthinessProfile/1/0"
SUBMODEL_ID_SHORT = "TrustworthinessProfile"

_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, SUBMODEL_SEMANTIC_ID)
_DESCRIPTION = (
    "Trustworthiness claims about the subject, exported by trustbridge from verified "
    "credentials. An export carries no signatures: rely on the credentials themselves."
)
_CHARACTERISTIC_ID_SHORTS = {c: c.value.capitalize() for c in Characteristic}
_CHARACTERISTIC_OF_ID_SHORT = {v: k for k, v in _CHARACTERISTIC_ID_SHORTS.items()}
# Subject member -> Property id_short; the first four are required.
_SUBJECT_PROPERTIES = {
    "id": "SubjectId",
    "element": "Element",
    "name": "Name",
    "organization": "Organization",
    "part_number": "PartNumber",
    "serial_number": "SerialNumber",
    "global_asset_id": "GlobalAssetId",
    "location": "Location",
}
_REQUIRED_SUBJECT = ("SubjectId", "Element", "Name", "Organization")
_CLAIM_PROPERTIES = frozenset(
    {
        "Criterion",
        "Value",
        "Scope",
        "EvidenceKind",
        "Issuer",
        "IssuerId",
        "CredentialId",
        "Format",
        "Route",
        "Level",
        "AccreditedBy",
        "ValidFrom",
        "ValidUntil",
    }
)
# Python type of a claim value -> XSD type (Part 1, DataTypeDefXsd); bool before int.
_VALUE_TYPES: tuple[tuple[type, model.DataTypeDefXsd], ...] = (
    (bool, model.datatypes.Boolean),
    (int, model.datatypes.Integer),
    (float, model.datatypes.Double),
    (str, model.datatypes.String),
)
_ID_SHORT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def submodel_id_for(subject_id: str) -> str:
    """The submodel id of ``subject_id``'s profile: a name-based UUID URN (RFC 9562 UUIDv5),
    the same for the same subject in every export."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, subject_id)}"


def claim_id_short(criterion: str, number: int) -> str:
    """The id_short of the ``number``-th claim on ``criterion`` in its characteristic:
    ``Claim_`` + the criterion with ``-`` as ``_`` + ``_number`` (AASd-002: letters, digits,
    underscore, starting with a letter)."""
    id_short = f"Claim_{criterion.replace('-', '_')}_{number}"
    if not _ID_SHORT.fullmatch(id_short) or len(id_short) > 128:
        raise InputError(f"criterion {criterion!r} cannot name an AAS element")
    return id_short


@dataclass(frozen=True)
class ExportedClaim:
    """One claim as an export carries it: what a :class:`ProfileClaim` said, unsigned."""

    characteristic: Characteristic
    criterion: str
    value: Value
    scope: str
    evidence: EvidenceKind
    issuer: Issuer
    credential_id: str
    format: str
    issuer_route: str
    issuer_level: str | None
    accredited_by: str | None
    valid_from: datetime
    valid_until: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "characteristic", Characteristic(self.characteristic))
        object.__setattr__(self, "evidence", EvidenceKind(self.evidence))
        object.__setattr__(self, "valid_from", ensure_utc(self.valid_from))
        object.__setattr__(self, "valid_until", ensure_utc(self.valid_until))
        try:
            Claim.model_validate(
                {
                    "characteristic": self.characteristic,
                    "criterion": self.criterion,
                    "value": self.value,
                    "scope": self.scope,
                }
            )
        except ValidationError as exc:
            raise InputError(f"claim {self.criterion!r}: {_problem(exc)}") from exc
        if self.valid_until <= self.valid_from:
            raise InputError(f"claim {self.criterion!r}: ValidUntil is not after ValidFrom")
        for name in ("credential_id", "format", "issuer_route"):
            if not getattr(self, name):
                raise InputError(f"claim {self.criterion!r}: {name} is empty")

    @classmethod
    def from_profile_claim(cls, claim: ProfileClaim) -> ExportedClaim:
        return cls(
            characteristic=claim.characteristic,
            criterion=claim.criterion,
            value=claim.value,
            scope=claim.scope,
            evidence=claim.evidence,
            issuer=claim.issuer,
            credential_id=claim.credential_id,
            format=claim.format,
            issuer_route=claim.issuer_route,
            issuer_level=claim.issuer_level,
            accredited_by=claim.accredited_by,
            valid_from=claim.valid_from,
            valid_until=claim.valid_until,
        )


@dataclass(frozen=True)
class ProfileExport:
    """A trust profile read back from an AAS export: the subject and its claims.

    An export carries no signatures and proves nothing: it is for display and exchange. To rely
    on a claim, obtain and verify the credential its ``credential_id`` names.
    """

    subject: ProfileSubject
    claims: tuple[ExportedClaim, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "claims", tuple(self.claims))

    @classmethod
    def from_profile(cls, profile: TrustProfile) -> ProfileExport:
        """What :func:`to_submodel` writes for ``profile``: claims by characteristic, in order."""
        return cls(
            subject=profile.subject,
            claims=tuple(
                ExportedClaim.from_profile_claim(claim)
                for claims in profile.by_characteristic().values()
                for claim in claims
            ),
        )

    def by_characteristic(self) -> dict[Characteristic, list[ExportedClaim]]:
        """The claims grouped by characteristic; every characteristic is a key, in enum order."""
        grouped: dict[Characteristic, list[ExportedClaim]] = {c: [] for c in Characteristic}
        for claim in self.claims:
            grouped[claim.characteristic].append(claim)
        return grouped


# -- writing ----------------------------------------------------------------------------------


def to_submodel(profile: TrustProfile | ProfileExport) -> model.Submodel:
    """The ``TrustworthinessProfile`` submodel of ``profile`` (layout: see the module)."""
    export = profile if isinstance(profile, ProfileExport) else ProfileExport.from_profile(profile)
    subject = export.subject
    elements: list[model.SubmodelElement] = [
        _text_property(id_short, getattr(subject, member))
        for member, id_short in _SUBJECT_PROPERTIES.items()
        if getattr(subject, member) is not None
    ]
    for characteristic, claims in export.by_characteristic().items():
        numbers: dict[str, int] = {}
        collections = []
        for claim in claims:
            numbers[claim.criterion] = numbers.get(claim.criterion, 0) + 1
            collections.append(_claim_collection(claim, numbers[claim.criterion]))
        elements.append(
            model.SubmodelElementCollection(
                _CHARACTERISTIC_ID_SHORTS[characteristic], value=collections
            )
        )
    return model.Submodel(
        id_=submodel_id_for(subject.id),
        submodel_element=elements,
        id_short=SUBMODEL_ID_SHORT,
        description=model.MultiLanguageTextType({"en": _DESCRIPTION}),
        semantic_id=_semantic_id(),
        kind=model.ModellingKind.INSTANCE,
    )


def to_json(profile: TrustProfile | ProfileExport) -> str:
    """An AAS environment in JSON holding the one submodel of ``profile``."""
    store: model.DictIdentifiableStore[model.Identifiable] = model.DictIdentifiableStore(
        [to_submodel(profile)]
    )
    return object_store_to_json(store, indent=2)


def _semantic_id() -> model.ExternalReference:
    return model.ExternalReference(
        (model.Key(model.KeyTypes.GLOBAL_REFERENCE, SUBMODEL_SEMANTIC_ID),)
    )


def _text_property(id_short: str, value: str) -> model.Property:
    return model.Property(id_short, model.datatypes.String, value=str(value))


def _claim_collection(claim: ExportedClaim, number: int) -> model.SubmodelElementCollection:
    value_type = next(xsd for python, xsd in _VALUE_TYPES if isinstance(claim.value, python))
    texts = {
        "Criterion": claim.criterion,
        "Scope": claim.scope,
        "EvidenceKind": claim.evidence.value,
        "Issuer": claim.issuer.name,
        "IssuerId": claim.issuer.id,
        "CredentialId": claim.credential_id,
        "Format": claim.format,
        "Route": claim.issuer_route,
        "Level": claim.issuer_level,
        "AccreditedBy": claim.accredited_by,
    }
    properties = [_text_property(k, v) for k, v in texts.items() if v is not None]
    properties += [
        model.Property("Value", value_type, value=claim.value),
        model.Property("ValidFrom", model.datatypes.DateTime, value=claim.valid_from),
        model.Property("ValidUntil", model.datatypes.DateTime, value=claim.valid_until),
    ]
    return model.SubmodelElementCollection(
        claim_id_short(claim.criterion, number), value=properties
    )


# -- reading ----------------------------------------------------------------------------------


def from_json(text: str) -> ProfileExport:
    """Read the ``TrustworthinessProfile`` submodel from an AAS environment in JSON.

    The environment must hold exactly one submodel with :data:`SUBMODEL_SEMANTIC_ID` (other
    submodels and shells are ignored). The result is an unsigned export, not verified claims.
    Raises :class:`~trustbridge.errors.InputError` naming the problem.
    """
    try:
        store = read_aas_json_file(io.StringIO(text), failsafe=False)
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        NotImplementedError,
        RecursionError,
        model.AASConstraintViolation,
    ) as exc:
        raise InputError(
            f"not an AAS environment in JSON: {_basyx_problem(exc)}",
            hint="export the profile with trustbridge.credentials.aas.to_json",
        ) from exc
    submodels = [item for item in store if isinstance(item, model.Submodel)]
    ours = [s for s in submodels if _has_our_semantic_id(s)]
    if len(ours) > 1:
        raise InputError(
            f"the AAS environment holds {len(ours)} submodels with semantic id "
            f"{SUBMODEL_SEMANTIC_ID}; expected one"
        )
    if not ours:
        named = [s for s in submodels if s.id_short == SUBMODEL_ID_SHORT]
        if len(named) == 1:
            return from_submodel(named[0])  # raises, naming the wrong semantic id
        raise InputError(
            f"the AAS environment holds no submodel with semantic id {SUBMODEL_SEMANTIC_ID}"
        )
    return from_submodel(ours[0])


def from_submodel(submodel: model.Submodel) -> ProfileExport:
    """Read a ``TrustworthinessProfile`` submodel (layout: see the module).

    The result is an unsigned export, not verified claims. Raises
    :class:`~trustbridge.errors.InputError` naming the element and the problem (a wrong semantic
    id, a missing or unexpected element, a value of the wrong type).
    """
    if not isinstance(submodel, model.Submodel):
        raise InputError(f"expected an AAS Submodel, not {type(submodel).__name__}")
    where = f"submodel {submodel.id}"
    if not _has_our_semantic_id(submodel):
        raise InputError(
            f"{where}: semantic id {_reference_text(submodel.semantic_id)}, "
            f"not {SUBMODEL_SEMANTIC_ID}"
        )
    if submodel.kind is not model.ModellingKind.INSTANCE:
        raise InputError(f"{where}: kind {submodel.kind.name}, not INSTANCE")
    properties: dict[str, model.Property] = {}
    collections: dict[Characteristic, model.SubmodelElementCollection] = {}
    for element in submodel.submodel_element:
        name = str(element.id_short)
        if isinstance(element, model.SubmodelElementCollection):
            characteristic = _CHARACTERISTIC_OF_ID_SHORT.get(name)
            if characteristic is None:
                raise InputError(f"{where}: unexpected collection {name}")
            collections[characteristic] = element
        elif isinstance(element, model.Property) and name in _SUBJECT_PROPERTIES.values():
            properties[name] = element
        else:
            raise InputError(f"{where}: unexpected element {name}")
    subject = _subject(properties, where)
    if submodel.id != submodel_id_for(subject.id):
        raise InputError(
            f"{where}: the id is not the one of subject {subject.id!r} "
            f"({submodel_id_for(subject.id)})"
        )
    claims = [
        _claim(characteristic, claim, f"{where}, {collections[characteristic].id_short}")
        for characteristic in Characteristic
        if characteristic in collections
        for claim in _claim_collections(collections[characteristic], where)
    ]
    return ProfileExport(subject=subject, claims=tuple(claims))


def _has_our_semantic_id(submodel: model.Submodel) -> bool:
    reference = submodel.semantic_id
    return (
        isinstance(reference, model.ExternalReference)
        and len(reference.key) == 1
        and reference.key[0].value == SUBMODEL_SEMANTIC_ID
    )


def _reference_text(reference: model.Reference | None) -> str:
    if reference is None:
        return "(none)"
    return "/".join(str(key.value) for key in reference.key)


def _subject(properties: Mapping[str, model.Property], where: str) -> ProfileSubject:
    for required in _REQUIRED_SUBJECT:
        if required not in properties:
            raise InputError(f"{where}: missing property {required}")
    members = {
        member: _text(properties[id_short], where)
        for member, id_short in _SUBJECT_PROPERTIES.items()
        if id_short in properties
    }
    try:
        return ProfileSubject.model_validate(members)
    except ValidationError as exc:
        raise InputError(f"{where}: not a valid subject: {_problem(exc)}") from exc


def _claim_collections(
    collection: model.SubmodelElementCollection, where: str
) -> Iterable[model.SubmodelElementCollection]:
    for element in collection.value:
        if not isinstance(element, model.SubmodelElementCollection):
            raise InputError(
                f"{where}, {collection.id_short}: unexpected element {element.id_short}"
            )
        yield element


def _claim(
    characteristic: Characteristic, collection: model.SubmodelElementCollection, where: str
) -> ExportedClaim:
    where = f"{where}.{collection.id_short}"
    properties: dict[str, model.Property] = {}
    for element in collection.value:
        name = str(element.id_short)
        if not isinstance(element, model.Property) or name not in _CLAIM_PROPERTIES:
            raise InputError(f"{where}: unexpected element {name}")
        properties[name] = element

    def text(name: str) -> str:
        if name not in properties:
            raise InputError(f"{where}: missing property {name}")
        return _text(properties[name], where)

    def optional(name: str) -> str | None:
        return _text(properties[name], where) if name in properties else None

    def time(name: str) -> datetime:
        if name not in properties:
            raise InputError(f"{where}: missing property {name}")
        return _time(properties[name], where)

    evidence = text("EvidenceKind")
    if evidence not in set(EvidenceKind):
        raise InputError(
            f"{where}: EvidenceKind {evidence!r} is not one of "
            f"{', '.join(k.value for k in EvidenceKind)}"
        )
    try:
        issuer = Issuer(id=text("IssuerId"), name=text("Issuer"))
    except ValidationError as exc:
        raise InputError(f"{where}: not a valid issuer: {_problem(exc)}") from exc
    if "Value" not in properties:
        raise InputError(f"{where}: missing property Value")
    try:
        return ExportedClaim(
            characteristic=characteristic,
            criterion=text("Criterion"),
            value=_value(properties["Value"], where),
            scope=text("Scope"),
            evidence=EvidenceKind(evidence),
            issuer=issuer,
            credential_id=text("CredentialId"),
            format=text("Format"),
            issuer_route=text("Route"),
            issuer_level=optional("Level"),
            accredited_by=optional("AccreditedBy"),
            valid_from=time("ValidFrom"),
            valid_until=time("ValidUntil"),
        )
    except InputError as exc:
        if exc.message.startswith(where):
            raise
        raise InputError(f"{where}: {exc.message}") from exc


def _typed(prop: model.Property, expected: model.DataTypeDefXsd, where: str) -> object:
    if prop.value_type is not expected:
        raise InputError(
            f"{where}: property {prop.id_short} has value type {_xsd(prop.value_type)}, "
            f"not {_xsd(expected)}"
        )
    if prop.value is None:
        raise InputError(f"{where}: property {prop.id_short} has no value")
    return prop.value


def _text(prop: model.Property, where: str) -> str:
    return str(_typed(prop, model.datatypes.String, where))


def _time(prop: model.Property, where: str) -> datetime:
    value = _typed(prop, model.datatypes.DateTime, where)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InputError(f"{where}: property {prop.id_short} has no time zone")
    return ensure_utc(value)


def _value(prop: model.Property, where: str) -> Value:
    for python, xsd in _VALUE_TYPES:
        if prop.value_type is xsd:
            value = _typed(prop, xsd, where)
            converted: Value = python(value)
            return converted
    raise InputError(
        f"{where}: property {prop.id_short} has value type {_xsd(prop.value_type)}, not one of "
        f"{', '.join(_xsd(xsd) for _, xsd in _VALUE_TYPES)}"
    )


def _xsd(value_type: model.DataTypeDefXsd) -> str:
    return model.datatypes.XSD_TYPE_NAMES.get(value_type, getattr(value_type, "__name__", "?"))


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _basyx_problem(exc: BaseException) -> str:
    # BaSyx appends the offending JSON object after " >>> "; the reason comes first.
    text = str(exc).split(" >>> ", 1)[0].strip().strip("'\"")
    return text[:300] or type(exc).__name__
