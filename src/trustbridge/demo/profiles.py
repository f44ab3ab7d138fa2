"""Step 4 of the demonstrator: the supplier's trustworthiness profile as signed credentials.

Fuji (JP conformity assessment body) certifies Hayabusa's information security management,
its secure development process and the sensor model's functional safety; Nordsee (DE) audits
Hayabusa's plant across the border; Hayabusa declares its privacy, reliability and resilience
commitments itself. Each issuer's node serves its status lists. Hayabusa verifies and keeps
each credential in its wallet; then presents each to Muster, bound to Muster's audience and a
fresh nonce (the SD-JWT ones disclosing only what a first contact needs), and Muster verifies
every presentation with its own trust (resolver over the bridge or the trust lists, accepted
lists for the bodies' accreditations, status lists over HTTP). A replayed presentation is
refused. Muster's view of the profile is written as JSON and as an AAS submodel.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from trustbridge.credentials.aas import to_json as aas_json
from trustbridge.credentials.errors import ReplayedPresentationError
from trustbridge.credentials.formats import Format, present
from trustbridge.credentials.model import Verdict, issuer_id_for
from trustbridge.credentials.profile import TrustProfile
from trustbridge.credentials.requests import credential_from_request
from trustbridge.demo.manifest import CredentialEntry
from trustbridge.errors import ReleaseError
from trustbridge.home.credentials import STATUS_PATH
from trustbridge.home.home import slugify
from trustbridge.pki.signers import FileSigner

if TYPE_CHECKING:
    from trustbridge.demo.scenario import _Country, _Run

__all__ = ["issue_customer_profile", "issue_profiles"]

_SENSOR = {
    "element": "product",
    "name": "HPS-200 pressure sensor",
    "partNumber": "HPS-200",
    "globalAssetId": "https://hayabusa-sensors.example/aas/HPS-200",
}
_PLANT = {"element": "system", "name": "Hayabusa Nagoya plant", "location": "Nagoya, JP"}


def _requests(supplier: _Country) -> list[tuple[str, Format, dict[str, Any], tuple[str, ...]]]:
    """(issuing node, format, request, what the supplier discloses to a first contact)."""
    organization = supplier.company.identifier
    company = {"element": "organization", "name": supplier.company.name}
    sensor = {**_SENSOR, "organization": organization}
    plant = {**_PLANT, "organization": organization}
    company["organization"] = organization
    everything: tuple[str, ...] = ()
    return [
        (
            "fuji",
            Format.VC_JWT,
            {
                "subject": company,
                "claims": [
                    {
                        "criterion": "iso-iec-27001",
                        "value": True,
                        "scope": "design, production and test of pressure sensors, Nagoya",
                    }
                ],
                "evidence": {"kind": "certificate", "reference": "FCA-ISMS-2026-0117"},
                "valid_days": 3 * 365,
            },
            everything,
        ),
        (
            "fuji",
            Format.VC_JWT,
            {
                "subject": company,
                "claims": [
                    {
                        "criterion": "iec-62443-4-1",
                        "value": "ML3",
                        "scope": "secure development lifecycle of sensor firmware",
                    }
                ],
                "evidence": {"kind": "certificate", "reference": "FCA-SDL-2026-0042"},
            },
            everything,
        ),
        (
            "fuji",
            Format.SD_JWT,
            {
                "subject": sensor,
                "claims": [
                    {
                        "criterion": "iec-61508",
                        "value": "SIL2",
                        "scope": "HPS-200 pressure measurement function",
                    }
                ],
                "evidence": {"kind": "certificate", "reference": "FCA-FS-2026-0815"},
            },
            ("credentialSubject.claims[0]", "credentialSubject.partNumber"),
        ),
        (
            "nordsee",
            Format.SD_JWT,
            {
                "subject": plant,
                "claims": [
                    {"criterion": "iec-62443-3-3", "value": "SL2", "scope": "plant OT network"}
                ],
                "evidence": {
                    "kind": "audit",
                    "reference": "NC-AUD-2026-0193",
                    "auditor": "Nordsee Certification GmbH, lead auditor J. Peters",
                    "date": "2026-10-14",
                    "scope": "OT network and remote access of the Nagoya plant",
                    "findings": ["minor: patch records of two test stations incomplete"],
                    "verdict": "pass-with-findings",
                },
                "valid_days": 365,
            },
            # The verdict is shown; the findings stay with the supplier until a contract.
            ("credentialSubject.claims[0]", "credentialSubject.location", "evidence[0].auditor"),
        ),
        (
            "hayabusa",
            Format.VC_JWT,
            {
                "subject": company,
                "claims": [
                    {
                        "criterion": "appi-processing",
                        "value": True,
                        "scope": "personal data of customers' staff",
                    }
                ],
                "evidence": {
                    "kind": "self-declaration",
                    "statement": "Hayabusa processes personal data under Japan's APPI.",
                },
            },
            everything,
        ),
        (
            "hayabusa",
            Format.SD_JWT,
            {
                "subject": sensor,
                "claims": [
                    {"criterion": "mtbf", "value": 150000.0, "scope": "HPS-200, 40 °C, 10 bar"}
                ],
                "evidence": {
                    "kind": "self-declaration",
                    "statement": "From field returns 2023-2026.",
                },
            },
            ("credentialSubject.claims[0]",),
        ),
        (
            "hayabusa",
            Format.VC_JWT,
            {
                "subject": company,
                "claims": [
                    {"criterion": "incident-response", "value": 24, "scope": "security incidents"}
                ],
                "evidence": {"kind": "self-declaration"},
            },
            everything,
        ),
        (
            "hayabusa",
            Format.VC_JWT,
            {
                "subject": company,
                "claims": [
                    {"criterion": "business-continuity", "value": True, "scope": "Nagoya plant"}
                ],
                "evidence": {"kind": "self-declaration"},
            },
            everything,
        ),
    ]


def issue_profiles(run: _Run, *, supplier: _Country, customer: _Country) -> None:
    """Issue, store, present and verify the supplier's credentials (see the module doc)."""
    holder_home = run.homes[supplier.company_node.name]
    verifier_home = run.homes[customer.company_node.name]
    holder = run.companies[supplier.code]
    holder_signer = FileSigner(holder.key)
    wallet = holder_home.credentials.verifier()
    verifier = verifier_home.credentials.verifier()
    audience = run.served[customer.company_node.name].http_url
    folder = run.out / "artifacts" / "credentials"
    verdicts: list[Verdict] = []
    last: tuple[str, str] | None = None
    for node, format, request, disclose in _requests(supplier):
        home = run.homes[node]
        draft = credential_from_request(
            request, issuer=home.credentials.issuer(), at=home.now(), source=f"{node} request"
        )
        token = home.credentials.issue(draft, format=format, holder=holder.certificate)
        criterion = draft.claims[0].criterion
        suffix = "sd-jwt" if format is Format.SD_JWT else "jwt"
        file = run.write(folder / f"{node}-{criterion}.{suffix}", token.encode() + b"\n")
        # The supplier checks what it received, then keeps it.
        holder_home.credentials.store(
            token,
            lambda t, file=file: wallet.verify(t, at=holder_home.now(), source=file),  # type: ignore[misc]
            source=file,
        )
        # First contact: a presentation for Muster, bound to a fresh nonce.
        nonce = secrets.token_urlsafe(16)
        presentation = present(
            token,
            holder=holder_signer,
            audience=audience,
            nonce=nonce,
            issued_at=holder_home.now(),
            disclose=list(disclose) if disclose else None,
        )
        run.write(
            folder / "presented" / f"{node}-{criterion}.{suffix}", presentation.encode() + b"\n"
        )
        verdict = verifier.verify(
            presentation,
            at=verifier_home.now(),
            audience=audience,
            nonce=nonce,
            source=f"presentation of {file}",
        )
        verdicts.append(verdict)
        last = (presentation, nonce)
        credential = verdict.credential
        status = next(e.list_url for e in credential.status if e.purpose == "revocation")
        run.credentials.append(
            CredentialEntry(
                id=credential.id,
                holder=supplier.company.name,
                issuer=credential.issuer.name,
                subject=credential.subject.id,
                criterion=criterion,
                characteristic=draft.claims[0].characteristic.value,
                value=draft.claims[0].value,
                evidence=credential.evidence.kind.value,
                format=format.value,
                file=file,
                status=status,
                issuer_node=node,
                verified_by=customer.company.name,
                route=verdict.issuer_route,
                disclosed=list(verdict.disclosed),
            )
        )
        shown = f"; disclosed {', '.join(verdict.disclosed)}" if verdict.disclosed else ""
        run.say(
            f"{escape(credential.issuer.name)}: [bold]{criterion}[/] = {draft.claims[0].value!r}"
            f" ({credential.evidence.kind}, {format}) about {escape(credential.subject.name)}; "
            f"{escape(customer.company.name)} verified the presentation (issuer by the "
            f"{verdict.issuer_route} route{shown}) -> {file}"
        )
    assert last is not None
    try:
        verifier.verify(
            last[0],
            at=verifier_home.now(),
            audience=audience,
            nonce=secrets.token_urlsafe(16),
            source="replayed presentation",
        )
    except ReplayedPresentationError as exc:
        run.say(f"a replayed presentation is refused: {escape(exc.message)}")
    else:
        raise ReleaseError("a replayed presentation was accepted")
    subject = issuer_id_for(supplier.company.identifier)
    profile = TrustProfile.from_verdicts(subject, verdicts, at=verifier_home.now())
    name = slugify(supplier.company.name)
    profile_file = run.write(
        folder / f"{name}-profile.json", json.dumps(profile.to_json(), indent=2).encode()
    )
    aas_file = run.write(folder / f"{name}-profile.aas.json", aas_json(profile).encode())
    lists = ", ".join(
        sorted({f"{run.homes[n].config.base_url}{STATUS_PATH}/" for n, *_ in _requests(supplier)})
    )
    run.say(
        f"{escape(customer.company.name)}'s view of {escape(supplier.company.name)}'s profile: "
        f"{len(profile.claims)} verified claims -> {profile_file}, AAS submodel -> {aas_file}; "
        f"status lists served at {lists}"
    )


