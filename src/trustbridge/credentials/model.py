"""Trust-profile credentials in the W3C Verifiable Credentials Data Model 2.0.

A :class:`TrustCredential` says that an issuer vouches for one or more :class:`Claim` s about a
:class:`ProfileSubject` (an organization, a system, a product, a person, a procedure or a data
set), backed by one piece of :class:`Evidence`: the subject's own self-declaration, a
conformity certificate, or an audit. The same credential is secured as ``vc+jwt`` (the VCDM
document is the JWT payload) or as ``dc+sd-jwt`` (the same members, selectively disclosable).

The models validate on construction and know nothing of signing: :mod:`.formats` secures them
and :mod:`.verify` checks them. Values are checked against the criteria catalogue by the issuer
and the verifier, not here.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import SchemaValidator

from trustbridge.clock import ensure_utc
from trustbridge.credentials.criteria import Characteristic, ElementKind, EvidenceKind
from trustbridge.credentials.errors import MalformedCredentialError, WrongTypeError
from trustbridge.credentials.status import StatusEntry, entries_from_json

__all__ = [
    "CREDENTIAL_TYPE",
    "PROFILE_CONTEXT",
    "VCDM_CONTEXT",
    "VCT",
    "Claim",
    "Evidence",
    "Issuer",
    "ProfileSubject",
    "TrustCredential",
    "Verdict",
    "issuer_id_for",
    "new_credential_id",
]

#: The VCDM 2.0 base context (must come first).
VCDM_CONTEXT = "https://www.w3.org/ns/credentials/v2"
#: The vocabulary of trustworthiness claims (claims, evidence kinds, subject elements).
PROFILE_CONTEXT = "https://w3id.org/trustbridge/trust-profile/v1"
#: The credential type next to ``VerifiableCredential``.
CREDENTIAL_TYPE = "TrustworthinessCredential"
#: The SD-JWT VC type of the same credential.
VCT = "https://w3id.org/trustbridge/vct/trustworthiness/v1"

_EVIDENCE_TYPES = {
    EvidenceKind.SELF_DECLARATION: "SelfDeclaration",
    EvidenceKind.CERTIFICATE: "ConformityCertificate",
    EvidenceKind.AUDIT: "AuditReport",
}
_KIND_OF_TYPE = {v: k for k, v in _EVIDENCE_TYPES.items()}
_ORG_URN = "urn:trustbridge:org:"
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")
_Value = bool | int | float | str


def issuer_id_for(organization_identifier: str) -> str:
    """The issuer (and organization subject) identifier: a URN over ETSI EN 319 412-1's id."""
    return f"{_ORG_URN}{organization_identifier}"


def new_credential_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _rfc3339(value: datetime) -> str:
    return ensure_utc(value).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, str_strip_whitespace=True
    )

    def json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ProfileSubject(_Model):
    """Whom the claims are about: one of the paper's key elements."""

    id: str
    element: ElementKind
    name: str = Field(min_length=1, max_length=256)
    #: ETSI EN 319 412-1 identifier of the organization the subject is, or belongs to (the
    #: manufacturer of a product, the operator of a system, the employer of a person).
    organization: str = Field(min_length=3, max_length=64)
    part_number: str | None = Field(None, alias="partNumber", max_length=128)
    serial_number: str | None = Field(None, alias="serialNumber", max_length=128)
    #: Asset Administration Shell ``globalAssetId`` of a product or component.
    global_asset_id: str | None = Field(None, alias="globalAssetId", max_length=2048)
    location: str | None = Field(None, max_length=256)

    @field_validator("id")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not _URI.match(value):
            raise ValueError(f"subject id {value!r} is not a URI")
        return value

    @model_validator(mode="after")
    def _organization_id(self) -> ProfileSubject:
        self._check_organization_id()
        return self

    def _check_organization_id(self) -> None:
        if self.element is ElementKind.ORGANIZATION and self.id != issuer_id_for(self.organization):
            raise ValueError(
                f"an organization's subject id must be {issuer_id_for(self.organization)!r}"
            )

    @classmethod
    def organization_of(
        cls, organization_identifier: str, name: str, *, location: str | None = None
    ) -> ProfileSubject:
        return cls.model_validate(
            {
                "id": issuer_id_for(organization_identifier),
                "element": ElementKind.ORGANIZATION,
                "name": name,
                "organization": organization_identifier,
                "location": location,
            }
        )


