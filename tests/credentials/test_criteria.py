"""The criteria catalogue: shipped criteria, value types, ordering, evidence and element checks,
extension with user files, and the errors a user meets with a broken file."""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from trustbridge.credentials.criteria import (
    Better,
    BooleanSpec,
    Catalogue,
    CatalogueFileError,
    Characteristic,
    ChoiceSpec,
    Criterion,
    ElementKind,
    EvidenceKind,
    IntegerSpec,
    LevelSpec,
    NumberSpec,
)
from trustbridge.credentials.errors import (
    CriterionError,
    EvidenceNotAllowedError,
    UnknownCriterionError,
    ValueOutOfRangeError,
)
from trustbridge.errors import InputError

ORG, SYS, PROD = ElementKind.ORGANIZATION, ElementKind.SYSTEM, ElementKind.PRODUCT
CERT_OR_AUDIT = {EvidenceKind.CERTIFICATE, EvidenceKind.AUDIT}
SELF_OR_AUDIT = {EvidenceKind.SELF_DECLARATION, EvidenceKind.AUDIT}
CERT = {EvidenceKind.CERTIFICATE}

REQUIRED = {
    # id: (characteristic, elements, evidence, value type)
    "iso-iec-27001": ("security", {ORG, SYS}, CERT_OR_AUDIT, BooleanSpec),
    "iec-62443-4-1": ("security", {ORG, ElementKind.PROCEDURE}, CERT_OR_AUDIT, LevelSpec),
    "iec-62443-4-2": ("security", {PROD}, CERT, LevelSpec),
    "iec-62443-3-3": ("security", {SYS}, CERT_OR_AUDIT, LevelSpec),
    "iec-61508": ("safety", {PROD, SYS}, CERT, LevelSpec),
    "iso-9001": ("reliability", {ORG}, CERT_OR_AUDIT, BooleanSpec),
    "gdpr-processing": ("privacy", {ORG, ElementKind.DATA}, SELF_OR_AUDIT, BooleanSpec),
    "appi-processing": ("privacy", {ORG, ElementKind.DATA}, SELF_OR_AUDIT, BooleanSpec),
    "mtbf": ("reliability", {PROD}, set(EvidenceKind), NumberSpec),
    "incident-response": ("resilience", {ORG}, SELF_OR_AUDIT, IntegerSpec),
    "sbom": ("security", {PROD}, SELF_OR_AUDIT, BooleanSpec),
    "vulnerability-disclosure": ("security", {ORG}, SELF_OR_AUDIT, BooleanSpec),
    "business-continuity": ("resilience", {ORG}, SELF_OR_AUDIT, BooleanSpec),
    "iso-22301": ("resilience", {ORG}, CERT_OR_AUDIT, BooleanSpec),
    "iso-iec-27701": ("privacy", {ORG}, CERT_OR_AUDIT, BooleanSpec),
    "iec-62443-expert": ("security", {ElementKind.PERSON}, CERT, BooleanSpec),
    "iec-62443-2-4": ("security", {ElementKind.PROCEDURE}, CERT_OR_AUDIT, LevelSpec),
    "data-origin": ("reliability", {ElementKind.DATA}, SELF_OR_AUDIT, ChoiceSpec),
    "data-quality": ("reliability", {ElementKind.DATA}, SELF_OR_AUDIT, LevelSpec),
}

USER_CRITERION = """\
criteria:
  - id: acme-patch-latency
    title: Days from a fix to its release
    characteristic: security
    elements: [product]
    value: {type: integer, min: 0, max: 365, unit: days, better: lower}
    evidence: [self-declaration]
    accreditation: acme-scope
"""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.default()


def at(path: Path) -> str:
    """``path`` as a regular expression that matches it literally."""
    return re.escape(str(path))


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the shipped catalogue --------------------------------------------------------------------


def test_shipped_catalogue_defines_every_required_criterion(catalogue: Catalogue) -> None:
    for criterion_id, (characteristic, elements, evidence, spec) in REQUIRED.items():
        criterion = catalogue.get(criterion_id)
        assert criterion.id == criterion_id
        assert criterion.characteristic == characteristic
        assert set(criterion.elements) == elements
        assert set(criterion.evidence) == evidence
        assert isinstance(criterion.value, spec)
        assert criterion.title.strip()
        assert criterion.description.strip()
        assert criterion.accreditation == criterion_id
        assert criterion_id in catalogue
    assert set(REQUIRED) <= set(catalogue.ids)
    assert len(catalogue) == len(catalogue.ids) == len(list(catalogue))


