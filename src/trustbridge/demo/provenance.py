"""Steps 8 and 9 of the demo: each sensor's lifecycle as signed statements in the nodes'
transparency logs, verified end to end by the customer; then a sensor's key is compromised
and what it signs afterwards is refused everywhere.

Hayabusa's production line (a machine identity) signs that each sensor was manufactured, had
its firmware installed and passed its end-of-line test; Hayabusa's organization identity signs
that it shipped it to Muster. Each statement goes to Hayabusa's node over HTTPS and comes back
with a receipt (entry, signed checkpoint, inclusion proof). Muster's node imports the sensor's
statements with their receipts (checked against the newest checkpoint of Hayabusa's log, which
Muster follows with the key from Hayabusa's signed description and also witnesses), then logs
what happens at Muster: received (Muster's organization identity), integrated into the AM-7
machine and its firmware updated (both signed by the machine's own identity).
"""

from __future__ import annotations

import hashlib
import json
import ssl
from typing import TYPE_CHECKING, Any

import httpx
from cryptography import x509
from rich.markup import escape

from trustbridge.demo.manifest import LogEntryRecord, ProvenanceRecord
from trustbridge.errors import TrustbridgeError
from trustbridge.node.logclient import monitor, request_cosignature
from trustbridge.node.provenance import import_component, record_remote, verify_component
from trustbridge.pki.keys import load_private_key_pem
from trustbridge.pki.signers import FileSigner
from trustbridge.provenance.statement import (
    Component,
    LifecycleEvent,
    SignedStatement,
    build_statement,
    sign_statement,
)

if TYPE_CHECKING:
    from trustbridge.demo.scenario import _Country, _Holder, _Run

__all__ = ["after_revocation", "publish_logs", "record_lifecycles", "verify_sensors"]

_FIRMWARE = {"name": "HPS-200 firmware", "version": "2.4.1"}
_UPDATE = {"name": "HPS-200 firmware", "version": "2.5.0"}


def _say(run: _Run, text: str) -> None:
    run.say(escape(text))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _tls(run: _Run, c: _Country) -> ssl.SSLContext:
    """Trust for a company node's HTTPS: its country's root (the node's TLS identity is a
    software identity of the company, issued under it, named ``localhost``)."""
    return ssl.create_default_context(cafile=str(run.out / run.roots[c.code]))


def _sensors(run: _Run, c: _Country) -> list[dict[str, Any]]:
    return [dict(i) for i in run.identities if i.get("batch") and i["scheme"] == c.code]


def _holder_of(run: _Run, identity: dict[str, Any]) -> tuple[FileSigner, list[x509.Certificate]]:
    key = load_private_key_pem(
        (run.out / identity["key"]).read_bytes(), None, source=identity["key"]
    )
    chain = [
        x509.load_pem_x509_certificate((run.out / identity["certificate"]).read_bytes()),
        *x509.load_pem_x509_certificates((run.out / identity["chain_file"]).read_bytes()),
    ]
    return FileSigner(key, identity["key"]), chain


def _chain(run: _Run, c: _Country, holder: _Holder, ca: str) -> list[x509.Certificate]:
    return [holder.certificate, *run.homes[c.tsp.name].chain_of(ca)[:-1]]


class _Actor:
    """An identity the demo plays, signing statements."""

    def __init__(self, name: str, signer: FileSigner, chain: list[x509.Certificate]) -> None:
        self.name, self.signer, self.chain = name, signer, chain

    def sign(
        self,
        component: Component,
        event: LifecycleEvent,
        details: dict[str, Any],
        previous: SignedStatement | None,
        run: _Run,
    ) -> SignedStatement:
        payload = build_statement(
            component, event, details=details, previous=previous, claimed_time=run.clock.now()
        )
        return sign_statement(payload, self.signer, self.chain)


def _actor(run: _Run, c: _Country, holder: _Holder, ca: str, name: str) -> _Actor:
    return _Actor(name, FileSigner(holder.key), _chain(run, c, holder, ca))


class _Chain:
    """One component's statements as the demo makes them: each signed by an actor, logged by
    its organization's node, written with its receipt to the artifacts."""

    def __init__(self, run: _Run, component: Component) -> None:
        self.run, self.component = run, component
        self.previous: SignedStatement | None = None
        self.statements: list[str] = []
        self.receipts: list[str] = []
        self.events: list[str] = []

    def act(
        self, actor: _Actor, country: _Country, event: LifecycleEvent, details: dict[str, Any]
    ) -> None:
        run, serial = self.run, self.component.id
        self.previous = actor.sign(self.component, event, details, self.previous, run)
        answer = _record(run, country, self.previous)
        n = len(self.statements) + 1
        self.statements.append(_write(run, serial, n, event.value, self.previous.to_json()))
        self.receipts.append(_write(run, serial, n, f"{event.value}.receipt", answer["receipt"]))
        self.events.append(event.value)


