"""A trust profile as an Asset Administration Shell submodel (BaSyx), and back."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from basyx.aas import model
from basyx.aas.adapter.json import read_aas_json_file

from tests.credentials.test_profile import (
    AT,
    DAY,
    NORDSEE,
    OTHER_ID,
    SELF,
    SENSOR_ID,
    claim,
    subject,
    verdict,
)
from trustbridge.credentials.aas import (
    SUBMODEL_ID_SHORT,
    SUBMODEL_SEMANTIC_ID,
    ExportedClaim,
    ProfileExport,
    claim_id_short,
    from_json,
    from_submodel,
    submodel_id_for,
    to_json,
    to_submodel,
)
from trustbridge.credentials.criteria import Characteristic, EvidenceKind
from trustbridge.credentials.profile import TrustProfile
from trustbridge.errors import InputError

# AASd-002 as the brief narrows it: letters, digits, underscore, starting with a letter.
ID_SHORT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def profile() -> TrustProfile:
    product = subject(serialNumber="0001", globalAssetId="https://hayabusa.example/asset/ps-200")
    return TrustProfile.from_verdicts(
        SENSOR_ID,
        [
            verdict(
                claim("iec-62443-4-2", "SL2", scope="firmware 2.x"),
                claim("sbom", True),
                claim("mtbf", 120000, characteristic="reliability"),
                claim("availability", 99.95, characteristic="resilience"),
                about=product,
                format="dc+sd-jwt",
            ),
            verdict(
                claim("iec-62443-4-2", "SL3"),
                kind=EvidenceKind.SELF_DECLARATION,
                issuer=SELF,
                about=product,
            ),
            verdict(
                claim("iec-61508", "SIL2", characteristic="safety"),
                kind=EvidenceKind.AUDIT,
                issuer=NORDSEE,
                about=product,
                valid_from=AT - 10 * DAY,
                valid_until=AT + 10 * DAY,
            ),
        ],
        at=AT,
    )


def environment(text: str) -> model.DictIdentifiableStore[model.Identifiable]:
    """Read with BaSyx's own strict deserializer."""
    return read_aas_json_file(io.StringIO(text), failsafe=False)


def edited(change: Callable[[dict[str, Any]], None], source: TrustProfile | None = None) -> str:
    document = json.loads(to_json(source or profile()))
    change(document["submodels"][0])
    return json.dumps(document)


def element(container: dict[str, Any], id_short: str) -> dict[str, Any]:
    members = container.get("submodelElements", container.get("value"))
    assert isinstance(members, list)
    found = next(e for e in members if e["idShort"] == id_short)
    assert isinstance(found, dict)
    return found


def first_claim(submodel: dict[str, Any]) -> dict[str, Any]:
    return element(element(submodel, "Security"), "Claim_iec_62443_4_2_1")


# -- writing ----------------------------------------------------------------------------------