def test_shipped_catalogue_covers_every_characteristic_and_element(catalogue: Catalogue) -> None:
    for characteristic in Characteristic:
        assert catalogue.for_characteristic(characteristic)
    for element in ElementKind:
        assert any(element in criterion.elements for criterion in catalogue), element
    assert {c.id for c in catalogue.for_characteristic("safety")} == {"iec-61508"}
    with pytest.raises(CriterionError, match="unknown characteristic 'trust'"):
        catalogue.for_characteristic("trust")


def test_shipped_levels_and_orientation(catalogue: Catalogue) -> None:
    def levels(criterion_id: str) -> tuple[str, ...]:
        spec = catalogue.get(criterion_id).value
        assert isinstance(spec, LevelSpec)
        assert spec.better is Better.HIGHER
        return spec.levels

    assert levels("iec-62443-4-1") == ("ML1", "ML2", "ML3", "ML4")
    assert levels("iec-62443-4-2") == ("SL-C1", "SL-C2", "SL-C3", "SL-C4")
    assert levels("iec-62443-3-3") == ("SL1", "SL2", "SL3", "SL4")
    assert levels("iec-61508") == ("SIL1", "SIL2", "SIL3", "SIL4")
    mtbf = catalogue.get("mtbf").value
    assert isinstance(mtbf, NumberSpec)
    assert (mtbf.unit, mtbf.better, mtbf.minimum) == ("hours", Better.HIGHER, 0.0)
    response = catalogue.get("incident-response").value
    assert isinstance(response, IntegerSpec)
    assert (response.unit, response.better) == ("hours", Better.LOWER)
    origin = catalogue.get("data-origin").value
    assert isinstance(origin, ChoiceSpec)
    assert set(origin.choices) == {"measured", "derived", "synthetic"}


def test_default_is_cached_and_read_only(catalogue: Catalogue) -> None:
    assert Catalogue.default() is catalogue
    assert Catalogue.load() is not catalogue
    assert Catalogue.load().ids == catalogue.ids
    assert len(Catalogue.load(base=None)) == 0


