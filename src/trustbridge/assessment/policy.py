"""Requirement policies: what a relying party requires of a partner, for one relationship and risk.

A policy is a YAML file checked against ``schemas/policy.schema.json`` and then against the
criteria catalogue: every criterion must exist, every minimum must be a valid value of its
criterion, the required evidence must be one the criterion can have, a criterion sits under its
own characteristic, and the thresholds must not contradict each other. Errors name the file, the
JSON path and the line.
"""

from __future__ import annotations

import enum
import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from trustbridge._yamldoc import DocumentError, line_of, load, read_text
from trustbridge.credentials.criteria import (
    BooleanSpec,
    Catalogue,
    Characteristic,
    ChoiceSpec,
    Criterion,
    ElementKind,
    EvidenceKind,
    Value,
)
from trustbridge.errors import InputError
from trustbridge.trust.reference import ITG

__all__ = [
    "CharacteristicPolicy",
    "Decision",
    "PolicyFileError",
    "Requirement",
    "RequirementPolicy",
    "Risk",
    "SupplierPolicy",
    "shipped_policy",
]

MAX_POLICY_BYTES = 256 * 1024

#: Defaults where a policy is silent.
DEFAULT_MAX_AGE_DAYS = 1095
DEFAULT_MIN_CONFIDENCE = 0.5


class PolicyFileError(DocumentError):
    """A requirement policy that cannot be read, is not YAML, or does not validate."""


class Risk(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Decision(enum.StrEnum):
    """The outcome of an assessment, best first."""

    ACCEPT = "accept"
    CONDITIONS = "accept-with-conditions"
    REJECT = "reject"

    @property
    def rank(self) -> int:
        """2 for accept, 1 for accept-with-conditions, 0 for reject."""
        return {Decision.ACCEPT: 2, Decision.CONDITIONS: 1, Decision.REJECT: 0}[self]

    def at_most(self, cap: Decision) -> Decision:
        """This decision, lowered to ``cap`` where ``cap`` is worse."""
        return self if self.rank <= cap.rank else cap


@dataclass(frozen=True)
class Requirement:
    """One criterion the partner must meet, and how well it must be backed."""

    criterion: Criterion
    characteristic: Characteristic
    #: The lowest acceptable value (a choice: the required choice); None accepts any valid value.
    minimum: Value | None
    evidence: EvidenceKind
    max_age: timedelta
    weight: float
    mandatory: bool
    #: Only claims about this kind of element count (a product's SIL, a plant's audit).
    element: ElementKind | None
    #: What the partner must do if this is all that is missing (accept-with-conditions).
    condition: str | None

    @property
    def id(self) -> str:
        return self.criterion.id

    def accepts(self, value: Value) -> bool:
        """Whether a claim's ``value`` is good enough."""
        return self.minimum is None or self.criterion.meets(value, self.minimum)

    def describe(self) -> str:
        """What would satisfy this requirement, in words."""
        kinds = [k for k in self.criterion.evidence if k.at_least(self.evidence)]
        backed = " or ".join(ARTICLE[k] for k in sorted(kinds, key=lambda k: k.strength))
        boolean = isinstance(self.criterion.value, BooleanSpec)
        value = (
            ""
            if self.minimum is None or boolean
            else f" of {_value_text(self.criterion, self.minimum)}"
        )
        about = f" about the {self.element}" if self.element else ""
        return (
            f"{backed} for {self.criterion.id}{value}{about}, "
            f"no older than {self.max_age.days} days"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion.id,
            "title": self.criterion.title,
            "minimum": self.minimum,
            "evidence": self.evidence.value,
            "max_age_days": self.max_age.days,
            "weight": self.weight,
            "mandatory": self.mandatory,
            "element": None if self.element is None else self.element.value,
        }


#: How reasons name a kind of evidence ("a certificate", "an audit").
ARTICLE = {
    EvidenceKind.SELF_DECLARATION: "a self-declaration",
    EvidenceKind.CERTIFICATE: "a certificate",
    EvidenceKind.AUDIT: "an audit",
}


def _value_text(criterion: Criterion, minimum: Value) -> str:
    if isinstance(criterion.value, ChoiceSpec):
        return repr(minimum)
    return f"{minimum} or better"


@dataclass(frozen=True)
class CharacteristicPolicy:
    """The requirements for one characteristic, its weight and the confidence it needs."""

    characteristic: Characteristic
    weight: float
    min_confidence: float
    requirements: tuple[Requirement, ...]


@dataclass(frozen=True)
class SupplierPolicy:
    """How the partner's own suppliers (tier 2) enter its assessment."""

    policy: RequirementPolicy
    #: Each supplier presented must reach at least this decision.
    min_decision: Decision
    #: What becomes of the partner's decision when a supplier falls short, or too few are shown.
    on_failure: Decision
    #: How many assessed suppliers the partner must present.
    required: int
    #: How deep the supplier tree may go below the partner.
    max_depth: int


@dataclass(frozen=True)
class RequirementPolicy:
    """A relying party's requirements for one kind of relationship and its risk."""

    id: str
    title: str
    relationship: str
    risk: Risk
    #: The lowest reference level of the partner's organization identity, and its rank.
    min_level: str
    min_level_rank: int
    accept: float
    conditions: float
    characteristics: tuple[CharacteristicPolicy, ...]
    suppliers: SupplierPolicy | None
    source: str
    description: str = ""

    @classmethod
    def load(cls, path: Path, *, catalogue: Catalogue | None = None) -> RequirementPolicy:
        """Read and check the policy file ``path``."""
        source = str(path)
        text = read_text(path, source, MAX_POLICY_BYTES, PolicyFileError)
        return cls.parse(text, source=source, base=path.parent, catalogue=catalogue)

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        source: str,
        base: Path | None = None,
        catalogue: Catalogue | None = None,
    ) -> RequirementPolicy:
        """Check policy YAML ``text``; ``base`` is where supplier policy files are looked up."""
        data = load(text, source, _validator(), PolicyFileError, what="requirement policy")
        reader = _Reader(text, source, base, catalogue or Catalogue.default())
        reader.finite(data, [])
        return reader.policy(data, [])

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return tuple(r for c in self.characteristics for r in c.requirements)

    def to_json(self) -> dict[str, Any]:
        """The policy's identity (what an assessment records about it)."""
        return {
            "id": self.id,
            "title": self.title,
            "relationship": self.relationship,
            "risk": self.risk.value,
            "file": self.source,
        }


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    resource = resources.files("trustbridge.assessment") / "schemas" / "policy.schema.json"
    return jsonschema.Draft202012Validator(json.loads(resource.read_text(encoding="utf-8")))