def _record(run: _Run, c: _Country, statement: SignedStatement) -> dict[str, Any]:
    node = run.served[c.company_node.name]
    return record_remote(node.https_url, statement, verify=_tls(run, c), server_name="localhost")


def _party(c: _Country) -> dict[str, str]:
    return {"name": c.company.name, "identifier": c.company.identifier}


def _write(run: _Run, component: str, n: int, event: str, data: dict[str, Any]) -> str:
    folder = run.out / "artifacts" / "provenance" / component
    return run.write(folder / f"{n:02d}-{event}.json", json.dumps(data, indent=2).encode())


def record_lifecycles(run: _Run, *, supplier: _Country, customer: _Country) -> None:
    """Step 8: every sensor's lifecycle, logged at the node of the organization that acts."""
    assert supplier.batch is not None and customer.machine is not None
    line = _actor(
        run,
        supplier,
        run.machines[supplier.code],
        supplier.device_ca.slug,
        "Hayabusa's production line",
    )
    hayabusa = _actor(
        run, supplier, run.companies[supplier.code], supplier.identity_ca.slug, "Hayabusa"
    )
    muster = _actor(
        run, customer, run.companies[customer.code], customer.identity_ca.slug, "Muster"
    )
    machine = _actor(
        run,
        customer,
        run.machines[customer.code],
        customer.device_ca.slug,
        f"the {customer.machine.model} machine",
    )
    product = {
        "serial_number": customer.machine.serial_number,
        "model": customer.machine.model,
        "manufacturer": customer.machine.manufacturer,
        "uri": customer.machine.uri,
    }
    # Hayabusa registers its production line: only registered equipment may sign that a
    # sensor was made, flashed or tested (a sensor's own key may not vouch for another).
    run.homes[supplier.company_node.name].provenance.register_equipment(line.chain[0])
    bom = hashlib.sha256(_FIRMWARE["name"].encode() + _FIRMWARE["version"].encode()).hexdigest()
    supplier_node = run.served[supplier.company_node.name]
    customer_home = run.homes[customer.company_node.name]
    for identity in _sensors(run, supplier):
        certificate = x509.load_pem_x509_certificate(
            (run.out / identity["certificate"]).read_bytes()
        )
        component = Component.for_certificate(
            certificate,
            global_asset_id=f"urn:hayabusa:aas:{certificate.subject.rfc4514_string()}",
        )
        serial = component.id
        steps: list[tuple[_Actor, _Country, LifecycleEvent, dict[str, Any]]] = [
            (line, supplier, LifecycleEvent.MANUFACTURED, {}),
            (
                line,
                supplier,
                LifecycleEvent.FIRMWARE_INSTALLED,
                {
                    "software": {**_FIRMWARE, "sha256": _digest(f"firmware {_FIRMWARE}")},
                    "sbom": {"sha256": bom, "uri": "urn:hayabusa:sbom:hps-200:2.4.1"},
                },
            ),
            (
                line,
                supplier,
                LifecycleEvent.TESTED,
                {
                    "result": "pass",
                    "report_sha256": _digest(f"end-of-line test report {serial}"),
                    "station": "EOL-3",
                },
            ),
            (
                hayabusa,
                supplier,
                LifecycleEvent.SHIPPED,
                {"recipient": _party(customer), "reference": f"DN-{serial}"},
            ),
        ]
        chain = _Chain(run, component)
        for actor, country, event, details in steps:
            chain.act(actor, country, event, details)
        # Muster takes the sensor in: its node imports the chain with Hayabusa's receipts.
        imported = import_component(customer_home, supplier_node.http_url, serial)
        for actor, event, details in (
            (muster, LifecycleEvent.RECEIVED, {"sender": _party(supplier)}),
            (machine, LifecycleEvent.INTEGRATED, {"product": product}),
            (
                machine,
                LifecycleEvent.FIRMWARE_UPDATED,
                {
                    "software": {**_UPDATE, "sha256": _digest(f"firmware {_UPDATE}")},
                    "sbom": {"sha256": _digest(f"sbom {_UPDATE}")},
                },
            ),
        ):
            chain.act(actor, customer, event, details)
        run.provenance.append(
            ProvenanceRecord(
                component=serial,
                node=customer.company_node.name,
                statements=chain.statements,
                events=chain.events,
                receipts=chain.receipts,
                verification="",
                valid=False,
            )
        )
        _say(
            run,
            f"{serial}: {', '.join(chain.events[:4])} logged at "
            f"{supplier.company_node.name}'s node (receipts), {len(imported)} imported by "
            f"{customer.company_node.name}'s node "
            f"against {supplier.company_node.name}'s newest checkpoint, then "
            f"{', '.join(chain.events[4:])} logged there",
        )
    # Muster witnesses Hayabusa's log: it checks consistency with what it saw, then cosigns.
    line_text = request_cosignature(
        run.homes[supplier.company_node.name], run.served[customer.company_node.name].http_url
    )
    _say(
        run,
        f"{customer.company_node.name}'s node witnessed {supplier.company_node.name}'s "
        f"checkpoint: {line_text.split(' ', 2)[1]}",
    )


