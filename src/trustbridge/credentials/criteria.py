"""The criteria catalogue: which criteria a trustworthiness claim can name, and their values.

A :class:`Criterion` names a standard or metric (``iec-62443-4-2``, ``mtbf``), the
characteristic it speaks to (security, safety, privacy, reliability, resilience), the key
elements of the position paper it can describe (an organization, a system, a product, a
person, a procedure, data), the type of its value (a level, a boolean, an integer, a number, a
choice) and the kinds of evidence that may back a claim about it (self-declaration, certificate,
audit). Its ``accreditation`` is the scope a trust list names for a conformity assessment body
or auditor that may issue certificates or audits for it.

The :class:`Catalogue` ships in ``credentials/criteria.yaml`` and can be extended with user YAML
files; every file is checked against ``credentials/schemas/criteria.schema.json`` (JSON Schema
Draft 2020-12) and refused with the file and the JSON path of the violation.
"""

from __future__ import annotations

import difflib
import enum
import functools
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar

import jsonschema

from trustbridge._yamldoc import DocumentError, line_of, load, read_text
from trustbridge.credentials.errors import (
    CriterionError,
    EvidenceNotAllowedError,
    UnknownCriterionError,
    ValueOutOfRangeError,
)

__all__ = [
    "MAX_CATALOGUE_BYTES",
    "Better",
    "BooleanSpec",
    "Catalogue",
    "CatalogueFileError",
    "Characteristic",
    "ChoiceSpec",
    "Criterion",
    "ElementKind",
    "EvidenceKind",
    "IntegerSpec",
    "LevelSpec",
    "NumberSpec",
    "Value",
    "ValueSpec",
]

#: The largest catalogue file the loader reads.
MAX_CATALOGUE_BYTES = 1024 * 1024

#: The value of a claim about a criterion: a level or choice name, a boolean, an integer or a
#: number, as :meth:`Criterion.check_value` returns it.
Value: TypeAlias = str | bool | int | float

#: Criterion identifiers and accreditation scopes, as the trust-list schema has them.
_ID_PATTERN = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_ID_MAX_LENGTH = 64


# -- vocabulary -------------------------------------------------------------------------------


class Characteristic(enum.StrEnum):
    """The trustworthiness characteristics of the position paper."""

    SECURITY = "security"
    SAFETY = "safety"
    PRIVACY = "privacy"
    RELIABILITY = "reliability"
    RESILIENCE = "resilience"


class EvidenceKind(enum.StrEnum):
    """What backs a claim: the claimant's own word, a certificate, or an audit."""

    SELF_DECLARATION = "self-declaration"
    CERTIFICATE = "certificate"
    AUDIT = "audit"

    @property
    def strength(self) -> int:
        """1 for a self-declaration, 2 for a certificate, 3 for an audit."""
        return _STRENGTH[self]

    def at_least(self, minimum: EvidenceKind) -> bool:
        """Whether this kind is as strong as ``minimum`` or stronger."""
        return self.strength >= minimum.strength

    @classmethod
    def by_strength(cls) -> tuple[EvidenceKind, ...]:
        """All kinds, weakest first."""
        return tuple(sorted(cls, key=lambda kind: kind.strength))

    @classmethod
    def strongest(cls, kinds: Iterable[EvidenceKind]) -> EvidenceKind:
        """The strongest of ``kinds``, which must not be empty."""
        chosen = max(kinds, key=lambda kind: kind.strength, default=None)
        if chosen is None:
            raise ValueError("no evidence kinds to choose the strongest from")
        return chosen


_STRENGTH: dict[EvidenceKind, int] = {
    EvidenceKind.SELF_DECLARATION: 1,
    EvidenceKind.CERTIFICATE: 2,
    EvidenceKind.AUDIT: 3,
}


class ElementKind(enum.StrEnum):
    """The position paper's key elements a trust profile can describe."""

    ORGANIZATION = "organization"
    #: A plant, a production line, a service.
    SYSTEM = "system"
    #: A product or a component.
    PRODUCT = "product"
    PERSON = "person"
    PROCEDURE = "procedure"
    DATA = "data"


class Better(enum.StrEnum):
    """Which end of an ordered value type is the better one."""

    HIGHER = "higher"
    LOWER = "lower"


# -- value types ------------------------------------------------------------------------------


def _sign(difference: float) -> int:
    return (difference > 0) - (difference < 0)


def _named(value: object, names: tuple[str, ...]) -> str | None:
    """The name in ``names`` that ``value`` spells, ignoring case and surrounding blanks."""
    if not isinstance(value, str):
        return None
    return _folded(names).get(value.strip().casefold())


