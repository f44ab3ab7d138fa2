"""The demo's OPC UA step: the customer (Muster Maschinenbau, DE) reads the test results of a
sensor from the supplier's (Hayabusa, JP) end-of-line test station.

Two RSA identities, issued in step 3 (:func:`issue_identities`): the station ``EOL-3`` (a
Hayabusa machine identity whose certificate names ``127.0.0.1`` and ``localhost``) and Muster's
OPC UA client (a software identity). :func:`read_test_results` runs the station's server on a
free loopback port, with Hayabusa's node home deciding on clients, and reads a sensor's results
with Muster's node home deciding on the station, in both security policies (SignAndEncrypt).
Each side resolves the other through the served nodes (bridge or trust lists, CRLs from the
issuing TSP's node). The reads act for a person: Muster's operator (an RSA person identity with
the operator role, approved by the German registration officer) in an X.509 user identity
token, resolved by the station like the client; and the station decides every read with
Hayabusa's access policies, the results being shared under the concluded contract: the operator
may read them, Muster's client application alone may not. Then three clients are turned away: a
self-signed one, one from a scheme nobody linked, and Muster's own client describing itself with
an application URI its certificate does not name.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rich.markup import escape

from trustbridge.errors import NotFoundError, TrustbridgeError
from trustbridge.opcua import (
    ApplicationIdentity,
    Measurement,
    PeerRole,
    PeerValidator,
    PeerVerdict,
    SecurityPolicy,
    SensorTestResult,
)
from trustbridge.opcua.access import StationAccess
from trustbridge.opcua.client import ReadResult, SessionRefusedError, read_test_result
from trustbridge.opcua.identity import UserIdentity
from trustbridge.opcua.station import StationServer
from trustbridge.pki.ca import (
    CaLimits,
    CertificateAuthority,
    Endpoints,
    build_root_certificate,
    self_signed_certificate,
)
from trustbridge.pki.keys import KeyType, generate_private_key, load_private_key_pem
from trustbridge.pki.profiles import (
    MachineSubject,
    PersonSubject,
    Role,
    SoftwareSubject,
    SubjectKind,
    profile_for,
)
from trustbridge.pki.signers import FileSigner
from trustbridge.provenance.statement import LifecycleEvent

if TYPE_CHECKING:
    from trustbridge.demo.scenario import _Country, _Run

__all__ = ["STATION_URI", "issue_identities", "read_test_results"]

#: The station's application URI (its certificate's URI name; the client insists on it).
STATION_URI = "urn:hayabusa:eol-test-station:EOL-3"
_HOST = "127.0.0.1"


def _station(supplier: _Country) -> MachineSubject:
    return MachineSubject(
        manufacturer=supplier.company.name,
        model="HPS EOL Test Station",
        serial_number="EOL-3",
        country=supplier.country,
        application_uri=STATION_URI,
        dns_names=("localhost",),
        ip_addresses=(_HOST,),
    )


def _client(customer: _Country) -> SoftwareSubject:
    return SoftwareSubject(
        name=f"{customer.software.name} OPC UA Client",
        version=customer.software.version,
        organization=customer.company.name,
        organization_identifier=customer.company.identifier,
        country=customer.country,
        dns_names=("localhost",),
    )


#: The purpose the station decides reads for (one the contract allows for test reports).
READ_PURPOSE = "incoming-inspection"


def _operator(customer: _Country) -> PersonSubject:
    """The customer's operator at incoming inspection, who reads through the OPC UA client."""
    return PersonSubject(
        given_name="Jonas",
        surname="Becker",
        country=customer.country,
        organization=customer.company.name,
        organization_identifier=customer.company.identifier,
        email="jonas.becker@muster-maschinenbau.example",
        roles=frozenset({Role.OPERATOR}),
    )


def issue_identities(run: _Run, *, supplier: _Country, customer: _Country) -> None:
    """Step 3: the station's and the client's RSA identities (released by each company's
    enrolment credential, like the other machines and software), listed in the manifest's
    identities, and installed in the company nodes' homes (``HOME/opcua/``) so that
    ``trustbridge --home DIR/nodes/<node> opcua serve|read`` use them later.

    Call it after the companies' identities (``run.companies``) exist; the homes of the company
    nodes are installed into where they exist already (after ``run.company_home``).
    """
    # The person the customer's client acts for: an RSA key (the user token is signed with the
    # channel's RSA security policy), generated by the holder, approved by the officer.
    officer = run.officers.get(customer.code) or run.appoint_officer(customer)
    run.approved(
        customer,
        _operator(customer),
        ca=customer.identity_ca.slug,
        level=customer.high_level,
        officer=officer,
        key_type=KeyType.RSA2048,
    )
    for country, subject in ((supplier, _station(supplier)), (customer, _client(customer))):
        run.enrolled(
            country,
            subject,
            ca=country.device_ca.slug,
            credential=run.companies[country.code],
            key_type=KeyType.RSA2048,
        )
        home = run.homes.get(country.company_node.name)
        if home is not None:
            entry = _entry(run, country, subject.display_name)
            ApplicationIdentity.install(
                home.path,
                (run.out / entry["certificate"]).read_bytes()
                + (run.out / entry["chain_file"]).read_bytes(),
                (run.out / entry["key"]).read_bytes(),
            )


