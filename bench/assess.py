"""Assessing a partner, and deciding access with Cedar, each beside its baseline.

Assessment half (``assessment_records``): Muster assesses Hayabusa, which presents 10
credentials (certificates from Fuji over the bridge, an audit from Nordsee, self-declarations;
``vc+jwt`` and SD-JWT) in one package signed by its organization identity. Ours: open the
package (its signature, the partner's identity through the resolver, the challenge, every
presentation verified) and assess it against the shipped policy
``safety-component-supplier-high``: ``assess_package(...)`` (``open_package``, ``assess``).
Baseline, same run, same presentations, same warm verifier: ``CredentialVerifier.verify`` of
each of the 10 presentations alone. Warm: issuer resolutions and status lists are cached, as
for a verifier that sees many credentials of few issuers. Goal (issue 6): at least 0.8 times
its rate (scoring, the package and the partner's identity add at most a quarter).

Access half (``access_records``): Muster's quality engineer asks to read a Hayabusa sensor test
report, shared under the contract, for one of its purposes (allowed: one permit fires, and
every forbid of the shipped policies is evaluated). The entity store holds the reference
scenario at a plant's scale: three organizations, 60 people, one contract, 200 sensors and
their 200 test reports and a firmware bill of materials. Ours:
``AccessPolicies.default().decide(request, store)``, the request and store built once (as a
node builds a request per call but reuses its store). Baseline, same run, same policies,
entities and request: a bare ``cedarpy.is_authorized`` call with

- ``pre-parsed``: the pre-parsed ``PolicySet``, ``Entities`` and ``Schema`` handles ours holds,
  and the request dict ours sends (the fairest, fastest bare call). Goal (issue 6): at least
  0.8 times its rate.
- ``all-strings``: the policy text, the entities as a JSON string and the schema text, parsed
  on every call, as the simplest use of ``cedarpy`` does (no goal: shows what the handles save).

Ours and the baseline take turns for ``--seconds`` each pair, about 2 ms of calls at a time;
each figure is the median over its samples. Before timing, both sides must reach the same
decision. ``python -m bench.assess [--seconds S]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cedarpy

from bench._common import Paired, Record, machine_summary, print_table, rate_record, write_results
from trustbridge.assessment.access import (
    AccessPolicies,
    AccessRequest,
    Action,
    EntityRef,
    EntityStore,
    EntityType,
    access_schema,
)

ACCESS_GOAL = 0.8
ASSESSMENT_GOAL = 0.8
MUSTER, HAYABUSA, ELBE = "VATDE-123456789", "NTRJP-3180001012345", "VATDE-555555555"
SHARED = datetime(2026, 4, 1, tzinfo=UTC)
ROLES = ("quality-engineer", "security-engineer", "operator", "authorized-signatory")


def _scenario() -> list[dict[str, Any]]:
    """The reference scenario's entities, at a plant's scale."""
    items: list[dict[str, Any]] = [
        {"type": "Organization", "id": MUSTER, "name": "Muster Maschinenbau GmbH",
         "country": "DE", "reference_level": 3, "route": "own-scheme"},
        {"type": "Organization", "id": HAYABUSA, "name": "Hayabusa Sensor Components K.K.",
         "country": "JP", "reference_level": 3, "route": "bridge", "assessment": "accept",
         "criteria": ["iso-iec-27001", "iec-62443-4-1"]},
        {"type": "Organization", "id": ELBE, "name": "Elbe Antriebe GmbH", "country": "DE",
         "reference_level": 3, "route": "own-scheme"},
        {"type": "Contract", "id": "C-2026-001", "parties": [MUSTER, HAYABUSA],
         "purposes": ["quality-assurance", "incoming-inspection"], "retention_days": 90},
        {"type": "Data", "id": "fw-bom-ps200-2.1", "name": "PS-200 firmware 2.1 BOM",
         "organization": HAYABUSA, "category": "firmware-bom", "contract": "C-2026-001",
         "shared_at": SHARED},
    ]  # fmt: skip
    for index in range(60):
        organization = (MUSTER, HAYABUSA, ELBE)[index % 3]
        items.append(
            {
                "type": "Person",
                "id": f"person-{index:02d}@{organization.lower()}.example",
                "name": f"Person {index:02d}",
                "organization": organization,
                "country": "JP" if organization == HAYABUSA else "DE",
                "reference_level": 2 + index % 2,
                "route": "bridge" if organization == HAYABUSA else "own-scheme",
                "roles": [ROLES[index % len(ROLES)]],
            }
        )
    for serial in range(200):
        sensor = f"urn:hayabusa:ps-200:{serial:04d}"
        items.append(
            {
                "type": "Component",
                "id": sensor,
                "name": f"PS-200 {serial:04d}",
                "organization": HAYABUSA,
                "reference_level": 2,
                "route": "bridge",
                "criteria": ["iec-61508"],
                "part_number": "PS-200",
                "serial_number": f"{serial:04d}",
            }
        )
        items.append(
            {
                "type": "Data",
                "id": f"tr-ps200-{serial:04d}",
                "name": f"PS-200 {serial:04d} end-of-line test report",
                "organization": HAYABUSA,
                "component": sensor,
                "category": "test-report",
                "contract": "C-2026-001",
                "shared_at": SHARED,
            }
        )
    return items


def _strings_request(request: AccessRequest) -> dict[str, Any]:
    """The same request with entity uids in Cedar's text form."""
    return {
        "principal": str(request.principal),
        "action": f'Trustbridge::Action::"{request.action}"',
        "resource": str(request.resource),
        "context": request.cedar_request()["context"],
    }