class Claim(_Model):
    """One trustworthiness statement: a criterion's value for a scope, for a period."""

    characteristic: Characteristic
    criterion: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    value: _Value
    scope: str = Field("", max_length=1024)
    valid_from: datetime | None = Field(None, alias="validFrom")
    valid_until: datetime | None = Field(None, alias="validUntil")

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else ensure_utc(value).replace(microsecond=0)

    @model_validator(mode="after")
    def _period(self) -> Claim:
        self._check_period()
        return self

    def _check_period(self) -> None:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError(f"claim {self.criterion}: validUntil must come after validFrom")


class Evidence(_Model):
    """What backs the claims: a self-declaration, a conformity certificate or an audit."""

    kind: EvidenceKind
    #: Certificate number, audit report number or declaration reference.
    reference: str | None = Field(None, max_length=256)
    #: Self-declaration: the statement, in the organization's words.
    statement: str | None = Field(None, max_length=4096)
    #: Audit: who audited (the person or team at the auditing body), when, what, the outcome.
    auditor: str | None = Field(None, max_length=256)
    date: _dt.date | None = None
    scope: str | None = Field(None, max_length=1024)
    findings: tuple[str, ...] = ()
    verdict: Literal["pass", "pass-with-findings", "fail"] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Evidence:
        self._check_complete()
        return self

    def _check_complete(self) -> None:
        if self.kind is EvidenceKind.AUDIT:
            # The auditor and scope may be withheld in a presentation (SD-JWT); an issuer
            # names them (see requests.credential_from_request).
            missing = [n for n in ("date", "verdict") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"audit evidence needs {', '.join(missing)}")
        elif self.findings or self.verdict:
            raise ValueError(f"{self.kind} evidence has no findings or verdict")

    def to_vc(self) -> dict[str, Any]:
        body = self.json_dict()
        body.pop("kind")
        if not body.get("findings"):
            body.pop("findings", None)
        return {"type": ["Evidence", _EVIDENCE_TYPES[self.kind]], **body}

    @classmethod
    def from_vc(cls, data: Mapping[str, Any]) -> Evidence:
        return cls.model_validate(cls.vc_fields(data))

    @staticmethod
    def vc_fields(data: Mapping[str, Any]) -> dict[str, Any]:
        """The model's fields from a VCDM ``evidence`` entry (its type names the kind)."""
        if not isinstance(data, dict) and not isinstance(data, Mapping):  # dict: no ABC check
            raise ValueError("an evidence entry must be an object")
        types = data.get("type")
        if not isinstance(types, list) or "Evidence" not in types:
            raise ValueError("evidence type must list 'Evidence'")
        kinds = [_KIND_OF_TYPE[t] for t in types if t in _KIND_OF_TYPE]
        if len(kinds) != 1:
            raise ValueError(f"evidence must be one of {sorted(_KIND_OF_TYPE)}")
        fields = {"kind": kinds[0], **data}
        del fields["type"]
        return fields


class Issuer(_Model):
    id: str
    name: str = Field(min_length=1, max_length=256)