def test_shipped_yaml_follows_the_schema_on_its_own() -> None:
    """The shipped file is valid against the schema as any JSON Schema validator reads it."""
    folder = resources.files("trustbridge.credentials")
    schema = json.loads((folder / "schemas" / "criteria.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml.safe_load((folder / "criteria.yaml").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(data)


def test_accreditation_scopes_fit_the_trust_list_schema(catalogue: Catalogue) -> None:
    """Trust lists name these scopes; their schema must accept every shipped one."""
    folder = resources.files("trustbridge.trust") / "schemas"
    schema = json.loads((folder / "trust-list.schema.json").read_text("utf-8"))
    scope = schema["$defs"]["service"]["properties"]["scope"]["items"]
    validator = jsonschema.Draft202012Validator(scope)
    for criterion in catalogue:
        assert validator.is_valid(criterion.accreditation), criterion.accreditation


# -- evidence kinds ---------------------------------------------------------------------------


def test_evidence_strength_orders_self_declaration_certificate_audit() -> None:
    assert [kind.strength for kind in EvidenceKind] == [1, 2, 3]
    assert EvidenceKind.by_strength() == (
        EvidenceKind.SELF_DECLARATION,
        EvidenceKind.CERTIFICATE,
        EvidenceKind.AUDIT,
    )
    assert EvidenceKind.AUDIT.at_least(EvidenceKind.CERTIFICATE)
    assert EvidenceKind.CERTIFICATE.at_least(EvidenceKind.CERTIFICATE)
    assert not EvidenceKind.SELF_DECLARATION.at_least(EvidenceKind.CERTIFICATE)
    assert (
        EvidenceKind.strongest([EvidenceKind.CERTIFICATE, EvidenceKind.SELF_DECLARATION])
        is EvidenceKind.CERTIFICATE
    )
    assert EvidenceKind("self-declaration") is EvidenceKind.SELF_DECLARATION
    with pytest.raises(ValueError, match="no evidence kinds"):
        EvidenceKind.strongest([])


# -- value types ------------------------------------------------------------------------------


def test_level_values(catalogue: Catalogue) -> None:
    criterion = catalogue.get("iec-62443-4-2")
    assert criterion.check_value("SL-C2") == "SL-C2"
    assert criterion.check_value(" sl-c3 ") == "SL-C3"
    with pytest.raises(ValueOutOfRangeError, match=r"iec-62443-4-2: 'SL-C5' .*SL-C1 < SL-C2"):
        criterion.check_value("SL-C5")
    with pytest.raises(ValueOutOfRangeError, match=r"iec-62443-4-2: 'SL2' .*levels"):
        criterion.check_value("SL2")  # a system level is not a component level
    with pytest.raises(ValueOutOfRangeError, match="iec-62443-4-2: 2 is not"):
        criterion.check_value(2)


def test_level_and_choice_names_are_matched_per_value_type() -> None:
    # The folded names are cached per tuple of names: each type keeps its own spelling.
    upper, lower = LevelSpec(("SL1", "SL2")), LevelSpec(("sl1", "sl2", "sl3"))
    assert (upper.normalize(" sl2 "), lower.normalize("SL2"), lower.normalize("SL3")) == (
        "SL2",
        "sl2",
        "sl3",
    )
    assert upper.normalize("SL3") is None and upper.normalize(2) is None
    choice = ChoiceSpec(("Measured", "derived"))
    assert (choice.normalize("MEASURED"), choice.normalize("Derived")) == ("Measured", "derived")
    assert choice.normalize("estimated") is None


def test_boolean_values(catalogue: Catalogue) -> None:
    criterion = catalogue.get("sbom")
    assert criterion.check_value(True) is True
    assert criterion.check_value(False) is False
    for wrong in (1, 0, "true", None):
        with pytest.raises(ValueOutOfRangeError, match=r"sbom: .* expected true or false"):
            criterion.check_value(wrong)


def test_integer_values_refuse_booleans_floats_and_out_of_range(catalogue: Catalogue) -> None:
    criterion = catalogue.get("incident-response")
    assert criterion.check_value(24) == 24
    assert criterion.check_value(0) == 0
    expected = "expected an integer of at least 0 hours"
    with pytest.raises(ValueOutOfRangeError, match=rf"incident-response: True .*{expected}"):
        criterion.check_value(True)
    with pytest.raises(ValueOutOfRangeError, match=rf"incident-response: 4\.0 .*{expected}"):
        criterion.check_value(4.0)
    with pytest.raises(ValueOutOfRangeError, match=rf"incident-response: -1 .*{expected}"):
        criterion.check_value(-1)
    with pytest.raises(ValueOutOfRangeError, match="incident-response: '24'"):
        criterion.check_value("24")


def test_integer_upper_bound() -> None:
    spec = IntegerSpec(1, 10, "days")
    assert spec.normalize(10) == 10
    assert spec.normalize(11) is None
    assert spec.normalize(0) is None
    assert spec.expected() == "an integer from 1 to 10 days"


def test_number_values(catalogue: Catalogue) -> None:
    criterion = catalogue.get("mtbf")
    value = criterion.check_value(50_000)
    assert value == 50_000.0
    assert isinstance(value, float)
    assert criterion.check_value(0.5) == 0.5
    for wrong in (-0.1, math.nan, math.inf, True, "50000"):
        with pytest.raises(ValueOutOfRangeError, match=r"mtbf: .* expected a number of at least 0"):
            criterion.check_value(wrong)
    bounded = NumberSpec(0.0, 1.0)
    assert bounded.normalize(1) == 1.0
    assert bounded.normalize(1.0001) is None


def test_choice_values(catalogue: Catalogue) -> None:
    criterion = catalogue.get("data-origin")
    assert criterion.check_value("Measured") == "measured"
    with pytest.raises(ValueOutOfRangeError, match=r"data-origin: 'guessed' .*measured, derived"):
        criterion.check_value("guessed")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: LevelSpec(()), "at least one name"),
        (lambda: LevelSpec(("SL1", "sl1")), "must differ"),
        (lambda: ChoiceSpec(("a", " ")), "non-empty"),
        (lambda: IntegerSpec(5, 1), "range is empty"),
        (lambda: IntegerSpec(True, None), "must be an integer"),
        (lambda: NumberSpec(math.nan, None), "finite"),
        (lambda: LevelSpec(("a",), better="sideways"), "sideways"),  # type: ignore[arg-type]
    ],
)
def test_value_types_validate_on_construction(make: object, match: str) -> None:
    assert callable(make)
    with pytest.raises((CriterionError, ValueError), match=match):
        make()


# -- ordering ---------------------------------------------------------------------------------