def test_submodel_layout() -> None:
    submodel = to_submodel(profile())

    assert submodel.id_short == SUBMODEL_ID_SHORT
    assert submodel.id == submodel_id_for(SENSOR_ID)
    assert submodel.kind is model.ModellingKind.INSTANCE
    assert submodel.semantic_id is not None
    assert submodel.semantic_id.key[0].value == SUBMODEL_SEMANTIC_ID
    names = [str(e.id_short) for e in submodel.submodel_element]
    assert names == [
        "SubjectId",
        "Element",
        "Name",
        "Organization",
        "PartNumber",
        "SerialNumber",
        "GlobalAssetId",
        "Security",
        "Safety",
        "Privacy",
        "Reliability",
        "Resilience",
    ]
    security = submodel.get_referable("Security")
    assert isinstance(security, model.SubmodelElementCollection)
    assert [e.id_short for e in security.value] == [
        "Claim_iec_62443_4_2_1",
        "Claim_iec_62443_4_2_2",
        "Claim_sbom_1",
    ]
    certified = submodel.get_referable(["Security", "Claim_iec_62443_4_2_1"])
    assert isinstance(certified, model.SubmodelElementCollection)
    properties = {str(p.id_short): p for p in certified.value if isinstance(p, model.Property)}
    assert set(properties) == {
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
    assert properties["EvidenceKind"].value == "certificate"
    assert properties["ValidFrom"].value_type is model.datatypes.DateTime
    self_declared = submodel.get_referable(["Security", "Claim_iec_62443_4_2_2"])
    assert isinstance(self_declared, model.SubmodelElementCollection)
    assert "AccreditedBy" not in {p.id_short for p in self_declared.value}


@pytest.mark.parametrize(
    ("criterion", "xsd"),
    [
        ("sbom", "xs:boolean"),
        ("mtbf", "xs:integer"),
        ("availability", "xs:double"),
        ("iec-61508", "xs:string"),
    ],
)
def test_values_are_typed(criterion: str, xsd: str) -> None:
    document = json.loads(to_json(profile()))
    values = [
        prop
        for characteristic in document["submodels"][0]["submodelElements"]
        if characteristic["modelType"] == "SubmodelElementCollection"
        for claim_ in characteristic.get("value", [])
        if element(claim_, "Criterion")["value"] == criterion
        for prop in claim_["value"]
        if prop["idShort"] == "Value"
    ]
    assert [v["valueType"] for v in values] == [xsd]


def test_basyx_reads_the_environment() -> None:
    store = environment(to_json(profile()))

    submodel = store.get_item(submodel_id_for(SENSOR_ID))
    assert isinstance(submodel, model.Submodel)
    assert submodel.semantic_id == model.ExternalReference(
        (model.Key(model.KeyTypes.GLOBAL_REFERENCE, SUBMODEL_SEMANTIC_ID),)
    )
    assert len(store) == 1


def test_the_submodel_id_is_stable_per_subject() -> None:
    assert submodel_id_for(SENSOR_ID) == submodel_id_for(SENSOR_ID)
    assert submodel_id_for(SENSOR_ID) != submodel_id_for(OTHER_ID)
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", submodel_id_for(SENSOR_ID))
    same = profile()
    assert to_json(same) == to_json(same)


@pytest.mark.parametrize("criterion", ["a", "9001", "a-", "a--b", "x" * 64, "iec-62443-4-2"])
def test_id_shorts_follow_the_aas_rules(criterion: str) -> None:
    twice = TrustProfile.from_verdicts(
        SENSOR_ID,
        [verdict(claim(criterion, True)), verdict(claim(criterion, False), issuer=NORDSEE)],
        at=AT,
    )

    submodel = to_submodel(twice)

    security = submodel.get_referable("Security")
    assert isinstance(security, model.SubmodelElementCollection)
    id_shorts = [str(e.id_short) for e in security.value]
    assert len(set(id_shorts)) == 2
    for id_short in id_shorts:
        assert ID_SHORT.fullmatch(id_short) and len(id_short) <= 128
        model.Referable.validate_id_short(id_short)  # BaSyx's own AASd-002 check
    assert from_json(to_json(twice)) == ProfileExport.from_profile(twice)


def test_claim_id_short() -> None:
    assert claim_id_short("iec-62443-4-2", 1) == "Claim_iec_62443_4_2_1"
    with pytest.raises(InputError, match="cannot name an AAS element"):
        claim_id_short("no spaces", 1)


# -- reading ----------------------------------------------------------------------------------


def test_round_trip_keeps_subject_claims_and_value_types() -> None:
    original = profile()

    export = from_json(to_json(original))

    assert export == ProfileExport.from_profile(original)
    assert export.subject == original.subject
    values = {c.criterion: c.value for c in export.claims if c.evidence != "self-declaration"}
    assert values == {
        "iec-62443-4-2": "SL2",
        "sbom": True,
        "iec-61508": "SIL2",
        "mtbf": 120000,
        "availability": 99.95,
    }
    assert {c: type(v) for c, v in values.items()} == {
        "iec-62443-4-2": str,
        "sbom": bool,
        "iec-61508": str,
        "mtbf": int,
        "availability": float,
    }
    audited = next(c for c in export.claims if c.criterion == "iec-61508")
    assert audited.characteristic is Characteristic.SAFETY
    assert audited.evidence is EvidenceKind.AUDIT
    assert (audited.valid_from, audited.valid_until) == (AT - 10 * DAY, AT + 10 * DAY)
    assert audited.valid_from.utcoffset() is not None
    assert audited.issuer == NORDSEE


def test_from_submodel_and_re_export() -> None:
    original = profile()
    text = to_json(original)

    assert from_submodel(to_submodel(original)) == ProfileExport.from_profile(original)
    assert to_json(from_json(text)) == text


def test_an_empty_profile_round_trips() -> None:
    expired = TrustProfile.from_verdicts(
        SENSOR_ID, [verdict(claim("sbom", True))], at=AT + 400 * DAY
    )
    assert expired.claims == ()

    export = from_json(to_json(expired))

    assert export.subject == expired.subject and export.claims == ()


def test_other_submodels_are_ignored() -> None:
    document = json.loads(to_json(profile()))
    document["submodels"].append(
        {"modelType": "Submodel", "id": "urn:example:nameplate", "idShort": "Nameplate"}
    )
    assert from_json(json.dumps(document)).subject.id == SENSOR_ID


# -- refusals ---------------------------------------------------------------------------------


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def change(submodel: dict[str, Any]) -> None:
        container = first_claim(submodel)
        container["value"] = [p for p in container["value"] if p["idShort"] != name]

    return change


def _set(name: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(submodel: dict[str, Any]) -> None:
        element(first_claim(submodel), name).update(fields)

    return change


def _wrong_semantic_id(submodel: dict[str, Any]) -> None:
    submodel["semanticId"]["keys"][0]["value"] = "https://admin-shell.io/zvei/nameplate/2/0"


def _no_subject_id(submodel: dict[str, Any]) -> None:
    submodel["submodelElements"] = [
        e for e in submodel["submodelElements"] if e["idShort"] != "SubjectId"
    ]


def _foreign_id(submodel: dict[str, Any]) -> None:
    submodel["id"] = "urn:example:someone-else"


def _extra_element(submodel: dict[str, Any]) -> None:
    submodel["submodelElements"].append(
        {"modelType": "Property", "idShort": "Colour", "valueType": "xs:string", "value": "red"}
    )


def _template(submodel: dict[str, Any]) -> None:
    submodel["kind"] = "Template"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_wrong_semantic_id, r"semantic id https://admin-shell.io/zvei/nameplate/2/0, not https"),
        (_no_subject_id, "missing property SubjectId"),
        (_foreign_id, "the id is not the one of subject"),
        (_extra_element, "unexpected element Colour"),
        (_template, "kind TEMPLATE, not INSTANCE"),
        (_drop("Criterion"), r"Security\.Claim_iec_62443_4_2_1: missing property Criterion"),
        (_drop("ValidUntil"), "missing property ValidUntil"),
        (_drop("Value"), "missing property Value"),
        (_set("Value", valueType="xs:date", value="2025-01-01"), "xs:date, not one of"),
        (_set("ValidFrom", valueType="xs:string"), "ValidFrom has value type xs:string, not xs"),
        (_set("ValidFrom", value="2025-01-01T00:00:00"), "ValidFrom has no time zone"),
        (_set("Issuer", valueType="xs:integer", value="7"), "Issuer has value type xs:integer"),
        (_set("EvidenceKind", value="rumour"), "EvidenceKind 'rumour' is not one of"),
        (_set("Criterion", value="Not A Criterion"), "claim 'Not A Criterion': criterion"),
        (_set("ValidUntil", value="2000-01-01T00:00:00+00:00"), "ValidUntil is not after"),
        (_set("CredentialId", value=""), "credential_id is empty"),
        (_set("Value", valueType="xs:integer", value="high"), "not an AAS environment in JSON"),
        (_set("Scope", valueType="xs:nonsense"), "not an AAS environment in JSON"),
    ],
)
def test_malformed_exports_are_refused(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        from_json(edited(change))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not an AAS environment in JSON"),
        ("[]", "no submodel with semantic id"),
        ("{}", "no submodel with semantic id"),
        ('{"submodels": [{"modelType": "Submodel"}]}', "not an AAS environment in JSON"),
        ('{"submodels": ["text"]}', "not an AAS environment in JSON"),
    ],
)
def test_non_environments_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        from_json(text)


def test_two_profiles_in_one_environment_are_refused() -> None:
    other = TrustProfile.from_verdicts(
        OTHER_ID,
        [verdict(claim("sbom", True), about=subject(OTHER_ID, name="PS-300"))],
        at=AT,
    )
    document = json.loads(to_json(profile()))
    document["submodels"] += json.loads(to_json(other))["submodels"]

    with pytest.raises(InputError, match="holds 2 submodels with semantic id"):
        from_json(json.dumps(document))


def test_from_submodel_refuses_other_objects() -> None:
    shell = model.AssetAdministrationShell(
        model.AssetInformation(global_asset_id="https://example.com/asset"),
        "urn:example:shell",
    )
    with pytest.raises(InputError, match="expected an AAS Submodel, not AssetAdministrationShell"):
        from_submodel(shell)  # type: ignore[arg-type]


def test_an_exported_claim_validates() -> None:
    claim_ = ProfileExport.from_profile(profile()).claims[0]
    with pytest.raises(InputError, match="claim 'iec-62443-4-2': value"):
        dataclasses.replace(claim_, value=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="ValidUntil is not after ValidFrom"):
        dataclasses.replace(claim_, valid_until=claim_.valid_from)
    assert isinstance(claim_, ExportedClaim)