class TrustCredential(_Model):
    """A trustworthiness credential, format-neutral."""

    id: str = Field(default_factory=new_credential_id)
    issuer: Issuer
    subject: ProfileSubject
    #: Empty only in a presentation that discloses none of them.
    claims: tuple[Claim, ...] = Field(max_length=64)
    evidence: Evidence
    valid_from: datetime
    valid_until: datetime
    status: tuple[StatusEntry, ...] = ()

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return ensure_utc(value).replace(microsecond=0)

    @model_validator(mode="after")
    def _consistent(self) -> TrustCredential:
        self._check_consistent()
        return self

    def _check_consistent(self) -> None:
        if self.valid_until <= self.valid_from:
            raise ValueError("validUntil must come after validFrom")
        criteria = [c.criterion for c in self.claims]
        if len(set(criteria)) != len(criteria):
            raise ValueError("a credential names each criterion once")

    @property
    def criteria(self) -> tuple[str, ...]:
        return tuple(c.criterion for c in self.claims)

    # -- VCDM 2.0 ---------------------------------------------------------------------------

    def subject_json(self, claims: Sequence[Claim] | None = None) -> dict[str, Any]:
        subject = self.subject.json_dict()
        subject["type"] = subject.pop("element")
        subject["claims"] = [c.json_dict() for c in (self.claims if claims is None else claims)]
        return subject

    def to_vc(self) -> dict[str, Any]:
        """The VCDM 2.0 document (the ``vc+jwt`` payload, without the JWT claims)."""
        document: dict[str, Any] = {
            "@context": [VCDM_CONTEXT, PROFILE_CONTEXT],
            "id": self.id,
            "type": ["VerifiableCredential", CREDENTIAL_TYPE],
            "issuer": self.issuer.json_dict(),
            "validFrom": _rfc3339(self.valid_from),
            "validUntil": _rfc3339(self.valid_until),
            "credentialSubject": self.subject_json(),
            "evidence": [self.evidence.to_vc()],
        }
        if self.status:
            document["credentialStatus"] = [entry.to_json() for entry in self.status]
        return document

    @classmethod
    def from_vc(
        cls, document: Mapping[str, Any], *, source: str = "", require_context: bool = True
    ) -> TrustCredential:
        """Read a VCDM document; ``require_context`` is off for SD-JWT VC (``vct`` instead)."""
        if require_context:
            context = document.get("@context")
            if not isinstance(context, list) or not (context and context[0] == VCDM_CONTEXT):
                raise WrongTypeError(f"@context must start with {VCDM_CONTEXT}", source=source)
            if PROFILE_CONTEXT not in context:
                raise WrongTypeError(f"@context does not name {PROFILE_CONTEXT}", source=source)
        types = document.get("type")
        if (
            not isinstance(types, list)
            or not all(isinstance(t, str) for t in types)
            or not {"VerifiableCredential", CREDENTIAL_TYPE} <= set(types)
        ):
            raise WrongTypeError(
                f"type must list VerifiableCredential and {CREDENTIAL_TYPE}, not {types!r}",
                source=source,
            )
        try:
            subject = dict(document["credentialSubject"])
            claims = subject.pop("claims")
            subject["element"] = subject.pop("type", None)
            evidence = document["evidence"]
            if not isinstance(evidence, list) or len(evidence) != 1:
                raise ValueError("a trustworthiness credential has exactly one evidence entry")
            status_json = document.get("credentialStatus")
            fields = {
                "id": document["id"],
                "issuer": document["issuer"],
                "subject": subject,
                "claims": claims,
                "evidence": Evidence.vc_fields(evidence[0]),
                "valid_from": _parse_time(document["validFrom"]),
                "valid_until": _parse_time(document["validUntil"]),
                "status": entries_from_json(status_json) if status_json is not None else (),
            }
            # One validation pass over the whole document (pydantic-core, not per part); the
            # full one, which names the problem, where the quick one does not accept.
            credential = _validated(fields)
            return credential if credential is not None else cls.model_validate(fields)
        except MalformedCredentialError:
            raise
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise MalformedCredentialError(
                f"not a trustworthiness credential: {_problem(exc)}", source=source
            ) from exc