@functools.lru_cache(maxsize=256)
def _folded(names: tuple[str, ...]) -> dict[str, str]:
    """Each name by its case-folded spelling; the first name wins a tie."""
    folded: dict[str, str] = {}
    for name in names:
        folded.setdefault(name.casefold(), name)
    return folded


def _check_names(names: tuple[str, ...], what: str) -> None:
    if not names:
        raise CriterionError(f"a {what} value type needs at least one name")
    if any(not isinstance(name, str) or not name.strip() for name in names):
        raise CriterionError(f"the {what} names must be non-empty strings: {list(names)}")
    folded = [name.strip().casefold() for name in names]
    if len(set(folded)) != len(folded):
        raise CriterionError(f"the {what} names must differ (ignoring case): {list(names)}")


def _check_range(minimum: float | None, maximum: float | None) -> None:
    for bound in (minimum, maximum):
        if bound is not None and not math.isfinite(bound):
            raise CriterionError(f"a range bound must be finite, not {bound}")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise CriterionError(f"the range is empty: min {minimum} > max {maximum}")


def _range_text(minimum: float | None, maximum: float | None, unit: str | None) -> str:
    if minimum is not None and maximum is not None:
        text = f" from {minimum:g} to {maximum:g}"
    elif minimum is not None:
        text = f" of at least {minimum:g}"
    elif maximum is not None:
        text = f" of at most {maximum:g}"
    else:
        text = ""
    return f"{text} {unit}" if unit else text


@dataclass(frozen=True)
class LevelSpec:
    """An ordered list of level names, lowest first (``SL1``, ``SL2``, ...).

    With ``better=higher`` a later level is better; with ``better=lower`` an earlier one is.
    """

    kind: ClassVar[str] = "level"
    levels: tuple[str, ...]
    better: Better = Better.HIGHER

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(self.levels))
        object.__setattr__(self, "better", Better(self.better))
        _check_names(self.levels, "level")

    def expected(self) -> str:
        """What a value must be, for messages."""
        return f"one of the levels {' < '.join(self.levels)} ({self.better} is better)"

    def normalize(self, value: object) -> str | None:
        """The level ``value`` names, in the catalogue's spelling; None if it names none."""
        return _named(value, self.levels)

    def compare(self, a: Value, b: Value) -> int:
        """-1, 0 or 1 as normalized level ``a`` is worse than, as good as or better than ``b``."""
        difference = self.levels.index(str(a)) - self.levels.index(str(b))
        return _sign(difference if self.better is Better.HIGHER else -difference)


@dataclass(frozen=True)
class BooleanSpec:
    """True or false; true (the property holds) is the better value."""

    kind: ClassVar[str] = "boolean"

    def expected(self) -> str:
        """What a value must be, for messages."""
        return "true or false"

    def normalize(self, value: object) -> bool | None:
        """``value`` if it is a boolean, else None."""
        return value if isinstance(value, bool) else None

    def compare(self, a: Value, b: Value) -> int:
        """-1, 0 or 1 as ``a`` is worse than, as good as or better than ``b`` (true > false)."""
        return _sign(int(bool(a)) - int(bool(b)))


@dataclass(frozen=True)
class IntegerSpec:
    """A whole number within ``minimum``..``maximum`` (inclusive, each optional)."""

    kind: ClassVar[str] = "integer"
    minimum: int | None = None
    maximum: int | None = None
    unit: str | None = None
    better: Better = Better.HIGHER

    def __post_init__(self) -> None:
        object.__setattr__(self, "better", Better(self.better))
        for bound in (self.minimum, self.maximum):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
                raise CriterionError(f"an integer range bound must be an integer, not {bound!r}")
        _check_range(self.minimum, self.maximum)

    def expected(self) -> str:
        """What a value must be, for messages."""
        return f"an integer{_range_text(self.minimum, self.maximum, self.unit)}"

    def normalize(self, value: object) -> int | None:
        """``value`` if it is an integer (not a boolean) within the range, else None."""
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        if self.minimum is not None and value < self.minimum:
            return None
        if self.maximum is not None and value > self.maximum:
            return None
        return value

    def compare(self, a: Value, b: Value) -> int:
        """-1, 0 or 1 as ``a`` is worse than, as good as or better than ``b``."""
        difference = float(a) - float(b)
        return _sign(difference if self.better is Better.HIGHER else -difference)


