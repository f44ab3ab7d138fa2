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
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from trustbridge.assessment import shipped_policy
from trustbridge.assessment.html import render_html
from trustbridge.demo.manifest import AssessmentEntry
from trustbridge.home.home import slugify

if TYPE_CHECKING:
    from trustbridge.demo.scenario import _Country, _Run

__all__ = ["POLICIES", "copy_policies", "record_assessment"]

#: Who applies which shipped policy to the other (the customer's refers to a tier-2 policy).
POLICIES = {
    "customer": "safety-component-supplier-high",
    "supplier": "customer-test-data-medium",
}
_TIER_TWO = "component-subsupplier-medium"


def copy_policies(run: _Run) -> Path:
    """The shipped policies the two companies apply, copied beside the assessments."""
    policies = run.out / "artifacts" / "assessments" / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    for name in (*POLICIES.values(), _TIER_TWO):
        shutil.copyfile(shipped_policy(name), policies / f"{name}.yaml")
    return policies


def record_assessment(
    run: _Run,
    *,
    assessor: _Country,
    subject: _Country,
    role: str,
    document: dict[str, Any],
    package: str,
) -> None:
    """Write one assessment (JSON, HTML, the package it rested on) and list it."""
    folder = run.out / "artifacts" / "assessments"
    policy_path = copy_policies(run) / f"{POLICIES[role]}.yaml"
    name = f"{slugify(assessor.company.name)}-assesses-{slugify(subject.company.name)}"
    package_file = run.write(folder / f"{name}.package.json", package.encode() + b"\n")
    document = dict(document)
    document["policy"] = dict(document["policy"], file=run.rel(policy_path))
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
            decision=document["decision"],
            file=file,
            html=page,
            score=document["score"],
            confidence=document["confidence"],
            route=document.get("route", ""),
            reference_level=document["subject"]["reference_level"],
            package=package_file,
            credentials=int(document.get("credentials_counted", 0)),
            refused=int(document.get("credentials_refused", 0)),
        )
    )
    weakest = [c["characteristic"] for c in document["characteristics"] if not c["met"]]
    note = f"; unmet: {', '.join(weakest)}" if weakest else ""
    run.say(
        f"{escape(assessor.company.name)} assessed {escape(subject.company.name)} "
        f"({document.get('credentials_counted')} credentials, identity by the "
        f"{document.get('route')} "
        f"route at {document['subject']['reference_level']}) under {document['policy']['id']}: "
        f"[bold]{document['decision']}[/], score {document['score']}, confidence "
        f"{document['confidence']}{escape(note)} -> {page}"
    )