def _shipped_policy_text() -> str:
    """The shipped policy files, concatenated (what ``AccessPolicies.default`` reads)."""
    folder = resources.files("trustbridge.assessment") / "cedar"
    names = sorted(f.name for f in folder.iterdir() if f.name.endswith(".cedar"))
    return "\n".join((folder / name).read_text(encoding="utf-8") for name in names)


def access_records(seconds: float = 2.0) -> list[Record]:
    """Our access decision beside bare ``cedarpy.is_authorized`` calls (see the module doc)."""
    policies = AccessPolicies.default()
    store = EntityStore.from_data(_scenario(), source="bench scenario")
    quality_engineer = next(
        e.ref
        for e in store
        if e.type is EntityType.PERSON
        and e.attrs["organization"].id == MUSTER
        and "quality-engineer" in e.attrs["roles"]
    )
    request = AccessRequest(
        quality_engineer,
        Action.READ,
        resource=EntityRef(EntityType.DATA, "tr-ps200-0117"),
        at=SHARED + timedelta(days=9),
        purpose="quality-assurance",
    )
    ours_decision = policies.decide(request, store)
    if not ours_decision.allowed or ours_decision.errors:
        raise RuntimeError(f"the benchmark request must be allowed: {ours_decision.explain()}")

    policy_set, entities = policies.cedar_policies(), store.cedar_entities()
    schema = cedarpy.Schema.from_str(access_schema())
    cedar_request = request.cedar_request()
    policy_text = _shipped_policy_text()
    entities_json = json.dumps(store.to_cedar())
    schema_text = access_schema()
    strings_request = _strings_request(request)

    def ours() -> None:
        policies.decide(request, store)

    def pre_parsed() -> None:
        cedarpy.is_authorized(cedar_request, policy_set, entities, schema)

    def all_strings() -> None:
        cedarpy.is_authorized(strings_request, policy_text, entities_json, schema_text)

    for label, result in (
        ("pre-parsed", cedarpy.is_authorized(cedar_request, policy_set, entities, schema)),
        (
            "all-strings",
            cedarpy.is_authorized(strings_request, policy_text, entities_json, schema_text),
        ),
    ):
        if not result.allowed or result.diagnostics.errors:
            raise RuntimeError(f"the bare Cedar call ({label}) must allow the request")

    name = f"cedarpy {version('cedarpy')} is_authorized"
    print(
        f"access: {len(policies.policies)} policies, {len(store)} entities; "
        f"decision {ours_decision.effect} by {', '.join(ours_decision.policies)}"
    )
    records = []
    for variant, bare, label, goal in (
        ("pre-parsed", pre_parsed, "PolicySet/Entities/Schema handles", ACCESS_GOAL),
        ("all-strings", all_strings, "policy text, entities JSON, schema text", None),
    ):
        timed = Paired.measure(ours, bare, seconds=seconds)
        print(
            f"  {variant}: ours {timed.ours * 1e6:.1f} us, "
            f"bare cedarpy {timed.baseline * 1e6:.1f} us"
        )
        records.append(
            rate_record(
                "access-decision",
                unit="decisions/s",
                ours=round(1 / timed.ours, 1),
                baseline=round(1 / timed.baseline, 1),
                baseline_name=f"{name} ({label})",
                goal=goal,
                variant=variant,
            )
        )
    return records


