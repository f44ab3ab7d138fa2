"""Steps 5 to 7 of the demonstrator, between the two company nodes as separate processes.

5. First contact: Muster's node (the customer) discovers Hayabusa's node over HTTPS, both
   authenticate with their organization identities (each resolves the other through the bridge or
   the trust lists), each asks for the other's trust profile with a fresh nonce and assesses it
   against its own requirement policy.
6. Contract: Muster proposes terms; its authorized signatory signs the rendered PDF (PAdES with a
   timestamp from Rheintal's TSA); Hayabusa's signatory countersigns on Hayabusa's side (timestamp
   from Sakura's TSA); Muster adds the validation data and a document timestamp (B-LTA) and both
   nodes keep the concluded contract.
7. Data exchange: Hayabusa's test data service sends signed and encrypted test reports and the
   firmware bill of materials; Muster's node checks sender, contract and access policy and answers
   with signed receipts; a message for a purpose the contract does not allow is refused. People
   at Muster then ask to read them: the access policy lets a quality engineer read test reports,
   and refuses the firmware bill of materials to them.
"""

from __future__ import annotations

import json
from importlib import resources
from io import BytesIO
from typing import TYPE_CHECKING, Any

from asn1crypto import cms
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.reader import PdfFileReader
from rich.markup import escape

from trustbridge.demo.assessments import POLICIES, record_assessment
from trustbridge.demo.manifest import AccessEntry, ContractEntry, SessionEntry, SignatureEntry
from trustbridge.exchange.contract import ContractTerms
from trustbridge.exchange.protocol import Step
from trustbridge.home import Home
from trustbridge.home.exchange import ExchangeSettings, read_message, signer_chains
from trustbridge.home.home import slugify
from trustbridge.node.onboard import http_timestamper, onboard, send_message
from trustbridge.pki.keys import private_key_pem
from trustbridge.pki.signers import FileSigner

if TYPE_CHECKING:
    from trustbridge.demo.scenario import _Country, _Holder, _Run

__all__ = ["conclude_contract", "exchange_data", "first_contact", "scenario_terms", "setup_node"]

#: What quality engineers and security engineers at the customer may do (organization roles).
_QUALITY = "quality-engineer"


def _chain(run: _Run, c: _Country, holder: _Holder, ca: str) -> list[Any]:
    return [holder.certificate, *run.homes[c.tsp.name].chain_of(ca)[:-1]]


def _role(run: _Run, c: _Country) -> str:
    return "customer" if c.code == "de" else "supplier"


def setup_node(run: _Run, c: _Country, home: Home) -> None:
    """The company node's exchange setup: newcomer policy, TSA, key agreement, TLS."""
    tsp = next(n for n in run.nodes if n["node"] == c.tsp.name)
    home.exchange.configure(
        ExchangeSettings(
            policy=POLICIES[_role(run, c)], min_level="itg-loa2", tsa=f"{tsp['http_url']}/tsa"
        ),
        agreement_key=private_key_pem(run.agreements[c.code].key),
        agreement_chain=_chain(run, c, run.agreements[c.code], c.identity_ca.slug),
        tls_key=private_key_pem(run.node_tls[c.code].key),
        tls_chain=_chain(run, c, run.node_tls[c.code], c.device_ca.slug),
    )


def _say(run: _Run) -> Any:
    return lambda text: run.say(escape(text))


def first_contact(run: _Run, *, supplier: _Country, customer: _Country) -> str:
    """Step 5 over the wire; returns the session id."""
    muster = run.homes[customer.company_node.name]
    partner = run.served[supplier.company_node.name].https_url
    result = onboard(muster, partner_url=partner, until=Step.PROFILE, say=_say(run))
    session = result.session
    if session.state != "presented":
        raise RuntimeError(f"first contact ended {session.state}: {session.reason}")
    hayabusa = run.homes[supplier.company_node.name].exchange.session(session.id)
    record_assessment(
        run,
        assessor=customer,
        subject=supplier,
        role="customer",
        document=session.data["assessment"],
        package=session.data["package"],
    )
    record_assessment(
        run,
        assessor=supplier,
        subject=customer,
        role="supplier",
        document=hayabusa.data["assessment"],
        package=session.data["requests"]["profile"]["package"],
    )
    run.sessions.append(
        SessionEntry(
            id=session.id,
            initiator=customer.company.name,
            responder=supplier.company.name,
            url=partner,
            state=session.state,
            steps=list(session.steps),
            formats=dict(session.data.get("selected") or {}),
        )
    )
    return session.id


