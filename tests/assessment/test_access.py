"""Access policies in Cedar: the reference scenario's decisions, policy files with errors,
entities from identities, profiles and plain data, and ``trustbridge policy``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from tests.credentials.test_profile import claim, subject, verdict
from trustbridge.assessment.access import (
    AccessPolicies,
    AccessRequest,
    Action,
    Entity,
    EntityError,
    EntityRef,
    EntityStore,
    EntityType,
    PolicyDeniedError,
    PolicyFileError,
    access_schema,
    entity_from_data,
    entity_from_identity,
    entity_from_profile,
)
from trustbridge.cli.policy import policy_app
from trustbridge.credentials.profile import TrustProfile
from trustbridge.demo.scenario import JAPAN
from trustbridge.errors import InputError, NotFoundError
from trustbridge.pki.profiles import (
    MachineSubject,
    Role,
    Subject,
    subject_kind_extension,
)
from trustbridge.trust.resolver import Level, Resolution, Route

MUSTER = "VATDE-123456789"
HAYABUSA = "NTRJP-3180001012345"
ELBE = "VATDE-555555555"
SHADY = "VATDE-666666666"
SHARED = datetime(2026, 4, 1, tzinfo=UTC)
DAY = timedelta(days=1)
AT = SHARED + 9 * DAY

ERIKA = 'Person::"erika.berger@muster.example"'  # quality engineer
JONAS = 'Person::"jonas.klein@muster.example"'  # no role
SVEN = 'Person::"sven.ott@muster.example"'  # security engineer
LENA = 'Person::"lena.vogt@muster.example"'  # quality engineer, identity at itg-loa1
KLAUS = 'Person::"klaus.weber@muster-maschinenbau.example"'  # authorized signatory
PETRA = 'Person::"petra.lang@elbe.example"'  # quality engineer at another company
GATEWAY = 'System::"urn:hayabusa:test-data-service"'
LINE = 'System::"urn:muster:assembly-line-2"'  # no identity: level 0
QUALITY_GATEWAY = 'System::"urn:muster:quality-gateway"'  # Muster's software, itg-loa2
SENSOR = 'Component::"urn:hayabusa:ps-200:0001"'
KNOCKOFF = 'Component::"urn:shady:ps-9:0001"'
REPORT = 'Data::"tr-ps200-0001"'
LATE_REPORT = 'Data::"tr-ps200-0002"'
BOM = 'Data::"fw-bom-ps200-2.1"'
UNDATED = 'Data::"tr-ps200-0003"'  # shared under the contract, but when?
FUTURE = 'Data::"tr-ps200-0004"'  # says it was shared next year
UPDATE = 'Procedure::"firmware-update"'
OPERATOR = 'Person::"otto.weber@muster.example"'  # operator, itg-loa1 identity
OPERATOR_HIGH = 'Person::"ute.roth@muster.example"'  # operator, itg-loa3
CONTRACT = 'Contract::"C-2026-001"'


def org(identifier: str, name: str, country: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Organization", "id": identifier, "name": name, "country": country} | extra


def person(ref: str, organization: str, level: str, roles: list[str]) -> dict[str, Any]:
    return {
        "type": "Person",
        "id": EntityRef.parse(ref).id,
        "name": EntityRef.parse(ref).id.split("@")[0],
        "organization": organization,
        "country": "DE",
        "reference_level": level,
        "route": "own-scheme",
        "roles": roles,
    }


SCENARIO: list[dict[str, Any]] = [
    org(MUSTER, "Muster Maschinenbau GmbH", "DE", reference_level=3, route="own-scheme"),
    org(
        HAYABUSA,
        "Hayabusa Sensor Components K.K.",
        "JP",
        reference_level="itg-loa3",
        route="bridge",
        assessment="accept",
        criteria=["iso-iec-27001", "iec-62443-4-1"],
    ),
    org(ELBE, "Elbe Antriebe GmbH", "DE", reference_level=3, route="own-scheme"),
    org(
        SHADY, "Shady Parts GmbH", "DE", reference_level=2, route="trust-list", assessment="reject"
    ),
    person(ERIKA, MUSTER, "itg-loa2", ["quality-engineer"]),
    person(JONAS, MUSTER, "itg-loa2", []),
    person(SVEN, MUSTER, "itg-loa3", ["security-engineer"]),
    person(LENA, MUSTER, "itg-loa1", ["quality-engineer"]),
    person(KLAUS, MUSTER, "itg-loa3", ["authorized-signatory"]),
    person(PETRA, ELBE, "itg-loa3", ["quality-engineer"]),
    person(OPERATOR, MUSTER, "itg-loa1", ["operator"]),
    person(OPERATOR_HIGH, MUSTER, "itg-loa3", ["operator"]),
    {
        "type": "Procedure",
        "id": "firmware-update",
        "name": "Firmware update",
        "organization": MUSTER,
    },
    {
        "type": "Data",
        "id": "tr-ps200-0003",
        "name": "PS-200 0003 end-of-line test report",
        "organization": HAYABUSA,
        "category": "test-report",
        "contract": "C-2026-001",
    },
    {
        "type": "Data",
        "id": "tr-ps200-0004",
        "name": "PS-200 0004 end-of-line test report",
        "organization": HAYABUSA,
        "category": "test-report",
        "contract": "C-2026-001",
        "shared_at": "2027-01-01T00:00:00Z",
    },
    {
        "type": "System",
        "id": "urn:hayabusa:test-data-service",
        "name": "Hayabusa Test Data Service 1.0.0",
        "organization": HAYABUSA,
        "reference_level": 2,
        "route": "bridge",
    },
    {
        "type": "System",
        "id": "urn:muster:quality-gateway",
        "name": "Muster Quality Gateway 1.0.0",
        "organization": MUSTER,
        "reference_level": 2,
        "route": "own-scheme",
    },
    {
        "type": "System",
        "id": "urn:muster:assembly-line-2",
        "name": "Assembly line 2",
        "organization": MUSTER,
    },
    {
        "type": "Component",
        "id": "urn:hayabusa:ps-200:0001",
        "name": "PS-200 0001",
        "organization": HAYABUSA,
        "reference_level": 2,
        "route": "bridge",
        "criteria": ["iec-61508"],
        "part_number": "PS-200",
        "serial_number": "0001",
    },
    {
        "type": "Component",
        "id": "urn:shady:ps-9:0001",
        "name": "PS-9 0001",
        "organization": SHADY,
        "reference_level": 2,
        "route": "trust-list",
    },
    {
        "type": "Contract",
        "id": "C-2026-001",
        "parties": [MUSTER, HAYABUSA],
        "purposes": ["quality-assurance", "incoming-inspection"],
        "retention_days": 90,
        "valid_until": "2026-09-30T00:00:00Z",
    },
    {
        "type": "Data",
        "id": "tr-ps200-0001",
        "name": "PS-200 0001 end-of-line test report",
        "organization": HAYABUSA,
        "component": "urn:hayabusa:ps-200:0001",
        "category": "test-report",
        "contract": "C-2026-001",
        "shared_at": SHARED,
    },
    {
        "type": "Data",
        "id": "tr-ps200-0002",
        "name": "PS-200 0002 end-of-line test report",
        "organization": HAYABUSA,
        "category": "test-report",
        "contract": "C-2026-001",
        "shared_at": "2026-09-20T00:00:00Z",
    },
    {
        "type": "Data",
        "id": "fw-bom-ps200-2.1",
        "name": "PS-200 firmware 2.1 bill of materials",
        "organization": HAYABUSA,
        "category": "firmware-bom",
        "contract": "C-2026-001",
        "shared_at": SHARED,
    },
]


@pytest.fixture(scope="module")
def store() -> EntityStore:
    return EntityStore.from_data(SCENARIO, source="scenario")


@pytest.fixture(scope="module")
def policies() -> AccessPolicies:
    return AccessPolicies.default()


def ask(
    principal: str, action: str, resource: str, purpose: str = "quality-assurance", at: Any = AT
) -> AccessRequest:
    return AccessRequest(
        EntityRef.parse(principal),
        Action.parse(action),
        resource=EntityRef.parse(resource),
        at=at,
        purpose=purpose,
    )


# -- the reference scenario's decisions -------------------------------------------------------

NO_PERMIT = "no policy permits"

DECISIONS = [
    # (case, principal, action, resource, purpose, at, allowed, deciding policies)
    ("quality engineer reads a test report", ERIKA, "read", REPORT, "quality-assurance", AT,
     True, ["quality-engineer-reads-test-reports"]),
    ("for the contract's other purpose", ERIKA, "read", REPORT, "incoming-inspection", AT,
     True, ["quality-engineer-reads-test-reports"]),
    ("on the last day of retention", ERIKA, "read", REPORT, "quality-assurance",
     SHARED + 89 * DAY, True, ["quality-engineer-reads-test-reports"]),
    ("for a purpose the contract lacks", ERIKA, "read", REPORT, "marketing", AT,
     False, ["purpose-not-in-contract"]),
    ("after the retention period", ERIKA, "read", REPORT, "quality-assurance",
     SHARED + 90 * DAY, False, ["retention-period-over"]),
    ("both: every forbid that fired", ERIKA, "read", REPORT, "marketing", SHARED + 120 * DAY,
     False, ["purpose-not-in-contract", "retention-period-over"]),
    ("after the contract expired", ERIKA, "read", LATE_REPORT, "quality-assurance",
     datetime(2026, 10, 2, tzinfo=UTC), False, ["contract-expired"]),
    ("a colleague without the role", JONAS, "read", REPORT, "quality-assurance", AT,
     False, []),
    ("a quality engineer of another company", PETRA, "read", REPORT, "quality-assurance", AT,
     False, ["not-a-contract-party"]),
    ("the role, but an itg-loa1 identity", LENA, "read", REPORT, "quality-assurance", AT,
     False, ["identity-below-loa2"]),
    ("the firmware BOM needs the security role", ERIKA, "read", BOM, "quality-assurance", AT,
     False, []),
    ("security engineer reads the firmware BOM", SVEN, "read", BOM, "quality-assurance", AT,
     True, ["security-engineer-reads-firmware-bom"]),
    ("passing a partner's report on", ERIKA, "share", REPORT, "quality-assurance", AT,
     False, ["shared-data-stays"]),
    ("writing a partner's report", ERIKA, "write", REPORT, "quality-assurance", AT,
     False, []),
    ("the owner's software shares its report", GATEWAY, "share", REPORT, "quality-assurance",
     AT, True, ["owner-shares-own-data"]),
    ("the signatory signs the contract", KLAUS, "sign", CONTRACT, "", AT,
     True, ["signatory-signs-contract"]),
    ("a quality engineer may not sign", ERIKA, "sign", CONTRACT, "", AT, False, []),
    ("data under a contract without its sharing time", ERIKA, "read", UNDATED,
     "quality-assurance", AT, False, ["shared-at-unknown"]),
    ("data shared after the request", ERIKA, "read", FUTURE, "quality-assurance", AT,
     False, ["shared-in-the-future"]),
    ("an operator runs the firmware update", OPERATOR_HIGH, "execute", UPDATE, "", AT,
     True, ["operator-executes-procedure"]),
    ("an operator with an itg-loa1 identity may not", OPERATOR, "execute", UPDATE, "", AT,
     False, ["identity-below-loa2"]),
    ("an accepted supplier's sensor connects", SENSOR, "connect", LINE, "", AT,
     True, ["component-connects"]),
    ("a rejected supplier's part may not", KNOCKOFF, "connect", LINE, "", AT,
     False, ["organization-rejected"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("principal", "action", "resource", "purpose", "at", "allowed", "deciding"),
    [pytest.param(*row[1:], id=row[0]) for row in DECISIONS],
)
def test_reference_scenario_decisions(
    policies: AccessPolicies,
    store: EntityStore,
    principal: str,
    action: str,
    resource: str,
    purpose: str,
    at: datetime,
    allowed: bool,
    deciding: list[str],
) -> None:
    decision = policies.decide(ask(principal, action, resource, purpose, at), store)

    assert (decision.allowed, list(decision.policies)) == (allowed, deciding)
    assert decision.errors == ()
    if deciding:
        loaded = {p.id: p.reason for p in policies.policies}
        assert list(decision.reasons) == [loaded[p] for p in deciding]
    else:
        assert decision.reasons == (
            f"no policy permits {EntityRef.parse(principal)} to {action} "
            f"{EntityRef.parse(resource)}",
        )


def test_forbid_overrides_permit_and_names_itself() -> None:
    policies = AccessPolicies.from_sources(
        [
            (
                "mine.cedar",
                '@id("anyone") @reason("open house")\npermit (principal, action, resource);\n'
                '@id("no-marketing") @reason("not for marketing")\n'
                "forbid (principal, action, resource) "
                'when { context.purpose == "marketing" };\n',
            )
        ]
    )
    store = EntityStore.from_data(SCENARIO)

    allowed = policies.decide(ask(JONAS, "read", BOM, "quality-assurance"), store)
    denied = policies.decide(ask(JONAS, "read", BOM, "marketing"), store)

    assert (allowed.allowed, allowed.policies, allowed.reasons) == (
        True,
        ("anyone",),
        ("open house",),
    )
    assert (denied.allowed, denied.policies, denied.reasons) == (
        False,
        ("no-marketing",),
        ("not for marketing",),
    )


def test_default_deny_without_a_permit(store: EntityStore) -> None:
    policies = AccessPolicies.from_sources(
        [("f.cedar", '@id("f") @reason("r")\nforbid (principal, action, resource) when { false };')]
    )

    decision = policies.decide(ask(KLAUS, "sign", CONTRACT), store)

    assert not decision.allowed
    assert decision.policies == ()
    assert decision.reasons[0].startswith(NO_PERMIT)


def test_a_forbid_that_fails_to_evaluate_denies(store: EntityStore) -> None:
    # Cedar skips a policy whose evaluation fails, so a broken forbid would let a permit through.
    policies = AccessPolicies.from_sources(
        [
            (
                "overflow.cedar",
                '@id("anyone") @reason("open")\npermit (principal, action, resource);\n'
                '@id("overflow") @reason("never")\nforbid (principal, action, resource)\n'
                "when { principal.reference_level + 9223372036854775807 < 0 };\n",
            )
        ]
    )

    decision = policies.decide(ask(ERIKA, "read", REPORT), store)

    assert not decision.allowed
    assert decision.policies == ("overflow",)
    assert "overflow" in decision.errors[0]
    assert "could not be evaluated" in decision.reasons[0]
    assert "fail closed" in decision.reasons[0]


def test_requests_outside_the_schema_or_the_store_are_denied(
    policies: AccessPolicies, store: EntityStore
) -> None:
    misfit = policies.decide(ask(ERIKA, "connect", REPORT), store)
    stranger = policies.decide(ask('Person::"mallory@example.com"', "read", REPORT), store)

    assert not misfit.allowed
    assert "does not fit the access schema" in misfit.reasons[0]
    assert "not valid for" in misfit.errors[0]
    assert not stranger.allowed
    assert stranger.reasons == (
        'Trustbridge::Person::"mallory@example.com" is not in the entity store',
    )


def test_enforce_raises_with_the_decision(policies: AccessPolicies, store: EntityStore) -> None:
    assert policies.enforce(ask(ERIKA, "read", REPORT), store).allowed

    with pytest.raises(PolicyDeniedError, match="may not be passed on") as caught:
        policies.enforce(ask(ERIKA, "share", REPORT), store)
    assert caught.value.decision.policies == ("shared-data-stays",)
    assert caught.value.exit_code == 3


def test_a_store_grows_per_request_without_changing(
    policies: AccessPolicies, store: EntityStore
) -> None:
    newcomer = entity_from_data(
        person('Person::"nina@muster.example"', MUSTER, "itg-loa2", ["quality-engineer"])
    )

    grown = store.with_entities([newcomer])

    request = ask('Person::"nina@muster.example"', "read", REPORT)
    assert policies.decide(request, grown).allowed
    assert not policies.decide(request, store).allowed
    assert (len(grown), len(store)) == (len(SCENARIO) + 1, len(SCENARIO))


def test_decision_json_is_complete(policies: AccessPolicies, store: EntityStore) -> None:
    data = policies.decide(ask(ERIKA, "read", REPORT), store).to_json()

    assert data == {
        "decision": "allow",
        "allowed": True,
        "principal": 'Trustbridge::Person::"erika.berger@muster.example"',
        "action": "read",
        "resource": 'Trustbridge::Data::"tr-ps200-0001"',
        "purpose": "quality-assurance",
        "at": "2026-04-10T00:00:00Z",
        "policies": ["quality-engineer-reads-test-reports"],
        "reasons": [
            "a quality engineer of a party to the contract may read the test reports shared "
            "under it"
        ],
        "errors": [],
    }


# -- policy files -----------------------------------------------------------------------------


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "p.cedar"
    path.write_text(text)
    with pytest.raises(PolicyFileError) as caught:
        AccessPolicies.load([path])
    return [str(p).replace(f"{tmp_path}/", "") for p in caught.value.problems]


def test_the_shipped_policies_are_annotated_and_valid(policies: AccessPolicies) -> None:
    ids = [p.id for p in policies.policies]

    assert len(ids) == len(set(ids)) >= 10
    assert all(p.reason and p.effect in ("permit", "forbid") for p in policies.policies)
    shared = policies.get("shared-data-stays")
    assert shared is not None
    assert shared.effect == "forbid"


def test_a_schema_violation_names_file_line_and_column(tmp_path: Path) -> None:
    text = (
        '@id("fine") @reason("r")\npermit (principal, action, resource);\n\n'
        '@id("typo")\n@reason("r")\n'
        "permit (principal is Trustbridge::Person, action, resource)\n"
        'when {\n  principal.roles.contains("x") &&\n  principal.rolez.contains("y")\n};\n'
    )

    assert problems_of(tmp_path, text) == [
        'p.cedar:9:13: policy "typo" does not match the schema: attribute `rolez` on entity '
        "type `Trustbridge::Person` not found"
    ]


def test_an_unsafe_optional_attribute_is_a_schema_violation(tmp_path: Path) -> None:
    text = (
        '@id("unsafe") @reason("r")\n'
        "permit (principal, action, resource is Trustbridge::Data)\n"
        "when { resource.contract.purposes.contains(context.purpose) };\n"
    )

    [problem] = problems_of(tmp_path, text)
    assert problem.startswith('p.cedar:3:17: policy "unsafe" does not match the schema:')
    assert "optional attribute `contract`" in problem


def test_an_unknown_entity_type_is_pointed_at(tmp_path: Path) -> None:
    text = '@id("t") @reason("r")\npermit (principal is Trustbridge::Persn, action, resource);\n'

    assert (
        'p.cedar:2:22: policy "t" does not match the schema: unrecognized entity type '
        "`Trustbridge::Persn`" in problems_of(tmp_path, text)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '@id("a") @reason("r")\npermit (principal, action, resource)\nwhen { 1 + };\n',
            "p.cedar:3:12: does not parse: unexpected token `}`",
        ),
        (
            '@id("a") @reason("r")\npermit (principal, action, resource)\n'
            "when {\n  principal.foo(1)\n};\n",
            "p.cedar:4:13: does not parse: `foo` is not a valid method",
        ),
        (
            '@id("a") @reason("r")\npermit (principal, action, resource)\nwhen { true }\n',
            "p.cedar:3:14: does not parse: unexpected end of input",
        ),
        (
            '@id("a") @reason("r")\nallow (principal, action, resource);\n',
            "p.cedar:1:1: does not parse: invalid policy effect: allow",
        ),
    ],
    ids=["unexpected-token", "unknown-method", "missing-semicolon", "bad-effect"],
)
def test_a_parse_error_names_file_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    assert problems_of(tmp_path, text) == [expected]


def test_annotations_are_required_and_ids_unique(tmp_path: Path) -> None:
    text = (
        "permit (principal, action, resource);\n"
        '@id("a")\nforbid (principal, action, resource);\n'
        '@id("b") @reason("first")\nforbid (principal, action, resource);\n'
        '@id("b") @reason("second")\nforbid (principal, action, resource);\n'
        '@id("b c") @reason("space")\nforbid (principal, action, resource);\n'
    )

    assert problems_of(tmp_path, text) == [
        'p.cedar:1:1: policy 1 has no @id("...")',
        'p.cedar:1:1: policy 1 has no @reason("...")',
        'p.cedar:2:1: policy "a" has no @reason("...")',
        'p.cedar:6:1: policy "b" repeats the @id of the policy at p.cedar:4',
        "p.cedar:8:1: policy \"b c\": @id must be letters, digits, '.', '_', '-'",
    ]


def test_ids_must_be_unique_across_files_and_folders_are_read(tmp_path: Path) -> None:
    (tmp_path / "a.cedar").write_text(
        '@id("x") @reason("r")\npermit (principal, action, resource);'
    )
    (tmp_path / "b.cedar").write_text(
        '@id("x") @reason("r")\nforbid (principal, action, resource);'
    )
    (tmp_path / "notes.txt").write_text("not a policy")

    with pytest.raises(PolicyFileError, match=r"b\.cedar:1:1: policy \"x\" repeats the @id"):
        AccessPolicies.load([tmp_path])


def test_empty_and_unreadable_policy_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.cedar"
    empty.write_text("// nothing here\n")

    with pytest.raises(PolicyFileError, match="no access policies"):
        AccessPolicies.load([empty])
    with pytest.raises(InputError, match=r"cannot read access policies .*missing\.cedar"):
        AccessPolicies.load([tmp_path / "missing.cedar"])


def test_templates_are_refused() -> None:
    text = (
        '@id("a") @reason("r")\npermit (principal, action, resource);\n'
        '@id("t") @reason("r")\npermit (principal == ?principal, action, resource);\n'
    )

    with pytest.raises(PolicyFileError, match=r"t\.cedar:3:1: templates"):
        AccessPolicies.from_sources([("t.cedar", text)])


# -- entities ---------------------------------------------------------------------------------


def test_every_attribute_of_every_type_fits_the_cedar_schema() -> None:
    # Optional attributes included: Cedar checks the whole store against the schema file.
    procedure = {
        "type": "Procedure",
        "id": "urn:muster:procedure:firmware-update",
        "name": "Firmware update",
        "organization": MUSTER,
        "criteria": ["iec-62443-4-1"],
    }
    store = EntityStore.from_data([*SCENARIO, procedure])

    assert {e.type for e in store} == set(EntityType)
    assert "entity Procedure in [Organization]" in access_schema()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rolez": ["x"]}, "unknown field rolez"),
        ({"reference_level": "itg-loa4"}, "reference_level 'itg-loa4' is none of itg-loa1..3"),
        ({"reference_level": 5}, "reference_level 5 is not 0..3"),
        ({"route": "teleport"}, "route 'teleport' is none of"),
        ({"route": "none"}, "an identity without a route has no reference level"),
        ({"roles": "quality-engineer"}, "roles must be a list"),
        ({"roles": ["Quality Engineer"]}, "must be a set of lowercase names"),
        ({"country": "Germany"}, "country 'Germany' is not an ISO 3166 code"),
        ({"name": ""}, "attribute name must be a non-empty string"),
        ({"type": "Robot"}, "unknown entity type 'Robot'"),
        ({"id": ""}, "Person has no id"),
    ],
)
def test_bad_entity_data_is_refused_by_field(change: dict[str, Any], message: str) -> None:
    data = person(ERIKA, MUSTER, "itg-loa2", ["quality-engineer"]) | change

    with pytest.raises(EntityError, match=message):
        entity_from_data(data, source="people.yaml entity 3")


def test_contract_terms_come_in_as_plain_data() -> None:
    terms = {
        "id": "C-2026-001",
        "parties": [MUSTER, HAYABUSA],
        "purposes": ["quality-assurance"],
        "retention_days": 30,
    }

    contract = entity_from_data(terms, entity_type=EntityType.CONTRACT)

    assert contract.attrs["parties"] == {
        EntityRef(EntityType.ORGANIZATION, MUSTER),
        EntityRef(EntityType.ORGANIZATION, HAYABUSA),
    }
    assert contract.to_cedar()["attrs"]["retention_days"] == 30
    with pytest.raises(EntityError, match="retention_days -1 is negative"):
        entity_from_data(terms | {"retention_days": -1}, entity_type=EntityType.CONTRACT)
    with pytest.raises(EntityError, match="attribute retention_days is missing"):
        entity_from_data({**terms, "retention_days": None}, entity_type=EntityType.CONTRACT)


def test_store_refuses_dangling_references_and_duplicates() -> None:
    erika = entity_from_data(person(ERIKA, MUSTER, "itg-loa2", []))
    muster = entity_from_data(SCENARIO[0])

    with pytest.raises(EntityError, match=r'names Trustbridge::Organization::"VATDE-123456789"'):
        EntityStore([erika])
    with pytest.raises(EntityError, match="is in the entity store twice"):
        EntityStore([muster, erika, muster])


def test_membership_must_match_the_organization_attribute() -> None:
    muster = EntityRef(EntityType.ORGANIZATION, MUSTER)
    elbe = EntityRef(EntityType.ORGANIZATION, ELBE)
    attrs = {
        "name": "Erika",
        "organization": muster,
        "country": "DE",
        "reference_level": 2,
        "route": "own-scheme",
        "criteria": frozenset(),
        "roles": frozenset(),
    }
    ref = EntityRef.parse(ERIKA)

    assert Entity(ref, attrs, frozenset({muster})).parents == {muster}
    with pytest.raises(EntityError, match="must be in its organization"):
        Entity(ref, attrs, frozenset({elbe}))
    with pytest.raises(EntityError, match="cannot be in"):
        Entity(ref, attrs, frozenset({muster, EntityRef.parse(CONTRACT)}))


# -- entities from identities and trust profiles ----------------------------------------------

KEY = ec.generate_private_key(ec.SECP256R1())


def certificate(subject_: Subject, *, roles: tuple[Role, ...] = ()) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_.x509_name())
        .issuer_name(subject_.x509_name())
        .public_key(KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(AT - DAY)
        .not_valid_after(AT + 365 * DAY)
        .add_extension(subject_kind_extension(subject_.kind), critical=False)
    )
    if subject_.alt_names():
        builder = builder.add_extension(
            x509.SubjectAlternativeName(subject_.alt_names()), critical=False
        )
    if roles:
        policies = [x509.PolicyInformation(r.oid, None) for r in roles]
        builder = builder.add_extension(x509.CertificatePolicies(policies), critical=False)
    return builder.sign(KEY, hashes.SHA256())


def resolution(cert: x509.Certificate, route: Route, reference: int | None) -> Resolution:
    level = (
        Level("itg", f"itg-loa{reference}", f"1.2.{reference}", reference) if reference else None
    )
    return Resolution(
        route=route,
        path=(cert,),
        holder_level=Level("jp", "jp-level3", "1.3.3", 3),
        own_level=None,
        reference_level=level,
        reasons=(),
        routes=(),
        disagreement=None,
        revocation="",
        validated_at=AT,
        valid_until=AT + DAY,
    )


# The demonstrator's Japanese supplier and its authorized signatory.
HAYABUSA_ORG = JAPAN.company
YUKI = JAPAN.signatory
SENSOR_0001 = MachineSubject(
    manufacturer="Hayabusa Sensor Components K.K.",
    model="PS-200",
    serial_number="0001",
    country="JP",
)


def hayabusa_profile() -> TrustProfile:
    about = subject(
        f"urn:trustbridge:org:{HAYABUSA}",
        element="organization",
        organization=HAYABUSA,
        name="Hayabusa Sensor Components K.K.",
        partNumber=None,
    )
    verdicts = [
        verdict(
            claim("iso-iec-27001", True),
            about=about,
            valid_from=AT - 30 * DAY,
            valid_until=AT + 300 * DAY,
        ),
        verdict(
            claim("gdpr-processing", False, characteristic="privacy"),
            about=about,
            valid_from=AT - 30 * DAY,
            valid_until=AT + 300 * DAY,
        ),
    ]
    return TrustProfile.from_verdicts(about.id, verdicts, at=AT)


def test_an_organization_from_its_identity_profile_and_assessment() -> None:
    cert = certificate(HAYABUSA_ORG)

    entity = entity_from_identity(
        cert, resolution(cert, Route.BRIDGE, 3), profile=hayabusa_profile(), assessment="accept"
    )

    assert entity.ref == EntityRef(EntityType.ORGANIZATION, HAYABUSA)
    assert dict(entity.attrs) == {
        "name": "Hayabusa Sensor Components K.K.",
        "organization": entity.ref,
        "country": "JP",
        "reference_level": 3,
        "route": "bridge",
        # A claim of false (no GDPR processing) does not count as holding the criterion.
        "criteria": frozenset({"iso-iec-27001"}),
        "assessment": "accept",
    }


def test_a_person_gets_certificate_and_assigned_roles() -> None:
    cert = certificate(YUKI, roles=(Role.AUTHORIZED_SIGNATORY,))

    entity = entity_from_identity(
        cert, resolution(cert, Route.TRUST_LIST, 2), roles=["quality-engineer"]
    )

    assert entity.ref == EntityRef.parse('Person::"yuki.tanaka@hayabusa-sensors.example"')
    assert entity.attrs["roles"] == {"authorized-signatory", "quality-engineer"}
    assert (entity.attrs["reference_level"], entity.attrs["route"]) == (2, "trust-list")
    assert entity.parents == {EntityRef(EntityType.ORGANIZATION, HAYABUSA)}


def test_an_unresolved_identity_has_no_level() -> None:
    entity = entity_from_identity(certificate(YUKI), None)

    assert (entity.attrs["reference_level"], entity.attrs["route"]) == (0, "none")


def test_a_machine_needs_its_organization_named() -> None:
    cert = certificate(SENSOR_0001)

    with pytest.raises(EntityError, match="names no organization identifier"):
        entity_from_identity(cert, resolution(cert, Route.BRIDGE, 2))
    entity = entity_from_identity(cert, resolution(cert, Route.BRIDGE, 2), organization=HAYABUSA)

    assert entity.ref.type is EntityType.COMPONENT
    assert entity.id.startswith("urn:trustbridge:machine:")


def test_identity_builders_refuse_mismatches() -> None:
    yuki = certificate(YUKI)
    org = certificate(HAYABUSA_ORG)

    with pytest.raises(EntityError, match="resolution given is not about"):
        entity_from_identity(yuki, resolution(org, Route.BRIDGE, 3))
    with pytest.raises(EntityError, match="belongs to NTRJP-3180001012345, not VATDE"):
        entity_from_identity(yuki, None, organization=MUSTER)
    with pytest.raises(EntityError, match="is not about"):
        entity_from_identity(yuki, None, profile=hayabusa_profile())
    with pytest.raises(EntityError, match="only an organization has an assessment"):
        entity_from_identity(yuki, None, assessment="accept")
    with pytest.raises(EntityError, match="assessment 'maybe' is none of"):
        entity_from_identity(org, None, assessment="maybe")


def test_a_product_profile_makes_a_component() -> None:
    sensor = subject(organization=HAYABUSA)
    profile = TrustProfile.from_verdicts(
        sensor.id,
        [verdict(claim("iec-61508", "SIL2", characteristic="safety"), about=sensor)],
        at=datetime(2025, 6, 1, 12, tzinfo=UTC),
    )

    entity = entity_from_profile(profile)

    assert entity.ref == EntityRef(EntityType.COMPONENT, sensor.id)
    assert entity.attrs["criteria"] == {"iec-61508"}
    assert entity.attrs["part_number"] == "PS-200"
    assert (entity.attrs["reference_level"], entity.attrs["route"]) == (0, "none")


def test_entity_references_parse_and_print() -> None:
    ref = EntityRef.parse('Trustbridge::Person::"a \\"quoted\\" id"')

    assert ref == EntityRef(EntityType.PERSON, 'a "quoted" id')
    assert str(ref) == 'Trustbridge::Person::"a \\"quoted\\" id"'
    assert Action.parse('Trustbridge::Action::"read"') is Action.READ
    with pytest.raises(InputError, match="is not an entity reference"):
        EntityRef.parse("erika")
    with pytest.raises(InputError, match="unknown action 'delete'"):
        Action.parse("delete")


# -- trustbridge policy -----------------------------------------------------------------------

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(policy_app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def entities_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("entities") / "entities.json"
    path.write_text(json.dumps(SCENARIO, default=lambda t: t.isoformat()))
    return path


def test_cli_check_lists_the_shipped_policies() -> None:
    result = invoke("check")

    assert result.exit_code == 0, result.output
    assert "shared-data-stays (forbid) trustbridge/assessment/cedar/guards.cedar:" in result.output
    assert "data received from another organization may not be passed on" in result.output


def test_cli_check_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cedar"
    bad.write_text('@id("x")\npermit (principal, action, resource) when { principal.nope };\n')

    result = invoke("check", str(bad))

    assert result.exit_code == 2
    assert f'{bad}:1:1: policy "x" has no @reason("...")' in result.output
    assert f'{bad}:2:55: policy "x" does not match the schema: attribute `nope`' in result.output


def test_cli_decide_allows(entities_file: Path) -> None:
    result = invoke(
        "decide", "--principal", ERIKA, "--action", "read", "--resource", REPORT,
        "--entities", str(entities_file), "--purpose", "quality-assurance",
        "--at", "2026-04-10T00:00:00Z",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.output.startswith("allow Trustbridge::Person::")
    assert "quality-engineer-reads-test-reports: a quality engineer" in result.output


def test_cli_decide_denies_as_json_with_exit_3(entities_file: Path, tmp_path: Path) -> None:
    yaml_file = tmp_path / "entities.yaml"
    yaml_file.write_text(entities_file.read_text())  # JSON is YAML

    result = invoke(
        "decide", "--principal", ERIKA, "--action", "share", "--resource", REPORT,
        "--entities", str(yaml_file), "--purpose", "quality-assurance",
        "--at", "2026-04-10T00:00:00Z", "--json",
    )  # fmt: skip

    assert result.exit_code == 3
    data = json.loads(result.output)
    assert (data["decision"], data["policies"]) == ("deny", ["shared-data-stays"])


@pytest.mark.parametrize(
    ("via", "allowed", "deciding"),
    [
        pytest.param(QUALITY_GATEWAY, True, ["quality-engineer-reads-test-reports"], id="own"),
        pytest.param(GATEWAY, False, ["client-of-another-organization"], id="partner's"),
        pytest.param(LINE, False, ["client-below-loa2"], id="below-loa2"),
    ],
)
def test_a_person_acts_only_through_software_of_their_own_organization(
    policies: AccessPolicies, store: EntityStore, via: str, allowed: bool, deciding: list[str]
) -> None:
    through = store.get(EntityRef.parse(via))
    assert through is not None
    request = AccessRequest(
        EntityRef.parse(ERIKA),
        Action.READ,
        resource=EntityRef.parse(REPORT),
        at=AT,
        purpose="quality-assurance",
        via=through,
    )

    decision = policies.decide(request, store)

    assert (decision.allowed, list(decision.policies)) == (allowed, deciding)
    assert decision.errors == ()
    assert decision.to_json()["via"] == str(through.ref)
    assert str(request).endswith(f" via {through.ref}")


def test_only_software_or_a_machine_is_acted_through(store: EntityStore) -> None:
    person = store.get(EntityRef.parse(JONAS))
    with pytest.raises(InputError, match="through software or a machine"):
        AccessRequest(
            EntityRef.parse(ERIKA), Action.READ, resource=EntityRef.parse(REPORT), at=AT,
            via=person,
        )  # fmt: skip


def test_cli_decide_through_a_client_application(entities_file: Path) -> None:
    args = (
        "decide", "--principal", ERIKA, "--action", "read", "--resource", REPORT,
        "--entities", str(entities_file), "--purpose", "quality-assurance",
        "--at", "2026-04-10T00:00:00Z", "--json",
    )  # fmt: skip

    own = invoke(*args, "--via", QUALITY_GATEWAY)
    partners = invoke(*args, "--via", GATEWAY)
    unknown = invoke(*args, "--via", 'System::"urn:nobody"')

    assert own.exit_code == 0, own.output
    assert partners.exit_code == 3, partners.output
    assert json.loads(partners.output)["policies"] == ["client-of-another-organization"]
    assert isinstance(unknown.exception, NotFoundError)
    assert "no such entity" in unknown.exception.message


def test_cli_decide_with_own_policies(entities_file: Path, tmp_path: Path) -> None:
    mine = tmp_path / "open.cedar"
    mine.write_text('@id("open") @reason("everything goes")\npermit (principal, action, resource);')

    result = invoke(
        "decide", "--principal", JONAS, "--action", "write", "--resource", BOM,
        "--entities", str(entities_file), "--policies", str(mine), "--at", "2026-04-10T00:00:00Z",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "open: everything goes" in result.output


def test_cli_decide_refuses_bad_input(entities_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("- {type: Person, id: x, organization: nowhere, rolez: []}\n")

    bad_time = invoke(
        "decide", "--principal", ERIKA, "--action", "read", "--resource", REPORT,
        "--entities", str(entities_file), "--at", "yesterday",
    )  # fmt: skip
    bad_entities = invoke(
        "decide", "--principal", ERIKA, "--action", "read", "--resource", REPORT,
        "--entities", str(broken),
    )  # fmt: skip

    assert isinstance(bad_time.exception, InputError)
    assert "not an ISO 8601 time" in bad_time.exception.message
    assert isinstance(bad_entities.exception, EntityError)
    assert "broken.yaml entity 1" in bad_entities.exception.message
    assert "unknown field rolez" in bad_entities.exception.message


def test_cli_schema_prints_the_schema() -> None:
    result = invoke("schema")

    assert result.exit_code == 0
    assert result.output == access_schema()