def test_meets_and_compare_levels(catalogue: Catalogue) -> None:
    criterion = catalogue.get("iec-62443-3-3")
    assert criterion.meets("SL3", "SL2")
    assert criterion.meets("SL2", "SL2")
    assert not criterion.meets("SL1", "SL2")
    assert criterion.compare("SL4", "SL1") == 1
    assert criterion.compare("sl1", "SL4") == -1
    with pytest.raises(ValueOutOfRangeError, match="iec-62443-3-3: 'SL5'"):
        criterion.meets("SL5", "SL2")
    with pytest.raises(ValueOutOfRangeError, match="iec-62443-3-3: 'SIL2'"):
        criterion.meets("SL3", "SIL2")


def test_meets_with_lower_is_better(catalogue: Catalogue) -> None:
    response = catalogue.get("incident-response")
    assert response.meets(4, 24)  # answering within 4 h meets a 24 h requirement
    assert response.meets(24, 24)
    assert not response.meets(48, 24)
    assert response.compare(4, 24) == 1
    assert response.compare(48, 24) == -1
    with pytest.raises(ValueOutOfRangeError, match="incident-response: True"):
        response.meets(True, 24)


def test_meets_with_higher_is_better(catalogue: Catalogue) -> None:
    mtbf = catalogue.get("mtbf")
    assert mtbf.meets(100_000, 50_000.0)
    assert not mtbf.meets(10_000.5, 50_000)
    assert mtbf.compare(50_000, 50_000.0) == 0


def test_lower_is_better_levels() -> None:
    risk = Criterion(
        "acme-risk-class",
        "Risk class",
        characteristic=Characteristic.SAFETY,
        elements=(ElementKind.PRODUCT,),
        value=LevelSpec(("A", "B", "C"), better=Better.LOWER),
        evidence=(EvidenceKind.AUDIT,),
    )
    assert risk.meets("A", "B")
    assert not risk.meets("C", "B")
    assert risk.compare("C", "A") == -1


def test_booleans_and_choices(catalogue: Catalogue) -> None:
    sbom = catalogue.get("sbom")
    assert sbom.meets(True, True)
    assert not sbom.meets(False, True)
    assert sbom.compare(True, False) == 1
    origin = catalogue.get("data-origin")
    assert origin.meets("measured", "measured")
    assert not origin.meets("synthetic", "measured")
    assert origin.compare("derived", "DERIVED") == 0
    with pytest.raises(CriterionError, match="data-origin: the choices 'synthetic' and 'measured'"):
        origin.compare("synthetic", "measured")


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_compare_is_antisymmetric_and_agrees_with_meets(a: int, b: int) -> None:
    for criterion_id in ("incident-response", "mtbf"):
        criterion = Catalogue.default().get(criterion_id)
        assert criterion.compare(a, b) == -criterion.compare(b, a)
        assert criterion.meets(a, b) == (criterion.compare(a, b) >= 0)
        assert criterion.meets(a, b) or criterion.meets(b, a)


# -- evidence and element checks --------------------------------------------------------------


def test_evidence_checks(catalogue: Catalogue) -> None:
    sil = catalogue.get("iec-61508")
    assert sil.check_evidence("certificate") is EvidenceKind.CERTIFICATE
    with pytest.raises(
        EvidenceNotAllowedError,
        match="iec-61508 does not admit self-declaration as evidence; it admits certificate",
    ):
        sil.check_evidence(EvidenceKind.SELF_DECLARATION)
    with pytest.raises(EvidenceNotAllowedError, match="iec-61508: 'hearsay' is not an evidence"):
        sil.check_evidence("hearsay")
    assert catalogue.get("mtbf").check_evidence("self-declaration") is EvidenceKind.SELF_DECLARATION
    assert sil.check_evidence(EvidenceKind.CERTIFICATE) is EvidenceKind.CERTIFICATE


def test_element_checks(catalogue: Catalogue) -> None:
    component = catalogue.get("iec-62443-4-2")
    assert component.check_element("product") is ElementKind.PRODUCT
    assert component.check_element(ElementKind.PRODUCT) is ElementKind.PRODUCT
    with pytest.raises(CriterionError, match=r"iec-62443-4-2 does not apply to .*organization"):
        component.check_element(ElementKind.ORGANIZATION)
    with pytest.raises(CriterionError, match="iec-62443-4-2: 'machine' is not an element kind"):
        component.check_element("machine")