def _entry(run: _Run, c: _Country, holder: str) -> dict[str, Any]:
    for entry in run.identities:
        if entry["holder"] == holder and entry["scheme"] == c.code:
            return dict(entry)
    raise TrustbridgeError(
        f"the demo has no identity of {holder} ({c.code}): issue_identities() runs in step 3"
    )


def _held(
    run: _Run, c: _Country, holder: str
) -> tuple[FileSigner, tuple[x509.Certificate, ...], str]:
    """A demo identity's key (behind a signer), its chain (leaf first) and its certificate file."""
    entry = _entry(run, c, holder)
    key = load_private_key_pem((run.out / entry["key"]).read_bytes(), None, source=entry["key"])
    chain = (
        x509.load_pem_x509_certificate((run.out / entry["certificate"]).read_bytes()),
        *x509.load_pem_x509_certificates((run.out / entry["chain_file"]).read_bytes()),
    )
    return FileSigner(key, entry["key"]), chain, entry["certificate"]


def _identity(run: _Run, c: _Country, holder: str) -> tuple[ApplicationIdentity, str]:
    signer, chain, file = _held(run, c, holder)
    return ApplicationIdentity(signer, chain), file


def _user(run: _Run, c: _Country, holder: str) -> tuple[UserIdentity, str]:
    signer, chain, file = _held(run, c, holder)
    return UserIdentity(signer, chain), file


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sensors(run: _Run, supplier: _Country) -> list[tuple[str, str]]:
    """The supplier's sensors: (serial number, certificate file) of each batch identity."""
    sensors = []
    for entry in run.identities:
        if entry.get("batch") and entry["scheme"] == supplier.code:
            path = run.out / entry["certificate"]
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
            value = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
            sensors.append((str(value), entry["certificate"]))
    return sensors


def _result(serial: str, tested_at: datetime) -> SensorTestResult:
    """A sensor's end-of-line result: the report digest as the provenance step's ``tested``
    statement carries it, measured values derived from the serial (stable per sensor)."""
    spread = int(_digest(serial)[:4], 16) / 0xFFFF
    return SensorTestResult(
        serial=serial,
        verdict="pass",
        tested_at=tested_at,
        report_sha256=_digest(f"end-of-line test report {serial}"),
        measurements=(
            Measurement("ZeroOffset", round(-0.05 + 0.1 * spread, 4), "kPa"),
            Measurement("SpanError", round(0.02 + 0.08 * spread, 4), "%FS"),
            Measurement("Hysteresis", round(0.01 + 0.03 * spread, 4), "%FS"),
            Measurement("InsulationResistance", round(500 + 400 * spread, 1), "MOhm"),
        ),
    )


def _self_signed(uri: str, at: datetime) -> ApplicationIdentity:
    """A client that made its own certificate: a fine OPC UA certificate, trusted by nobody."""
    key = generate_private_key(KeyType.RSA2048)
    assert isinstance(key, rsa.RSAPrivateKey)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Unknown Integrator"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Self-signed OPC UA Client"),
        ]
    )
    signer = FileSigner(key, "self-signed")
    certificate = self_signed_certificate(
        signer,
        name,
        not_before=at - timedelta(minutes=5),
        not_after=at + timedelta(days=365),
        extensions=(
            # What our profile gives an RSA machine: a fine OPC UA application certificate.
            (profile_for(SubjectKind.MACHINE).key_usage_extension(KeyType.RSA2048), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
            (x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), False),
        ),
    )
    return ApplicationIdentity(signer, (certificate,))