class Verdict(BaseModel):
    """What verification established: the credential and every reason it is trusted."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    credential: TrustCredential
    format: Literal["vc+jwt", "dc+sd-jwt"]
    #: The issuer's organization identity (the ``x5c`` leaf), RFC 4514.
    issuer_identity: str
    #: How the issuer's identity resolved now: route and reference level.
    issuer_route: str
    issuer_level: str | None
    #: The trust list service that accredits the issuer (None for a self-declaration).
    accredited_by: str | None
    #: Paths the presentation disclosed (SD-JWT); empty for ``vc+jwt``.
    disclosed: tuple[str, ...] = ()
    holder_bound: bool
    #: The public JWK (``cnf.jwk``) the presentation proved possession of; None for a bare
    #: credential.
    holder_jwk: dict[str, Any] | None = None
    reasons: tuple[str, ...]
    verified_at: datetime


def _without_validators(model: type[BaseModel], names: frozenset[str]) -> SchemaValidator | None:
    """``model``'s own pydantic-core validation without the after-validators of this module
    named (by qualified name) in ``names``; None unless the schema calls each of them. (Where
    pydantic-core reuses a nested model's own validator instead, that one keeps its checks:
    never fewer.)"""
    found: set[str] = set()

    def strip(node: Any) -> Any:
        if isinstance(node, list):
            return [strip(item) for item in node]
        if not isinstance(node, dict):
            return node
        if node.get("type") == "function-after":
            function = node["function"]["function"]
            name = getattr(function, "__qualname__", "")
            if name in names and getattr(function, "__module__", None) == __name__:
                found.add(name)
                return strip(node["schema"])
        return {
            key: value if key in ("metadata", "serialization") else strip(value)
            for key, value in node.items()
        }

    try:
        validator = SchemaValidator(strip(model.__pydantic_core_schema__))
    except Exception:  # a schema this module does not know how to take apart: no quick path
        return None
    return validator if found == names else None


#: TrustCredential's validation without the Python validators :func:`_validated` calls itself.
_QUICK_CREDENTIAL = _without_validators(
    TrustCredential,
    frozenset(
        {
            "ProfileSubject._uri",
            "ProfileSubject._organization_id",
            "Claim._period",
            "Evidence._complete",
            "TrustCredential._utc",
            "TrustCredential._consistent",
        }
    ),
)


def _validated(fields: Mapping[str, Any]) -> TrustCredential | None:
    """``TrustCredential.model_validate(fields)`` for a valid credential, quicker; None where it
    is not accepted this way (the caller validates it the full way, which names the problem).

    pydantic-core calling a Python validator costs several times the validator itself; here the
    schema leaves out the model's Python validators and they are called directly, in one pass.
    ``_utc`` is left out only for times it leaves as they are (UTC, whole seconds, as
    ``_parse_time`` and an issuer give them); every other value takes the full way.
    """
    if _QUICK_CREDENTIAL is None:
        return None
    for name in ("valid_from", "valid_until"):
        value = fields[name]
        if type(value) is not datetime or value.tzinfo is not UTC or value.microsecond:
            return None
    try:
        credential: TrustCredential = _QUICK_CREDENTIAL.validate_python(fields)
        if type(credential) is not TrustCredential:
            return None
        # The validators the schema leaves out, called here: each raises ValueError where it
        # would have made pydantic refuse.
        subject = credential.subject
        if ProfileSubject._uri(subject.id) is not subject.id:  # it returns what it was given
            return None
        subject._check_organization_id()
        for claim in credential.claims:
            claim._check_period()
        credential.evidence._check_complete()
        credential._check_consistent()
    except Exception:  # refused: the full validation says why
        return None
    return credential


def _new_verdict(
    *,
    credential: TrustCredential,
    format: Literal["vc+jwt", "dc+sd-jwt"],
    issuer_identity: str,
    issuer_route: str,
    issuer_level: str | None,
    accredited_by: str | None,
    disclosed: tuple[str, ...],
    holder_jwk: dict[str, Any] | None,
    reasons: tuple[str, ...],
    verified_at: datetime,
) -> Verdict:
    """The Verdict of what verification established, built from values of these exact types
    (as ``model_construct`` builds a model from trusted values, at a fraction of its cost):
    pydantic would only check again what verification made and typed. Where this pydantic keeps
    other state in a model, :func:`_verdict_builds` said so at import: validated as usual."""
    fields: dict[str, Any] = {
        "credential": credential,
        "format": format,
        "issuer_identity": issuer_identity,
        "issuer_route": issuer_route,
        "issuer_level": issuer_level,
        "accredited_by": accredited_by,
        "disclosed": disclosed,
        "holder_bound": holder_jwk is not None,
        "holder_jwk": None if holder_jwk is None else dict(holder_jwk),
        "reasons": reasons,
        "verified_at": verified_at,
    }
    return _built(fields) if _BUILDS else Verdict.model_validate(fields)


_set_attribute = object.__setattr__


def _built(fields: dict[str, Any]) -> Verdict:
    """A Verdict of ``fields`` (all of them), as ``Verdict.model_construct(**fields)`` makes it."""
    verdict = Verdict.__new__(Verdict)
    _set_attribute(verdict, "__dict__", fields)
    _set_attribute(verdict, "__pydantic_fields_set__", set(fields))
    _set_attribute(verdict, "__pydantic_extra__", None)
    _set_attribute(verdict, "__pydantic_private__", None)
    return verdict


def _verdict_builds() -> bool:
    """Whether :func:`_built` gives the instance ``model_construct`` gives (the whole pickled
    state of a pydantic model: its fields, which were set, extra and private values)."""
    fields: dict[str, Any] = {name: object() for name in Verdict.model_fields}
    try:
        built = _built(dict(fields)).__getstate__()
        return bool(built == Verdict.model_construct(**fields).__getstate__())
    except Exception:  # a pydantic that builds models otherwise
        return False


_BUILDS = _verdict_builds()


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"time {value!r} is not a string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no time zone")
    return parsed.astimezone(UTC)


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    if isinstance(exc, KeyError):
        return f"missing member {exc.args[0]!r}"
    return str(exc)
