"""Step 5 of the demonstrator, the assessment half: each company assesses the other.

Muster (the customer) asks Hayabusa for its trust profile with a fresh nonce; Hayabusa presents
every credential in its wallet in one package signed with its organization identity; Muster
opens it with its own trust (the bridge or the trust lists for the identity and the issuers, the
accepted lists for the bodies' accreditations, the issuers' status lists over HTTP) and assesses
Hayabusa against its policy for a supplier of a safety-relevant component (high risk). Hayabusa
does the same the other way with its policy for a customer receiving test data. Each assessment
is written as JSON and as an HTML page, beside the policy it applied.
"""

from __future__ import annotations

import json
import secrets
import shutil
from typing import TYPE_CHECKING

from rich.markup import escape

from trustbridge.assessment import RequirementPolicy, assess_package, shipped_policy
from trustbridge.assessment.html import render_html
from trustbridge.demo.manifest import AssessmentEntry
from trustbridge.home.home import slugify

if TYPE_CHECKING:
    from trustbridge.demo.scenario import _Country, _Run

__all__ = ["POLICIES", "assess_partners"]

#: Who applies which shipped policy to the other (the customer's refers to a tier-2 policy).
POLICIES = {
    "customer": "safety-component-supplier-high",
    "supplier": "customer-test-data-medium",
}
_TIER_TWO = "component-subsupplier-medium"


def assess_partners(run: _Run, *, supplier: _Country, customer: _Country) -> None:
    """Both companies assess each other (see the module doc)."""
    folder = run.out / "artifacts" / "assessments"
    policies = folder / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    for name in (*POLICIES.values(), _TIER_TWO):
        shutil.copyfile(shipped_policy(name), policies / f"{name}.yaml")
    for assessor, subject, role in (
        (customer, supplier, "customer"),
        (supplier, customer, "supplier"),
    ):
        assessor_home = run.homes[assessor.company_node.name]
        subject_home = run.homes[subject.company_node.name]
        audience = run.served[assessor.company_node.name].http_url
        nonce = secrets.token_urlsafe(16)
        token = subject_home.credentials.package(audience=audience, nonce=nonce)
        name = f"{slugify(assessor.company.name)}-assesses-{slugify(subject.company.name)}"
        package_file = run.write(folder / f"{name}.package.json", token.encode() + b"\n")
        policy_path = policies / f"{POLICIES[role]}.yaml"
        policy = RequirementPolicy.load(policy_path)
        opened, result = assess_package(
            policy,
            token,
            verifier=assessor_home.credentials.verifier(),
            at=assessor_home.now(),
            audience=audience,
            nonce=nonce,
            assessor=assessor.company.name,
            source=package_file,
        )
        document = result.to_json()
        document["policy"]["file"] = run.rel(policy_path)
        file = run.write(
            folder / f"{name}.json",
            (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode(),
        )
        page = run.write(folder / f"{name}.html", render_html(document).encode())
        run.assessments.append(
            AssessmentEntry(
                assessor=assessor.company.name,
                subject=subject.company.name,
                policy=run.rel(policy_path),
                decision=result.decision.value,
                file=file,
                html=page,
                score=document["score"],
                confidence=document["confidence"],
                route=opened.route,
                reference_level=document["subject"]["reference_level"],
                package=package_file,
                credentials=len(opened.verdicts),
                refused=len(opened.refused),
            )
        )
        weakest = [c["characteristic"] for c in document["characteristics"] if not c["met"]]
        note = f"; unmet: {', '.join(weakest)}" if weakest else ""
        run.say(
            f"{escape(assessor.company.name)} assessed {escape(subject.company.name)} "
            f"({len(opened.verdicts)} credentials, identity by the {opened.route} route at "
            f"{document['subject']['reference_level']}) under {policy.id}: "
            f"[bold]{result.decision}[/], score "
            f"{document['score']}, confidence {document['confidence']}{escape(note)} -> {page}"
        )