def issue_customer_profile(run: _Run, *, customer: _Country, supplier: _Country) -> None:
    """The customer's side, which the supplier will assess in step 5: Nordsee certifies
    Muster's information security management, Muster declares its GDPR processing and its
    vulnerability disclosure policy itself. Muster verifies and keeps both in its wallet."""
    holder_home = run.homes[customer.company_node.name]
    holder = run.companies[customer.code]
    wallet = holder_home.credentials.verifier()
    reader = run.homes[supplier.company_node.name].credentials.verifier()
    organization = customer.company.identifier
    company = {"element": "organization", "name": customer.company.name}
    company["organization"] = organization
    folder = run.out / "artifacts" / "credentials"
    requests: list[tuple[str, dict[str, Any]]] = [
        (
            customer.body.name,
            {
                "subject": company,
                "claims": [
                    {
                        "criterion": "iso-iec-27001",
                        "value": True,
                        "scope": "engineering, production and after-sales, Stuttgart",
                    }
                ],
                "evidence": {"kind": "certificate", "reference": "NC-ISMS-2026-0311"},
            },
        ),
        *(
            (
                customer.company_node.name,
                {
                    "subject": company,
                    "claims": [claim],
                    "evidence": {
                        "kind": "self-declaration",
                        "statement": f"Declared by the management of {customer.company.name}.",
                    },
                },
            )
            for claim in (
                {"criterion": "gdpr-processing", "value": True, "scope": "supplier data"},
                {
                    "criterion": "vulnerability-disclosure",
                    "value": True,
                    "scope": "machines and their software",
                },
            )
        ),
    ]
    for node, request in requests:
        home = run.homes[node]
        draft = credential_from_request(
            request, issuer=home.credentials.issuer(), at=home.now(), source=f"{node} request"
        )
        token = home.credentials.issue(draft, format=Format.VC_JWT, holder=holder.certificate)
        criterion = draft.claims[0].criterion
        file = run.write(folder / f"{node}-{criterion}.jwt", token.encode() + b"\n")
        holder_home.credentials.store(
            token,
            lambda t, file=file: wallet.verify(t, at=holder_home.now(), source=file),  # type: ignore[misc]
            source=file,
        )
        # What the supplier will see of it (step 5 presents it in a package).
        verdict = reader.verify(token, at=run.homes[supplier.company_node.name].now(), source=file)
        credential = verdict.credential
        claim = credential.claims[0]
        run.credentials.append(
            CredentialEntry(
                id=credential.id,
                holder=customer.company.name,
                issuer=credential.issuer.name,
                subject=credential.subject.id,
                criterion=claim.criterion,
                characteristic=claim.characteristic.value,
                value=claim.value,
                evidence=credential.evidence.kind.value,
                format=Format.VC_JWT.value,
                file=file,
                status=next(e.list_url for e in credential.status if e.purpose == "revocation"),
                issuer_node=node,
                verified_by=supplier.company.name,
                route=verdict.issuer_route,
                disclosed=[],
            )
        )
        run.say(
            f"{escape(credential.issuer.name)}: [bold]{claim.criterion}[/] = {claim.value!r} "
            f"({credential.evidence.kind}) about {escape(customer.company.name)}, kept in its "
            f"wallet -> {file}"
        )