def test_criterion_validates_on_construction() -> None:
    def build(**changes: object) -> Criterion:
        fields: dict[str, object] = {
            "characteristic": "security",
            "elements": ("product",),
            "value": BooleanSpec(),
            "evidence": ("audit",),
        }
        fields.update(changes)
        criterion_id = str(fields.pop("id", "acme-x"))
        return Criterion(criterion_id, "Acme", **fields)  # type: ignore[arg-type]

    criterion = build()
    assert criterion.elements == (ElementKind.PRODUCT,)
    assert criterion.accreditation == "acme-x"
    with pytest.raises(CriterionError, match="'ISO 9001' is not a lowercase standard name"):
        build(id="ISO 9001")
    with pytest.raises(CriterionError, match="unknown characteristic 'trust'"):
        build(characteristic="trust")
    with pytest.raises(CriterionError, match="needs at least one element"):
        build(elements=())
    with pytest.raises(CriterionError, match="evidence kind audit is named twice"):
        build(evidence=("audit", "audit"))
    with pytest.raises(CriterionError, match="is not a value type"):
        build(value="boolean")
    with pytest.raises(CriterionError, match="accreditation scope 'Acme Scope'"):
        build(accreditation="Acme Scope")


# -- extension with user files ----------------------------------------------------------------


def test_extension_with_a_user_file(tmp_path: Path, catalogue: Catalogue) -> None:
    path = write(tmp_path, "acme.yaml", USER_CRITERION)
    extended = Catalogue.load(path)
    assert set(extended.ids) == set(catalogue.ids) | {"acme-patch-latency"}
    latency = extended.get("acme-patch-latency")
    assert latency.accreditation == "acme-scope"
    assert latency.meets(3, 7)
    with pytest.raises(ValueOutOfRangeError, match=r"acme-patch-latency: 400 .*from 0 to 365 days"):
        latency.check_value(400)
    assert extended.source_of("acme-patch-latency") == str(path)
    assert "acme-patch-latency" not in catalogue  # the shipped catalogue is unchanged
    alone = Catalogue.load(path, base=None)
    assert alone.ids == ("acme-patch-latency",)


def test_an_id_defined_twice_names_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "first.yaml", USER_CRITERION)
    second = write(tmp_path, "second.yaml", USER_CRITERION)
    with pytest.raises(
        CriterionError,
        match=rf"acme-patch-latency is defined in {at(first)} and again in {at(second)}",
    ):
        Catalogue.load(first, second)
    shadow = write(tmp_path, "shadow.yaml", USER_CRITERION.replace("acme-patch-latency", "mtbf"))
    with pytest.raises(
        CriterionError, match=rf"mtbf is defined in .*criteria\.yaml.* {at(shadow)}"
    ):
        Catalogue.load(shadow)
    twice = write(tmp_path, "twice.yaml", USER_CRITERION + USER_CRITERION.split("\n", 1)[1])
    with pytest.raises(
        CriterionError,
        match=rf"defined in {at(twice)} and again in {at(twice)}",
    ):
        Catalogue.load(twice, base=None)


def test_an_id_defined_twice_in_code() -> None:
    criterion = Catalogue.default().get("sbom")
    with pytest.raises(CriterionError, match="sbom is defined in code and again in code"):
        Catalogue([criterion, criterion])


@pytest.mark.parametrize(
    ("text", "path", "line", "message"),
    [
        (
            USER_CRITERION.replace("better: lower", "better: sideways"),
            r"\$\.criteria\[0\]\.value\.better",
            6,
            "'sideways' is not one of",
        ),
        (
            USER_CRITERION.replace("characteristic: security", "characteristic: trust"),
            r"\$\.criteria\[0\]\.characteristic",
            4,
            "'trust' is not one of",
        ),
        (
            USER_CRITERION.replace("elements: [product]", "elements: [product, machine]"),
            r"\$\.criteria\[0\]\.elements\[1\]",
            5,
            "'machine' is not one of",
        ),
        (
            USER_CRITERION.replace("acme-patch-latency", "Acme Patch"),
            r"\$\.criteria\[0\]\.id",
            2,
            "does not match",
        ),
        (
            USER_CRITERION.replace("evidence: [self-declaration]", "evidence: []"),
            r"\$\.criteria\[0\]\.evidence",
            7,
            "should be non-empty",
        ),
        (
            USER_CRITERION.replace("min: 0,", "min: 0, step: 1,"),
            r"\$\.criteria\[0\]\.value",
            6,
            "'step' was unexpected",
        ),
        (
            USER_CRITERION.replace("accreditation: acme-scope", "evidence_kind: audit"),
            r"\$\.criteria\[0\]",
            2,
            "'evidence_kind' was unexpected",
        ),
        (
            USER_CRITERION.replace("    title: Days from a fix to its release\n", ""),
            r"\$\.criteria\[0\]",
            2,
            "'title' is a required property",
        ),
        ("criteria: []\n", r"\$\.criteria", 1, "should be non-empty"),
        ("- id: acme\n", r"\$", 1, "is not of type 'object'"),
    ],
)
def test_schema_violations_name_the_file_and_the_json_path(
    tmp_path: Path, text: str, path: str, line: int, message: str
) -> None:
    file = write(tmp_path, "broken.yaml", text)
    with pytest.raises(
        CatalogueFileError, match=rf"^{at(file)}: {path} \(line {line}\): .*{message}"
    ):
        Catalogue.load(file)