@dataclass(frozen=True)
class NumberSpec:
    """A finite real number within ``minimum``..``maximum`` (inclusive, each optional)."""

    kind: ClassVar[str] = "number"
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None
    better: Better = Better.HIGHER

    def __post_init__(self) -> None:
        object.__setattr__(self, "better", Better(self.better))
        for bound in (self.minimum, self.maximum):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int | float)
            ):
                raise CriterionError(f"a number range bound must be a number, not {bound!r}")
        for name in ("minimum", "maximum"):
            bound = getattr(self, name)
            if bound is not None:
                object.__setattr__(self, name, float(bound))
        _check_range(self.minimum, self.maximum)

    def expected(self) -> str:
        """What a value must be, for messages."""
        return f"a number{_range_text(self.minimum, self.maximum, self.unit)}"

    def normalize(self, value: object) -> float | None:
        """``value`` as a float if it is a finite number (not a boolean) within the range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        number = float(value)
        if not math.isfinite(number):
            return None
        if self.minimum is not None and number < self.minimum:
            return None
        if self.maximum is not None and number > self.maximum:
            return None
        return number

    def compare(self, a: Value, b: Value) -> int:
        """-1, 0 or 1 as ``a`` is worse than, as good as or better than ``b``."""
        difference = float(a) - float(b)
        return _sign(difference if self.better is Better.HIGHER else -difference)


@dataclass(frozen=True)
class ChoiceSpec:
    """One of a set of names with no order among them (``measured``, ``derived``, ...)."""

    kind: ClassVar[str] = "choice"
    choices: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        _check_names(self.choices, "choice")

    def expected(self) -> str:
        """What a value must be, for messages."""
        return f"one of {', '.join(self.choices)}"

    def normalize(self, value: object) -> str | None:
        """The choice ``value`` names, in the catalogue's spelling; None if it names none."""
        return _named(value, self.choices)


#: The value type of a criterion.
ValueSpec: TypeAlias = LevelSpec | BooleanSpec | IntegerSpec | NumberSpec | ChoiceSpec


# -- criteria ---------------------------------------------------------------------------------


_E = TypeVar("_E", bound=enum.StrEnum)


def _enum_tuple(
    kind: type[_E], values: Iterable[_E | str], what: str, criterion: str
) -> tuple[_E, ...]:
    """``values`` as members of ``kind``, non-empty and without repeats."""
    members: list[_E] = []
    for value in values:
        try:
            member = kind(value)
        except ValueError:
            known = ", ".join(kind)
            raise CriterionError(
                f"criterion {criterion}: unknown {what} {value!r}; expected one of {known}"
            ) from None
        if member in members:
            raise CriterionError(f"criterion {criterion}: {what} {member} is named twice")
        members.append(member)
    if not members:
        raise CriterionError(f"criterion {criterion}: needs at least one {what}")
    return tuple(members)