def _unlinked(customer: _Country, at: datetime) -> ApplicationIdentity:
    """A client whose identity comes from a scheme that no bridge cross-certified and no trust
    list names: a root of its own, made for the occasion, with trustbridge's profiles."""
    root_key = FileSigner(generate_private_key(KeyType.P256), "unlinked root")
    level = x509.ObjectIdentifier(
        f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'trustbridge:demo:unlinked-scheme').int}"
    )
    limits = CaLimits(levels=(level,), kinds=frozenset({SubjectKind.SOFTWARE}), path_length=0)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, customer.country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Unlinked Industrial Scheme"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Unlinked Industrial Root CA"),
        ]
    )
    root = CertificateAuthority(
        certificate=build_root_certificate(
            signer=root_key, name=name, limits=limits, at=at, lifetime=timedelta(days=365)
        ),
        signer=root_key,
        limits=limits,
        endpoints=Endpoints.for_ca("http://unlinked.invalid", "root"),
    )
    key = generate_private_key(KeyType.RSA2048)
    subject = SoftwareSubject(
        name="Gateway of an Unlinked Scheme",
        version="1.0.0",
        organization="Unlinked Machine Works",
        organization_identifier="VATDE-999999999",
        country=customer.country,
    )
    certificate = root.issue(subject=subject, public_key=key.public_key(), level=level, at=at)
    return ApplicationIdentity(FileSigner(key, "unlinked"), (certificate, root.certificate))


def _provenance_check(run: _Run, customer: _Country, result: SensorTestResult) -> str:
    """Whether the digest read matches the ``tested`` statement the customer's node holds."""
    home = run.homes[customer.company_node.name]
    try:
        history = home.provenance.history(result.serial)
    except TrustbridgeError:
        history = []
    for logged in history:
        statement = logged.statement.statement
        if statement.event is LifecycleEvent.TESTED:
            logged_digest = statement.details.get("report_sha256")
            if logged_digest == result.report_sha256:
                return "matches the signed 'tested' statement in the provenance log"
            return f"differs from the signed 'tested' statement ({logged_digest})"
    return "no 'tested' statement in the customer's provenance log (yet)"


def _party(verdict: PeerVerdict, certificate: str, node: str) -> dict[str, Any]:
    data = verdict.to_json()
    return {
        "identity": data["identity"],
        "application_uri": data["application_uri"],
        "certificate": certificate,
        "node": node,
        "route": data.get("route"),
        "holder_level": data.get("holder_level"),
        "reference_level": data.get("reference_level"),
        "routes": data.get("routes", {}),
    }