def test_value_type_contradictions_name_the_file_and_entry(tmp_path: Path) -> None:
    file = write(tmp_path, "range.yaml", USER_CRITERION.replace("max: 365", "max: -1"))
    with pytest.raises(
        CatalogueFileError, match=rf"^{at(file)}: \$\.criteria\[0\] .*range is empty"
    ):
        Catalogue.load(file)
    levels = USER_CRITERION.replace(
        "{type: integer, min: 0, max: 365, unit: days, better: lower}",
        "{type: level, levels: [Gold, gold]}",
    )
    file = write(tmp_path, "levels.yaml", levels)
    with pytest.raises(CatalogueFileError, match=r"level names must differ") as raised:
        Catalogue.load(file)
    assert raised.value.json_path == "$.criteria[0]"
    assert isinstance(raised.value, InputError)


def test_empty_file(tmp_path: Path) -> None:
    file = write(tmp_path, "empty.yaml", "")
    with pytest.raises(
        CatalogueFileError, match=rf"^{at(file)}: \$: .*None is not of type 'object'"
    ):
        Catalogue.load(file)


def test_yaml_syntax_errors_name_the_file_and_the_line(tmp_path: Path) -> None:
    text = USER_CRITERION.replace("elements: [product]", "elements: [product")
    file = write(tmp_path, "syntax.yaml", text)
    with pytest.raises(
        CatalogueFileError, match=rf"^{at(file)}: line \d+, column \d+: not valid YAML"
    ):
        Catalogue.load(file)
    tabs = write(tmp_path, "tabs.yaml", "criteria:\n  - id: a\n\t title: b\n")
    with pytest.raises(CatalogueFileError, match=rf"^{at(tabs)}: line 3, column 1: not valid YAML"):
        Catalogue.load(tabs)


def test_yaml_tags_are_not_constructed(tmp_path: Path) -> None:
    file = write(tmp_path, "tag.yaml", "criteria: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(CatalogueFileError, match=rf"^{at(file)}: line 1, .*not valid YAML"):
        Catalogue.load(file)


def test_unreadable_and_oversized_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CatalogueFileError, match=rf"^{at(missing)}: cannot read the file"):
        Catalogue.load(missing)
    big = write(tmp_path, "big.yaml", "#" * (1024 * 1024 + 1))
    with pytest.raises(CatalogueFileError, match="larger than 1048576 bytes"):
        Catalogue.load(big)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"criteria: \xff\n")
    with pytest.raises(CatalogueFileError, match="not UTF-8"):
        Catalogue.load(binary)


# -- lookup -----------------------------------------------------------------------------------


def test_unknown_criterion_hints_at_a_close_match(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownCriterionError, match="unknown criterion 'iec-62443-4-3'") as raised:
        catalogue.get("iec-62443-4-3")
    assert raised.value.hint == "did you mean iec-62443-4-2?"
    assert "did you mean iec-62443-4-2?" in raised.value.diagnostics()
    with pytest.raises(UnknownCriterionError) as raised:
        catalogue.get("ISO-IEC-27001")
    assert raised.value.hint == "did you mean iso-iec-27001?"
    with pytest.raises(UnknownCriterionError, match="'espresso'") as raised:
        catalogue.get("espresso")
    assert raised.value.hint is not None
    assert raised.value.hint.startswith("the catalogue defines iso-iec-27001")
    with pytest.raises(UnknownCriterionError):
        catalogue.source_of("espresso")


def test_membership(catalogue: Catalogue) -> None:
    sbom = catalogue.get("sbom")
    assert "sbom" in catalogue
    assert sbom in catalogue
    assert "SBOM" not in catalogue
    assert 42 not in catalogue
    assert [c.id for c in catalogue][: len(catalogue.ids)] == list(catalogue.ids)