def scenario_terms() -> dict[str, Any]:
    """The reference scenario's contract terms (``demo/contract-terms.json``): Muster buys
    HPS-200 sensors from Hayabusa; test reports and the firmware BOM flow under its usage policy."""
    text = (resources.files("trustbridge.demo") / "contract-terms.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _terms(run: _Run) -> dict[str, Any]:
    """The scenario's terms, valid from now for two years."""
    now = run.clock.now().replace(microsecond=0)
    return {
        **scenario_terms(),
        "valid_from": now.isoformat().replace("+00:00", "Z"),
        "valid_until": now.replace(year=now.year + 2).isoformat().replace("+00:00", "Z"),
    }


def _timestamp_tokens(pdf: bytes) -> list[bytes]:
    """The RFC 3161 tokens in a PDF: signature timestamps and document timestamps."""
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    tokens: list[bytes] = []
    for signature in reader.embedded_signatures:
        if signature.sig_object.get("/Type") == "/DocTimeStamp":
            contents = bytes(signature.sig_object["/Contents"])
            tokens.append(cms.ContentInfo.load(contents).dump())
            continue
        for info in signature.signed_data["signer_infos"]:
            for attribute in info["unsigned_attrs"] or []:
                if attribute["type"].native == "signature_time_stamp_token":
                    tokens.extend(value.dump() for value in attribute["values"])
    return tokens


def conclude_contract(
    run: _Run, session_id: str, *, supplier: _Country, customer: _Country
) -> None:
    """Step 6: propose, countersign on the other side, archive, conclude."""
    folder = run.out / "artifacts" / "contract"
    terms_data = _terms(run)
    terms_file = folder / "terms.json"
    run.write(terms_file, (json.dumps(terms_data, indent=2, ensure_ascii=False) + "\n").encode())
    terms = ContractTerms.load(terms_file)
    muster = run.homes[customer.company_node.name]
    hayabusa = run.homes[supplier.company_node.name]
    ours = run.signatories[customer.code]
    result = onboard(
        muster,
        session_id=session_id,
        terms=terms,
        signatory=(FileSigner(ours.key), _chain(run, customer, ours, customer.identity_ca.slug)),
        say=_say(run),
    )
    if result.session.state != "proposed":
        raise RuntimeError(
            f"the contract was not proposed: {result.waiting or result.session.reason}"
        )
    theirs = run.signatories[supplier.code]
    tsa = hayabusa.exchange.settings().tsa
    assert tsa is not None
    hayabusa.exchange.countersign(
        session_id,
        signer=FileSigner(theirs.key),
        chain=_chain(run, supplier, theirs, supplier.identity_ca.slug),
        timestamp=http_timestamper(tsa),
    )
    run.say(
        f"{escape(supplier.signatory.display_name)} countersigned for "
        f"{escape(supplier.company.name)} on its node"
    )
    result = onboard(muster, session_id=session_id, say=_say(run))
    if result.session.state != "concluded":
        raise RuntimeError(
            f"the contract was not concluded: {result.waiting or result.session.reason}"
        )
    pdf = muster.exchange.contract(session_id)
    if hayabusa.exchange.contract(session_id) != pdf:
        raise RuntimeError("the two nodes keep different contract documents")
    pdf_file = run.write(folder / f"{slugify(terms.id)}.pdf", pdf)
    report = muster.exchange.verify_contract(pdf)
    report.require(complete=True, archived=True)
    report_file = run.write(
        folder / "verification.json",
        (json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n").encode(),
    )
    tokens = [
        run.write(folder / f"timestamp-{i}.tsr", token)
        for i, token in enumerate(_timestamp_tokens(pdf), start=1)
    ]
    chains = folder / "signer-chains.pem"
    run.write(
        chains,
        b"".join(c.public_bytes(Encoding.PEM) for chain in signer_chains(pdf) for c in chain),
    )
    run.contract = ContractEntry(
        id=terms.id,
        pdf=pdf_file,
        terms=run.rel(terms_file),
        report=report_file,
        session=session_id,
        archived=report.archived,
        signatures=[
            SignatureEntry(
                field=s.field,
                signer=s.signer,
                organization=s.organization_identifier,
                signing_time=s.signing_time.isoformat() if s.signing_time else None,
                ok=s.ok,
                modification_level=s.modification_level,
            )
            for s in report.signatures
        ],
        timestamps=tokens,
    )
    run.say(
        f"contract [bold]{escape(terms.id)}[/] concluded: signed by "
        + ", ".join(escape(s.signer) for s in report.signatures)
        + f", archived (PAdES B-LTA) -> {pdf_file}"
    )


def _report(serial: str, at: str) -> bytes:
    return (
        json.dumps(
            {
                "type": "end-of-line-test-report",
                "model": "HPS-200",
                "serial_number": serial,
                "tested_at": at,
                "pressure_range_bar": [0, 250],
                "accuracy_percent_fs": 0.12,
                "leak_test": "pass",
                "verdict": "pass",
            },
            indent=2,
        ).encode()
        + b"\n"
    )


def _bom() -> bytes:
    return (
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "metadata": {"component": {"name": "HPS-200 firmware", "version": "2.4.1"}},
                "components": [
                    {"type": "library", "name": "mbedtls", "version": "3.6.2"},
                    {"type": "operating-system", "name": "zephyr", "version": "3.7.0"},
                ],
            },
            indent=2,
        ).encode()
        + b"\n"
    )