def verify_sensors(run: _Run, *, customer: _Country) -> None:
    """Step 9, first half: Muster verifies every sensor's chain end to end."""
    home = run.homes[customer.company_node.name]
    for record in run.provenance:
        result = verify_component(home, record["component"])
        record["verification"] = run.write(
            run.out / "artifacts" / "provenance" / record["component"] / "verification.json",
            json.dumps(result.to_json(), indent=2, default=str).encode(),
        )
        record["valid"] = result.valid
        if not result.valid:
            failures = [*result.log_failures, *result.report.failures]
            raise TrustbridgeError(
                f"the provenance of {record['component']} does not verify: {failures[:2]}"
            )
        routes = sorted({f"{e.route}" for e in result.report.timeline if e.route})
        _say(
            run,
            f"{record['component']}: {len(result.report.timeline)} statements valid, signers "
            f"trusted at their logged times by the {' and '.join(routes)} routes",
        )


def after_revocation(run: _Run, *, supplier: _Country, customer: _Country) -> None:
    """Step 9, second half: the revoked sensor signs a firmware report about itself; both
    nodes refuse to log it, and its earlier chain (signed by others, before) still verifies."""
    revoked = run.revocations[-1]["certificate"]
    victim = next(i for i in _sensors(run, supplier) if i["certificate"] == revoked)
    signer, chain = _holder_of(run, victim)
    home = run.homes[customer.company_node.name]
    serial = (
        x509.load_pem_x509_certificate((run.out / victim["certificate"]).read_bytes())
        .subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)[0]
        .value
    )
    assert isinstance(serial, str)
    previous = home.provenance.history(serial)[-1].statement
    payload = build_statement(
        previous.statement.component,
        LifecycleEvent.FIRMWARE_UPDATED,
        details={
            "software": {"name": "HPS-200 firmware", "version": "9.9.9", "sha256": "0" * 64},
            "sbom": {"sha256": "0" * 64},
        },
        previous=previous,
        claimed_time=run.clock.now(),
    )
    forged = sign_statement(payload, signer, chain)
    record = next(r for r in run.provenance if r["component"] == serial)
    refused: list[dict[str, str]] = []
    file = run.write(
        run.out / "artifacts" / "provenance" / serial / "refused-after-revocation.json",
        json.dumps(forged.to_json(), indent=2).encode(),
    )
    for c in (customer, supplier):
        try:
            _record(run, c, forged)
        except TrustbridgeError as exc:
            refused.append({"node": c.company_node.name, "statement": file, "reason": exc.message})
            continue
        raise TrustbridgeError(
            f"{c.company_node.name}'s node logged a statement the revoked sensor signed"
        )
    record["refused"] = refused
    result = verify_component(home, serial)
    if not result.valid:
        raise TrustbridgeError(f"{serial}'s chain before the revocation no longer verifies")
    _say(
        run,
        f"the revoked sensor {serial} signed a firmware report about itself: refused by "
        + " and ".join(f"{r['node']} ({r['reason'][:90]}…)" for r in refused)
        + f"; its chain of {len(result.report.timeline)} statements, all signed before by "
        "others, still verifies",
    )


def publish_logs(run: _Run) -> None:
    """Every node's newest checkpoint, fetched over HTTP and checked as a monitor would."""
    monitor_home = run.homes[run.countries[0].company_node.name]
    for entry in run.nodes:
        name = entry["node"]
        url = f"{entry['http_url']}/log/v1"
        note = httpx.get(f"{url}/checkpoint", timeout=30)
        note.raise_for_status()
        key = httpx.get(f"{url}/key", timeout=30).text.strip()
        own = name == monitor_home.config.node_name
        report = None if own else monitor(monitor_home, entry["http_url"])
        size = int(note.content.split(b"\n")[1])
        run.logs.append(
            LogEntryRecord(
                node=name,
                origin=note.content.split(b"\n", 1)[0].decode(),
                url=url,
                checkpoint=run.write(
                    run.out / "artifacts" / "logs" / f"{name}.checkpoint", note.content
                ),
                size=size,
                public_key=key,
                cosigned_by=list(report.cosigned_by) if report else [],
            )
        )
    total = sum(r["size"] for r in run.logs)
    _say(
        run,
        f"{len(run.logs)} logs, {total} entries in all; checkpoints -> artifacts/logs/ "
        "(Muster's node monitors every other log: all consistent)",
    )