@dataclass(frozen=True)
class Criterion:
    """A criterion a trustworthiness claim can name; validated on construction.

    ``accreditation`` is the scope identifier under which a trust list recognizes a conformity
    assessment body or auditor for this criterion; it defaults to ``id``.
    """

    id: str
    title: str
    _: KW_ONLY
    characteristic: Characteristic
    standard: str | None = None
    elements: tuple[ElementKind, ...]
    value: ValueSpec
    evidence: tuple[EvidenceKind, ...]
    accreditation: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _matches_id(self.id):
            raise CriterionError(
                f"criterion identifier {self.id!r} is not a lowercase standard name",
                hint="use lowercase letters, digits and single hyphens, e.g. iec-62443-4-2",
            )
        if not isinstance(self.title, str) or not self.title.strip():
            raise CriterionError(f"criterion {self.id}: needs a title")
        try:
            object.__setattr__(self, "characteristic", Characteristic(self.characteristic))
        except ValueError:
            known = ", ".join(Characteristic)
            raise CriterionError(
                f"criterion {self.id}: unknown characteristic {self.characteristic!r}; "
                f"expected one of {known}"
            ) from None
        object.__setattr__(
            self, "elements", _enum_tuple(ElementKind, self.elements, "element", self.id)
        )
        object.__setattr__(
            self, "evidence", _enum_tuple(EvidenceKind, self.evidence, "evidence kind", self.id)
        )
        if not isinstance(self.value, ValueSpec):
            raise CriterionError(f"criterion {self.id}: {self.value!r} is not a value type")
        if not self.accreditation:
            object.__setattr__(self, "accreditation", self.id)
        elif not _matches_id(self.accreditation):
            raise CriterionError(
                f"criterion {self.id}: accreditation scope {self.accreditation!r} "
                "is not a lowercase identifier"
            )

    def check_value(self, value: object) -> Value:
        """``value`` normalized to the criterion's value type (a level in its catalogue spelling,
        an integer, a float, ...); raises :class:`ValueOutOfRangeError` otherwise."""
        normalized = self.value.normalize(value)
        if normalized is None:
            raise ValueOutOfRangeError(
                f"criterion {self.id}: {value!r} is not a valid value; "
                f"expected {self.value.expected()}"
            )
        return normalized

    def check_evidence(self, kind: EvidenceKind | str) -> EvidenceKind:
        """``kind`` as an :class:`EvidenceKind`; raises :class:`EvidenceNotAllowedError` when the
        criterion does not admit it."""
        if kind in self.evidence and isinstance(kind, EvidenceKind):
            return kind  # the common case: a member the criterion admits
        allowed = ", ".join(self.evidence)
        try:
            member = EvidenceKind(kind)
        except ValueError:
            raise EvidenceNotAllowedError(
                f"criterion {self.id}: {kind!r} is not an evidence kind; it admits {allowed}"
            ) from None
        if member not in self.evidence:
            raise EvidenceNotAllowedError(
                f"criterion {self.id} does not admit {member} as evidence; it admits {allowed}"
            )
        return member

    def check_element(self, kind: ElementKind | str) -> ElementKind:
        """``kind`` as an :class:`ElementKind`; raises :class:`CriterionError` when the criterion
        does not apply to such an element."""
        if kind in self.elements and isinstance(kind, ElementKind):
            return kind  # the common case: a member the criterion applies to
        applies = ", ".join(self.elements)
        try:
            member = ElementKind(kind)
        except ValueError:
            raise CriterionError(
                f"criterion {self.id}: {kind!r} is not an element kind; it applies to {applies}"
            ) from None
        if member not in self.elements:
            raise CriterionError(
                f"criterion {self.id} does not apply to the element kind {member}; "
                f"it applies to {applies}"
            )
        return member

    def compare(self, a: object, b: object) -> int:
        """-1, 0 or 1 as value ``a`` is worse than, as good as or better than ``b``.

        Both are checked first. Choices have no order: two different choices raise
        :class:`CriterionError`.
        """
        first, second = self.check_value(a), self.check_value(b)
        if isinstance(self.value, ChoiceSpec):
            if first != second:
                raise CriterionError(
                    f"criterion {self.id}: the choices {first!r} and {second!r} have no order"
                )
            return 0
        return self.value.compare(first, second)

    def meets(self, value: object, minimum: object) -> bool:
        """Whether ``value`` is as good as ``minimum`` or better (a choice: the same choice)."""
        first, second = self.check_value(value), self.check_value(minimum)
        if isinstance(self.value, ChoiceSpec):
            return first == second
        return self.value.compare(first, second) >= 0


def _matches_id(text: str) -> bool:
    return len(text) <= _ID_MAX_LENGTH and _ID_PATTERN.fullmatch(text) is not None


# -- the catalogue ----------------------------------------------------------------------------


class CatalogueFileError(CriterionError, DocumentError):
    """A catalogue file that cannot be read, is not YAML, or violates the criteria schema."""

    __init__ = DocumentError.__init__


_SHIPPED_SOURCE = "trustbridge/credentials/criteria.yaml (the shipped catalogue)"