def exchange_data(run: _Run, session_id: str, *, supplier: _Country, customer: _Country) -> None:
    """Step 7: messages from the supplier's software to the customer's node; reading them."""
    assert run.contract is not None
    folder = run.out / "artifacts" / "messages"
    hayabusa = run.homes[supplier.company_node.name]
    muster = run.homes[customer.company_node.name]
    software = run.software[supplier.code]
    sender_chain = _chain(run, supplier, software, supplier.device_ca.slug)
    at = run.clock.now().isoformat()
    serial = supplier.batch.serials[0] if supplier.batch else "HPS200-000001"
    plan = [
        ("test-report", "quality-assurance", f"Test report {serial}", _report(serial, at), serial),
        ("firmware-bom", "vulnerability-management", "Firmware BOM HPS-200 2.4.1", _bom(), None),
        # The contract allows test reports for quality assurance and incoming inspection only.
        (
            "test-report",
            "marketing",
            f"Test report {serial} (for a brochure)",
            _report(serial, at),
            serial,
        ),
    ]
    for element, purpose, name, data, component in plan:
        sent = send_message(
            hayabusa,
            contract=run.contract["id"],
            partner=customer.company.identifier,
            content=data,
            media_type="application/json",
            name=name,
            element=element,
            purpose=purpose,
            sender=FileSigner(software.key),
            sender_chain=sender_chain,
            component=component,
        )
        stored = hayabusa.exchange.message(sent.id, direction="out")
        file = run.write(folder / f"{sent.id}.jwe", stored["token"].encode() + b"\n")
        receipt = run.write(folder / f"{sent.id}.receipt.jws", sent.receipt.encode() + b"\n")
        run.messages.append(
            {
                "id": sent.id,
                "from": supplier.company.name,
                "to": customer.company.name,
                "sender": software.certificate.subject.rfc4514_string(),
                "element": element,
                "purpose": purpose,
                "file": file,
                "accepted": sent.accepted,
                "reason": sent.reason,
                "receipt": receipt,
                "policies": list(sent.policies),
            }
        )
        verdict = "[green]accepted[/]" if sent.accepted else "[red]refused[/]"
        run.say(f"{escape(name)} ({element}, for {purpose}): {verdict}: {escape(sent.reason)}")
    reader = run.signatories[customer.code]
    reader_chain = _chain(run, customer, reader, customer.identity_ca.slug)
    accepted = [m for m in run.messages if m["accepted"]]
    for message in accepted:
        decision, content = read_message(
            muster,
            str(message["id"]),
            reader=reader_chain,
            purpose="quality-assurance"
            if message["element"] == "test-report"
            else "vulnerability-management",
            roles=[_QUALITY],
        )
        run.access.append(
            AccessEntry(
                reader=customer.signatory.display_name,
                roles=[_QUALITY],
                message=str(message["id"]),
                element=str(message["element"]),
                purpose=decision.request.purpose,
                allowed=decision.allowed,
                reason="; ".join(decision.reasons),
                policies=list(decision.policies),
            )
        )
        verdict = "[green]may read[/]" if content is not None else "[red]may not read[/]"
        run.say(
            f"{escape(customer.signatory.display_name)} (quality engineer) {verdict} "
            f"{escape(str(message['element']))}: {escape('; '.join(decision.reasons))}"
        )