def assessment_records(seconds: float = 2.0) -> list[Record]:
    """Assessing a partner's package of 10 credentials beside verifying them (module doc)."""
    from tests.assessment.partner import AUDIENCE, NONCE, hayabusa_tokens, package
    from tests.credentials.world import HAYABUSA, World, build_world
    from tests.homes import NOW

    from trustbridge.assessment import RequirementPolicy, assess_package, shipped_policy
    from trustbridge.credentials.formats import present

    def declaration(criterion: str, value: Any) -> dict[str, Any]:
        return {
            "subject": dict(HAYABUSA),
            "claims": [{"criterion": criterion, "value": value}],
            "evidence": {"kind": "self-declaration"},
        }

    with tempfile.TemporaryDirectory() as folder:
        world: World = build_world(Path(folder))
        try:
            tokens = hayabusa_tokens(world) + [
                world.issue(world.hayabusa, declaration(criterion, value))
                for criterion, value in (
                    ("vulnerability-disclosure", True),
                    ("gdpr-processing", True),
                    ("incident-response", 12),
                    ("business-continuity", True),
                )
            ]
            assert len(tokens) == 10
            signed = package(world, tokens)
            holder = world.hayabusa.holder.signer
            presentations = [
                present(t, holder=holder, audience=AUDIENCE, nonce=NONCE, issued_at=NOW)
                for t in tokens
            ]
            verifier = world.verifier()
            policy = RequirementPolicy.load(shipped_policy("safety-component-supplier-high"))

            def ours() -> str:
                _, result = assess_package(
                    policy,
                    signed,
                    verifier=verifier,
                    at=NOW,
                    audience=AUDIENCE,
                    nonce=NONCE,
                    assessor="Muster",
                )
                return result.decision.value

            def baseline() -> int:
                return sum(
                    verifier.verify(p, at=NOW, audience=AUDIENCE, nonce=NONCE).holder_bound
                    for p in presentations
                )

            decision = ours()
            if baseline() != 10 or decision != "accept-with-conditions":
                raise RuntimeError(f"the benchmark partner must verify and pass: {decision}")
            fetches = world.fetcher.count
            timed = Paired.measure(ours, baseline, seconds=seconds)
            if world.fetcher.count != fetches:
                raise RuntimeError("the warm assessment fetched something: not warm")
        finally:
            world.close()
    print(
        f"assessment of 10 credentials: {1 / timed.ours:,.0f}/s ({timed.ours * 1e3:.2f} ms); "
        f"verifying the 10 presentations alone {1 / timed.baseline:,.0f}/s "
        f"({timed.baseline * 1e3:.2f} ms)"
    )
    return [
        rate_record(
            "assessment-warm",
            unit="assessments/s",
            ours=round(1 / timed.ours, 2),
            baseline=round(1 / timed.baseline, 2),
            baseline_name="CredentialVerifier.verify of the same 10 presentations "
            "(audience + nonce, warm verifier)",
            goal=ASSESSMENT_GOAL,
            variant="10 credentials, package + policy safety-component-supplier-high",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time per measurement")
    args = parser.parse_args(argv)
    print(f"assess: {machine_summary()}")
    records = assessment_records(args.seconds) + access_records(args.seconds)
    print_table(records, title="assessments and access decisions (per second)")
    write_results("assess", records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