class Catalogue:
    """An immutable set of criteria, in definition order, looked up by identifier."""

    def __init__(self, criteria: Iterable[Criterion] = ()) -> None:
        self._criteria: dict[str, Criterion] = {}
        self._sources: dict[str, str] = {}
        for criterion in criteria:
            self._add(criterion, "code")

    def _add(self, criterion: Criterion, source: str) -> None:
        earlier = self._sources.get(criterion.id)
        if earlier is not None:
            raise CriterionError(
                f"criterion {criterion.id} is defined in {earlier} and again in {source}",
                hint="give the new criterion another identifier",
            )
        self._criteria[criterion.id] = criterion
        self._sources[criterion.id] = source

    @classmethod
    def default(cls) -> Catalogue:
        """The catalogue shipped with trustbridge (``credentials/criteria.yaml``); cached."""
        return _shipped()

    @classmethod
    def load(
        cls,
        *paths: str | os.PathLike[str],
        base: Catalogue | Literal["default"] | None = "default",
    ) -> Catalogue:
        """``base`` (the shipped catalogue unless told otherwise; None for none) extended with
        the criteria of the YAML files ``paths``.

        Raises :class:`CatalogueFileError` for an unreadable file, bad YAML or a schema
        violation, and :class:`CriterionError` for an identifier defined twice (naming both
        files).
        """
        start = cls.default() if base == "default" else base
        catalogue = cls()
        if start is not None:
            for criterion in start:
                catalogue._add(criterion, start._sources[criterion.id])
        for path in paths:
            source = os.fspath(path)
            for criterion in _read_file(Path(path), source):
                catalogue._add(criterion, source)
        return catalogue

    def get(self, criterion_id: str) -> Criterion:
        """The criterion ``criterion_id``; raises :class:`UnknownCriterionError` otherwise."""
        criterion = self._criteria.get(criterion_id)
        if criterion is not None:
            return criterion
        close = difflib.get_close_matches(str(criterion_id).strip().lower(), self.ids, n=1)
        if close:
            hint = f"did you mean {close[0]}?"
        else:
            hint = f"the catalogue defines {', '.join(self.ids) or 'no criteria'}"
        raise UnknownCriterionError(f"unknown criterion {criterion_id!r}", hint=hint)

    def source_of(self, criterion_id: str) -> str:
        """Where criterion ``criterion_id`` was defined (a file, or ``code``)."""
        self.get(criterion_id)
        return self._sources[criterion_id]

    def for_characteristic(self, characteristic: Characteristic | str) -> tuple[Criterion, ...]:
        """The criteria that speak to ``characteristic``, in definition order."""
        try:
            wanted = Characteristic(characteristic)
        except ValueError:
            known = ", ".join(Characteristic)
            raise CriterionError(
                f"unknown characteristic {characteristic!r}; expected one of {known}"
            ) from None
        return tuple(c for c in self._criteria.values() if c.characteristic is wanted)

    @property
    def ids(self) -> tuple[str, ...]:
        """The identifiers, in definition order."""
        return tuple(self._criteria)

    def __iter__(self) -> Iterator[Criterion]:
        return iter(tuple(self._criteria.values()))

    def __len__(self) -> int:
        return len(self._criteria)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Criterion):
            return self._criteria.get(item.id) == item
        return isinstance(item, str) and item in self._criteria

    def __repr__(self) -> str:
        return f"Catalogue({len(self)} criteria)"


@functools.cache
def _shipped() -> Catalogue:
    resource = resources.files("trustbridge.credentials") / "criteria.yaml"
    catalogue = Catalogue()
    for criterion in _parse(resource.read_text(encoding="utf-8"), _SHIPPED_SOURCE):
        catalogue._add(criterion, _SHIPPED_SOURCE)
    return catalogue


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    resource = resources.files("trustbridge.credentials") / "schemas" / "criteria.schema.json"
    schema = json.loads(resource.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _read_file(path: Path, source: str) -> list[Criterion]:
    return _parse(read_text(path, source, MAX_CATALOGUE_BYTES, CatalogueFileError), source)


def _parse(text: str, source: str) -> list[Criterion]:
    """The criteria of catalogue YAML ``text``, checked against the schema."""
    data = load(text, source, _validator(), CatalogueFileError, what="criteria")
    criteria = []
    for index, entry in enumerate(data["criteria"]):
        try:
            criteria.append(_criterion(entry))
        except CriterionError as exc:
            raise CatalogueFileError(
                source,
                exc.message,
                json_path=f"$.criteria[{index}]",
                line=line_of(text, ["criteria", index]),
                hint=exc.hint,
            ) from None
    return criteria


def _criterion(entry: Mapping[str, Any]) -> Criterion:
    """A criterion from one schema-valid catalogue entry."""
    return Criterion(
        entry["id"],
        entry["title"],
        characteristic=Characteristic(entry["characteristic"]),
        standard=entry.get("standard"),
        elements=entry["elements"],
        value=_value_spec(entry["value"]),
        evidence=entry["evidence"],
        accreditation=entry.get("accreditation", ""),
        description=entry.get("description", "").strip(),
    )


def _value_spec(data: Mapping[str, Any]) -> ValueSpec:
    """A value type from its schema-valid mapping."""
    better = Better(data.get("better", Better.HIGHER))
    match data["type"]:
        case "level":
            return LevelSpec(tuple(data["levels"]), better=better)
        case "boolean":
            return BooleanSpec()
        case "integer":
            return IntegerSpec(data.get("min"), data.get("max"), data.get("unit"), better)
        case "number":
            return NumberSpec(data.get("min"), data.get("max"), data.get("unit"), better)
        case _:
            return ChoiceSpec(tuple(data["choices"]))