def shipped_policy(name: str) -> Path:
    """The path of a policy shipped with trustbridge (``policies/NAME.yaml``)."""
    path = Path(str(resources.files("trustbridge.assessment") / "policies" / f"{name}.yaml"))
    if not path.is_file():
        raise InputError(f"trustbridge ships no requirement policy {name!r}")
    return path


class _Reader:
    """Turns schema-valid policy data into a checked :class:`RequirementPolicy`."""

    def __init__(self, text: str, source: str, base: Path | None, catalogue: Catalogue) -> None:
        self.text, self.source, self.base, self.catalogue = text, source, base, catalogue

    def fail(self, path: list[str | int], problem: str, hint: str | None = None) -> PolicyFileError:
        json_path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        return PolicyFileError(
            self.source, problem, json_path=json_path, line=line_of(self.text, path), hint=hint
        )

    def finite(self, data: Any, at: list[str | int]) -> None:
        """Refuse NaN and infinities anywhere (YAML ``.nan`` passes the schema's bounds, and
        every comparison with NaN is false: a threshold of NaN would never reject)."""
        if isinstance(data, float) and not math.isfinite(data):
            raise self.fail(at, f"{data} is not a finite number")
        if isinstance(data, Mapping):
            for key, value in data.items():
                self.finite(value, [*at, str(key)])
        elif isinstance(data, list):
            for index, value in enumerate(data):
                self.finite(value, [*at, index])

    def policy(self, data: Mapping[str, Any], at: list[str | int]) -> RequirementPolicy:
        name = data["identity"]["min_level"]
        try:
            level = ITG.level(name)
        except InputError:
            known = ", ".join(lv.name for lv in ITG.levels)
            raise self.fail(
                [*at, "identity", "min_level"],
                f"unknown reference level {name!r}; expected one of {known}",
            ) from None
        thresholds = data["thresholds"]
        if thresholds["accept"] <= thresholds["conditions"]:
            raise self.fail(
                [*at, "thresholds"],
                f"the accept threshold ({thresholds['accept']}) must be above the "
                f"accept-with-conditions threshold ({thresholds['conditions']})",
            )
        defaults = data.get("defaults", {})
        characteristics = tuple(
            self.characteristic(Characteristic(key), entry, defaults, [*at, "characteristics", key])
            for key, entry in data["characteristics"].items()
        )
        seen: dict[str, str] = {}
        for characteristic in characteristics:
            for index, requirement in enumerate(characteristic.requirements):
                key = f"{requirement.id}/{requirement.element}"
                if key in seen:
                    where = [*at, "characteristics", characteristic.characteristic]
                    raise self.fail(
                        [*where, "requirements", index],
                        f"criterion {requirement.id} is required twice",
                    )
                seen[key] = characteristic.characteristic
        if sum(c.weight for c in characteristics) <= 0:
            raise self.fail([*at, "characteristics"], "all characteristics weigh 0")
        return RequirementPolicy(
            id=data["policy"],
            title=data["title"],
            relationship=data["relationship"],
            risk=Risk(data["risk"]),
            min_level=level.name,
            min_level_rank=level.rank,
            accept=float(thresholds["accept"]),
            conditions=float(thresholds["conditions"]),
            characteristics=characteristics,
            suppliers=self.suppliers(data["suppliers"], [*at, "suppliers"])
            if "suppliers" in data
            else None,
            source=self.source,
            description=data.get("description", "").strip(),
        )

    def characteristic(
        self,
        characteristic: Characteristic,
        data: Mapping[str, Any],
        defaults: Mapping[str, Any],
        at: list[str | int],
    ) -> CharacteristicPolicy:
        requirements = tuple(
            self.requirement(characteristic, entry, defaults, [*at, "requirements", index])
            for index, entry in enumerate(data["requirements"])
        )
        if sum(r.weight for r in requirements) <= 0:
            raise self.fail([*at, "requirements"], f"all {characteristic} requirements weigh 0")
        return CharacteristicPolicy(
            characteristic=characteristic,
            weight=float(data.get("weight", 1)),
            min_confidence=float(
                data.get("min_confidence", defaults.get("min_confidence", DEFAULT_MIN_CONFIDENCE))
            ),
            requirements=requirements,
        )

    def requirement(
        self,
        characteristic: Characteristic,
        data: Mapping[str, Any],
        defaults: Mapping[str, Any],
        at: list[str | int],
    ) -> Requirement:
        try:
            criterion = self.catalogue.get(data["criterion"])
        except InputError as exc:
            raise self.fail([*at, "criterion"], exc.message, exc.hint) from None
        if criterion.characteristic != characteristic:
            raise self.fail(
                [*at, "criterion"],
                f"criterion {criterion.id} is about {criterion.characteristic}, "
                f"not {characteristic}",
                hint=f"list it under characteristics.{criterion.characteristic}",
            )
        minimum: Value | None = None
        if "minimum" in data:
            try:
                minimum = criterion.check_value(data["minimum"])
            except InputError as exc:
                raise self.fail([*at, "minimum"], exc.message) from None
        elif isinstance(criterion.value, BooleanSpec):
            minimum = True  # a boolean criterion is met by a claim that it holds
        evidence = EvidenceKind(
            data.get("evidence", defaults.get("evidence", EvidenceKind.SELF_DECLARATION))
        )
        if not any(kind.at_least(evidence) for kind in criterion.evidence):
            admitted = ", ".join(criterion.evidence)
            raise self.fail(
                [*at, "evidence"],
                f"criterion {criterion.id} admits only {admitted} as evidence: "
                f"nothing could be as strong as {evidence}",
            )
        element = None
        if "element" in data:
            try:
                element = criterion.check_element(data["element"])
            except InputError as exc:
                raise self.fail([*at, "element"], exc.message) from None
        days = data.get("max_age_days", defaults.get("max_age_days", DEFAULT_MAX_AGE_DAYS))
        return Requirement(
            criterion=criterion,
            characteristic=characteristic,
            minimum=minimum,
            evidence=evidence,
            max_age=timedelta(days=days),
            weight=float(data.get("weight", 1)),
            mandatory=bool(data.get("mandatory", False)),
            element=element,
            condition=data.get("condition"),
        )

    def suppliers(self, data: Mapping[str, Any], at: list[str | int]) -> SupplierPolicy:
        nested = data["policy"]
        if isinstance(nested, str):
            if self.base is None:
                raise self.fail([*at, "policy"], "a supplier policy file needs a policy file")
            path = (self.base / nested).resolve()
            if str(path) == str(Path(self.source).resolve()):
                raise self.fail([*at, "policy"], "a policy cannot be its own supplier policy")
            try:
                policy = RequirementPolicy.load(path, catalogue=self.catalogue)
            except PolicyFileError as exc:
                raise self.fail([*at, "policy"], f"supplier policy: {exc.message}") from None
        else:
            violation = jsonschema.exceptions.best_match(_validator().iter_errors(nested))
            if violation is not None:
                raise self.fail(
                    [*at, "policy", *violation.absolute_path],
                    f"violates the requirement policy schema: {violation.message}",
                )
            policy = self.policy(nested, [*at, "policy"])
        minimum = Decision(data.get("min_decision", Decision.CONDITIONS))
        on_failure = Decision(data.get("on_failure", Decision.REJECT))
        if minimum is Decision.REJECT:
            raise self.fail([*at, "min_decision"], "a supplier's minimum decision cannot be reject")
        return SupplierPolicy(
            policy=policy,
            min_decision=minimum,
            on_failure=on_failure,
            required=int(data.get("required", 0)),
            max_depth=int(data.get("max_depth", 1)),
        )