def read_test_results(run: _Run, *, supplier: _Country, customer: _Country) -> dict[str, Any]:
    """The customer reads a sensor's test results from the supplier's station (see the module
    docstring); returns the manifest's ``opcua`` entry. Needs the nodes served (step 3) and
    :func:`issue_identities` run in step 3."""
    station_identity, station_file = _identity(run, supplier, _station(supplier).display_name)
    client_identity, client_file = _identity(run, customer, _client(customer).display_name)
    operator, operator_file = _user(run, customer, _operator(customer).display_name)
    supplier_home = run.homes[supplier.company_node.name]
    if run.contract is None:
        raise TrustbridgeError("the OPC UA step reads under the contract concluded in step 6")
    contract_id = run.contract["id"]
    owner, contract, partner, partner_scheme = supplier_home.exchange.contract_entities(
        contract_id, customer.company.identifier
    )
    if partner_scheme is None:
        raise TrustbridgeError("the contract's session does not say the partner's scheme")
    access = StationAccess(
        supplier_home.exchange.access_policies(),
        owner=owner,
        contract=contract,
        organizations=[partner],
        clock=run.clock,
        purpose=READ_PURPOSE,
        member_schemes={partner.ref.id: partner_scheme},
    )
    customer_home = run.homes[customer.company_node.name]
    sensors = _sensors(run, supplier)
    if not sensors:
        raise TrustbridgeError(f"{supplier.company.name} has no sensors to report on")
    tested_at = run.clock.now().replace(microsecond=0) - timedelta(hours=1)
    results = [_result(serial, tested_at) for serial, _ in sensors]
    revoked = {r["certificate"] for r in run.revocations}
    # A sensor still in good standing (step 9 revokes one).
    serial = next((s for s, file in sensors if file not in revoked), sensors[0][0])
    folder = run.out / "artifacts" / "opcua"
    results_file = run.write(
        folder / "station-results.json",
        json.dumps([r.to_json() for r in results], indent=2).encode(),
    )
    now = run.clock.now()
    refused_files = {
        "self-signed": _self_signed("urn:unknown-integrator:opcua-client", now),
        "unlinked": _unlinked(customer, now),
    }
    station = StationServer(
        identity=station_identity,
        validator=PeerValidator(
            role=PeerRole.CLIENT, resolver=supplier_home.trust.resolver, clock=run.clock
        ),
        results=results,
        host=_HOST,
        name=f"{supplier.company.name} EOL-3 test station",
        users=PeerValidator(
            role=PeerRole.USER, resolver=supplier_home.trust.resolver, clock=run.clock
        ),
        access=access,
    )

    async def attempt(
        identity: ApplicationIdentity,
        *,
        policy: SecurityPolicy = SecurityPolicy.AES256_SHA256_RSAPSS,
        user: UserIdentity | None = None,
        application_uri: str | None = None,
    ) -> ReadResult:
        """A read of the sensor, deciding on the station with Muster's node home."""
        return await read_test_result(
            station.endpoint,
            identity=identity,
            validator=PeerValidator(
                role=PeerRole.SERVER,
                resolver=customer_home.trust.resolver,
                clock=run.clock,
                expected_uri=STATION_URI,
                host=_HOST,
            ),
            serial=serial,
            policy=policy,
            user=user,
            application_uri=application_uri,
        )

    async def session() -> tuple[list[ReadResult], list[dict[str, str]]]:
        reads: list[ReadResult] = []
        refused: list[dict[str, str]] = []
        async with station:
            for policy in (SecurityPolicy.BASIC256SHA256, SecurityPolicy.AES256_SHA256_RSAPSS):
                reads.append(await attempt(client_identity, policy=policy, user=operator))
            # The client application alone: its session is accepted, but the station shows it
            # no sensor it may not read (the policies decide, the decision is kept).
            try:
                await attempt(client_identity)
            except NotFoundError:
                pass
            else:
                raise TrustbridgeError("the station let the client application alone read")
            attempts = [
                ("self-signed", refused_files["self-signed"], None),
                ("unlinked", refused_files["unlinked"], None),
                ("wrong-uri", client_identity, "urn:muster:not-this-client"),
            ]
            for label, identity, claimed in attempts:
                try:
                    await attempt(identity, application_uri=claimed)
                except SessionRefusedError as exc:
                    verdict = station.refusals[-1]
                    certificate = (
                        client_file
                        if identity is client_identity
                        else run.write(
                            folder / f"refused-{label}.pem",
                            b"".join(c.public_bytes(Encoding.PEM) for c in identity.chain),
                        )
                    )
                    refused.append(
                        {
                            "client": verdict.subject,
                            "application_uri": verdict.application_uri,
                            "certificate": certificate,
                            "status": exc.status,
                            "reason": verdict.reason,
                        }
                    )
                    continue
                raise TrustbridgeError(f"the station accepted the {label} client")
        return reads, refused

    reads, refused = asyncio.run(session())
    main = reads[-1]
    accepted = [v for v in station.verdicts if v.accepted]
    client_verdict = accepted[-1]
    users = [v for v in station.user_verdicts if v.accepted]
    if len(users) != len(reads):
        raise TrustbridgeError("the station did not resolve the operator for every read")
    user_verdict = users[-1]
    read_file = run.write(
        folder / "read.json", json.dumps(main.to_json(), indent=2, default=str).encode()
    )
    provenance = _provenance_check(run, customer, main.result)
    entry: dict[str, Any] = {
        "endpoint": main.endpoint,
        "security_policy": main.security_policy.value,
        "security_mode": "SignAndEncrypt",
        "policies": [r.security_policy.value for r in reads],
        "server": _party(main.server, station_file, supplier.company_node.name),
        "client": _party(client_verdict, client_file, customer.company_node.name),
        "user": {
            **{
                key: value
                for key, value in _party(
                    user_verdict, operator_file, customer.company_node.name
                ).items()
                if key != "application_uri"
            },
            "roles": [Role.OPERATOR.value],
        },
        "access": {
            "contract": contract_id,
            "purpose": READ_PURPOSE,
            "decisions": [d.to_json() for d in access.decisions],
        },
        "read": {
            "serial": main.result.serial,
            "verdict": main.result.verdict,
            "tested_at": main.result.tested_at.isoformat(),
            "report_sha256": main.result.report_sha256,
            "measurements": [m.to_json() for m in main.result.measurements],
            "provenance": provenance,
        },
        "file": read_file,
        "station_results": results_file,
        "refused": refused,
    }
    run.say(
        escape(
            f"{customer.company.name} read sensor {serial}'s test results from "
            f"{supplier.company.name}'s station at {main.endpoint} "
            f"({' and '.join(entry['policies'])}, SignAndEncrypt): verdict "
            f"{main.result.verdict}, report digest {provenance}"
        )
    )
    run.say(
        escape(
            f"the client resolved the station by the {entry['server']['route']} route "
            f"({entry['server']['reference_level']}), the station the client by the "
            f"{entry['client']['route']} route ({entry['client']['reference_level']}); "
            f"revocation checked with the CRLs of the issuing nodes -> {read_file}"
        )
    )
    for decision in access.decisions:
        who = "person" if decision.person else "client application"
        effect = "may read" if decision.allowed else "may not read"
        run.say(
            escape(
                f"{who} {decision.user.split(',')[0]} {effect} sensor {decision.serial} "
                f"(contract {contract_id}, {READ_PURPOSE}): {'; '.join(decision.reasons)}"
            )
        )
    for item in refused:
        run.say(escape(f"refused {item['client']} ({item['status']}): {item['reason'][:160]}"))
    return entry
