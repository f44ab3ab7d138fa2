"""The joint DE-JP demonstrator (DEMO.md), as far as trustbridge is built.

It plays every part of the story itself: the scheme operators and trust service providers run
their node homes under ``<out>/nodes/``; the companies, people, machines and software are holders
whose keys the demo generates on the holder's side and keeps under ``<out>/artifacts/``. Every
identity goes through the real release process (an officer's signed decision, or the enrolment
rule signed with the organization's identity). Steps of the story that are not built yet are
reported as such, never faked.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
)
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from rfc3161_client import TimestampRequestBuilder, decode_timestamp_response
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from trustbridge import __version__
from trustbridge.clock import Clock, SystemClock
from trustbridge.demo import exchange, linking, opcua, profiles, provenance
from trustbridge.demo.manifest import (
    MANIFEST_FILE,
    MANIFEST_VERSION,
    REFERENCE_LEVELS,
    AccessEntry,
    AssessmentEntry,
    BridgeEntry,
    CaEntry,
    ContractEntry,
    CredentialEntry,
    CrlEntry,
    IdentityEntry,
    LogEntryRecord,
    Manifest,
    NodeEntry,
    OcspEntry,
    ProvenanceRecord,
    ResolutionEntry,
    RevocationEntry,
    SchemeEntry,
    SessionEntry,
    StepEntry,
    StepStatus,
    TsaEntry,
    read_manifest,
    write_manifest,
)
from trustbridge.demo.report import DEMO_GOAL_SECONDS, render_report
from trustbridge.errors import ConfigError, InputError, ReleaseError, TrustbridgeError
from trustbridge.home.config import SecretSource
from trustbridge.home.delivery import write_private
from trustbridge.home.home import (
    HOME_SQLITE,
    EnrolmentProof,
    Home,
    KeySpec,
    ProductionBatch,
    slugify,
)
from trustbridge.home.records import Issued, RequestInfo
from trustbridge.home.secrets import write_secret_file
from trustbridge.node.client import SignedClient
from trustbridge.node.launcher import NodeProcess, start_node, stop_node, wait_ready
from trustbridge.pki.ca import certificate_fingerprint
from trustbridge.pki.keys import KeyType, generate_private_key, hash_for, private_key_pem
from trustbridge.pki.profiles import (
    MachineSubject,
    OrganizationSubject,
    PersonSubject,
    Purpose,
    Role,
    SoftwareSubject,
    Subject,
    SubjectKind,
)
from trustbridge.pki.release import Decision, sign_statement
from trustbridge.pki.revocation import Reason
from trustbridge.pki.signers import FileSigner
from trustbridge.trust import reference
from trustbridge.trust.lists import ServiceKind
from trustbridge.trust.schemes import TrustScheme

__all__ = [
    "HTTPS_PORT_BASE",
    "HTTP_PORT_BASE",
    "PASSPHRASE_FILE",
    "REPORT_FILE",
    "DemoStepError",
    "render_again",
    "run_demo",
]

REPORT_FILE = "report.html"
#: Node ``i`` of the cast listens on ``HTTP_PORT_BASE + i`` and ``HTTPS_PORT_BASE + i`` (by
#: default; ``trustbridge demo --port-base P`` moves them to ``P + i`` and ``P + 100 + i``).
HTTP_PORT_BASE = 18080
HTTPS_PORT_BASE = 18443
#: Where each demo node keeps the passphrase of its CA keys, relative to its home.
PASSPHRASE_FILE = "secrets/demo-passphrase"  # noqa: S105 - a file name
#: Marks a folder as demo output, so that a rerun may replace it even after an interrupted run.
_MARKER = ".trustbridge-demo"
_ISSUED_BY_DEMO = ("nodes", "artifacts", "logs", MANIFEST_FILE, REPORT_FILE)


class DemoStepError(TrustbridgeError):
    """A step of the story failed: names the step; the nodes' logs are in ``DIR/logs``."""

    def __init__(self, number: int, title: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"demo step {number} ({title}) failed: {message}", hint=hint)
        self.step = number


# -- the cast (DESIGN.md, section 2) ----------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    name: str
    organization: str
    role: str
    #: Whether the node has a CA of its own, to certify its HTTPS API (companies and
    #: conformity assessment bodies publish over HTTP only, until they get a TLS identity).
    api: bool = True


@dataclass(frozen=True)
class _IssuingCa:
    name: str
    kinds: tuple[SubjectKind, ...]
    roles: tuple[Role, ...] = ()

    @property
    def slug(self) -> str:
        return slugify(self.name)


@dataclass(frozen=True)
class _Batch:
    """A production run of devices whose keys the CA generates at manufacture."""

    model: str
    serials: tuple[str, ...]
    uri_template: str
    key_type: KeyType = KeyType.P256


@dataclass(frozen=True)
class _Country:
    """One scheme's side of the story: operator, root, TSP, its CAs and the company."""

    scheme: TrustScheme
    operator: _Node
    root_name: str
    tsp: _Node
    identity_ca: _IssuingCa
    device_ca: _IssuingCa
    officer: PersonSubject
    company: OrganizationSubject
    signatory: PersonSubject
    software: SoftwareSubject
    #: Level of organizations, people and key-agreement certificates.
    high_level: str
    #: Level of machines and software.
    device_level: str
    #: The conformity assessment body the scheme accredits, and what for.
    body: _Node
    body_subject: OrganizationSubject
    body_services: tuple[tuple[ServiceKind, tuple[str, ...]], ...]
    #: The company's own node (its wallet, its self-declarations, its verifier).
    company_node: _Node
    machine: MachineSubject | None = None
    machine_key: KeyType = KeyType.RSA2048
    batch: _Batch | None = None

    @property
    def code(self) -> str:
        return self.scheme.code

    @property
    def country(self) -> str:
        return self.company.country


def _identity_ca(name: str) -> _IssuingCa:
    return _IssuingCa(
        name,
        (SubjectKind.ORGANIZATION, SubjectKind.PERSON),
        (Role.REGISTRATION_OFFICER, Role.AUTHORIZED_SIGNATORY, Role.OPERATOR),
    )


def _device_ca(name: str) -> _IssuingCa:
    return _IssuingCa(name, (SubjectKind.MACHINE, SubjectKind.SOFTWARE))


_MUSTER_ID = "VATDE-123456789"
_HAYABUSA_ID = "NTRJP-3180001012345"

GERMANY = _Country(
    scheme=reference.GERMANY,
    operator=_Node("de-scheme", "DE Industrial Trust Scheme", "scheme operator"),
    root_name="DE Industrial Root CA",
    tsp=_Node("rheintal", "Rheintal Trust Services GmbH", "trust service provider"),
    identity_ca=_identity_ca("Rheintal Identity CA"),
    device_ca=_device_ca("Rheintal Device CA"),
    officer=PersonSubject(
        given_name="Anna",
        surname="Schmidt",
        country="DE",
        organization="Rheintal Trust Services GmbH",
        organization_identifier="VATDE-987654321",
        email="anna.schmidt@rheintal-trust.example",
        roles=frozenset({Role.REGISTRATION_OFFICER}),
    ),
    company=OrganizationSubject(
        name="Muster Maschinenbau GmbH", country="DE", identifier=_MUSTER_ID, locality="Stuttgart"
    ),
    signatory=PersonSubject(
        given_name="Klaus",
        surname="Weber",
        country="DE",
        organization="Muster Maschinenbau GmbH",
        organization_identifier=_MUSTER_ID,
        email="klaus.weber@muster-maschinenbau.example",
        roles=frozenset({Role.AUTHORIZED_SIGNATORY}),
    ),
    software=SoftwareSubject(
        name="Muster Quality Gateway",
        version="1.0.0",
        organization="Muster Maschinenbau GmbH",
        organization_identifier=_MUSTER_ID,
        country="DE",
    ),
    machine=MachineSubject(
        manufacturer="Muster Maschinenbau GmbH",
        model="AM-7",
        serial_number="0001",
        country="DE",
        application_uri="urn:muster:assembly:AM-7:0001",
    ),
    high_level="de-high",
    device_level="de-substantial",
    body=_Node("nordsee", "Nordsee Certification GmbH", "conformity assessment body", api=False),
    body_subject=OrganizationSubject(
        name="Nordsee Certification GmbH",
        country="DE",
        identifier="VATDE-555444333",
        locality="Hamburg",
    ),
    body_services=(
        (ServiceKind.CAB, ("iso-iec-27001", "iso-9001", "iso-22301")),
        (ServiceKind.AUDITOR, ("iec-62443-3-3", "iec-62443-2-4", "iso-iec-27001")),
    ),
    company_node=_Node("muster", "Muster Maschinenbau GmbH", "customer"),
)

JAPAN = _Country(
    scheme=reference.JAPAN,
    operator=_Node("jp-scheme", "JP Industrial Trust Scheme", "scheme operator"),
    root_name="JP Industrial Root CA",
    tsp=_Node("sakura", "Sakura Trust Service K.K.", "trust service provider"),
    identity_ca=_identity_ca("Sakura Identity CA"),
    device_ca=_device_ca("Sakura Device CA"),
    officer=PersonSubject(
        given_name="Haruto",
        surname="Sato",
        country="JP",
        organization="Sakura Trust Service K.K.",
        organization_identifier="NTRJP-1010001098765",
        email="haruto.sato@sakura-trust.example",
        roles=frozenset({Role.REGISTRATION_OFFICER}),
    ),
    company=OrganizationSubject(
        name="Hayabusa Sensor Components K.K.",
        country="JP",
        identifier=_HAYABUSA_ID,
        locality="Nagoya",
    ),
    signatory=PersonSubject(
        given_name="Yuki",
        surname="Tanaka",
        country="JP",
        organization="Hayabusa Sensor Components K.K.",
        organization_identifier=_HAYABUSA_ID,
        email="yuki.tanaka@hayabusa-sensors.example",
        roles=frozenset({Role.AUTHORIZED_SIGNATORY}),
    ),
    software=SoftwareSubject(
        name="Hayabusa Test Data Service",
        version="1.0.0",
        organization="Hayabusa Sensor Components K.K.",
        organization_identifier=_HAYABUSA_ID,
        country="JP",
    ),
    machine=MachineSubject(
        manufacturer="Hayabusa Sensor Components K.K.",
        model="HPS Line",
        serial_number="L1",
        country="JP",
        application_uri="urn:hayabusa:line:L1",
    ),
    batch=_Batch(
        model="HPS-200",
        serials=tuple(f"HPS200-{n:06d}" for n in range(1, 6)),
        uri_template="urn:hayabusa:hps-200:{serial}",
    ),
    high_level="jp-level3",
    device_level="jp-level2",
    body=_Node("fuji", "Fuji Conformity Assessment Co.", "conformity assessment body", api=False),
    body_subject=OrganizationSubject(
        name="Fuji Conformity Assessment Co.",
        country="JP",
        identifier="NTRJP-5010001077777",
        locality="Tokyo",
    ),
    body_services=(
        (
            ServiceKind.CAB,
            ("iso-iec-27001", "iec-62443-4-1", "iec-62443-4-2", "iec-61508", "iso-9001"),
        ),
    ),
    company_node=_Node("hayabusa", "Hayabusa Sensor Components K.K.", "supplier"),
)

_COUNTRIES = (GERMANY, JAPAN)
_GROUP = _Node("itg-group", "Industrial Trust Group", "group operator")
_BRIDGE = _Node("dejp-bridge", "DE-JP Industrial Bridge", "bridge CA")
#: In the order their ports were given (the first four before the group and the bridge came).
_NODES = (
    GERMANY.operator,
    JAPAN.operator,
    GERMANY.tsp,
    JAPAN.tsp,
    _GROUP,
    _BRIDGE,
    GERMANY.body,
    JAPAN.body,
    GERMANY.company_node,
    JAPAN.company_node,
)

#: DEMO.md's story, step by step: (title, what is not built yet; None where nothing is missing).
_STORY: tuple[tuple[str, StepStatus, str | None], ...] = (
    ("Schemes", "done", None),
    ("Trust service providers", "done", None),
    ("Identities", "done", None),
    ("Trust profiles", "done", None),
    ("First contact", "done", None),
    ("Contract", "done", None),
    ("Data exchange", "done", None),
    ("Provenance", "done", None),
    ("Verification and a fault", "done", None),
    ("Report", "done", None),
)


# -- running it ------------------------------------------------------------------------------


@dataclass
class _Holder:
    """An identity holder the demo plays: its key and its certificate."""

    key: CertificateIssuerPrivateKeyTypes
    certificate: x509.Certificate


@dataclass
class _Run:
    out: Path
    console: Console
    clock: Clock
    http_base: int = HTTP_PORT_BASE
    https_base: int = HTTPS_PORT_BASE
    homes: dict[str, Home] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)
    ca_files: dict[str, str] = field(default_factory=dict)
    nodes: list[NodeEntry] = field(default_factory=list)
    schemes: list[SchemeEntry] = field(default_factory=list)
    cas: list[CaEntry] = field(default_factory=list)
    identities: list[IdentityEntry] = field(default_factory=list)
    steps: list[StepEntry] = field(default_factory=list)
    served: dict[str, NodeProcess] = field(default_factory=dict)
    countries: tuple[_Country, ...] = _COUNTRIES
    bridge_entry: BridgeEntry | None = None
    lotl_file: str | None = None
    lotl_signer: x509.Certificate | None = None
    resolutions: list[ResolutionEntry] = field(default_factory=list)
    #: Each country's registration officer (key and certificate), by scheme code.
    officers: dict[str, _Holder] = field(default_factory=dict)
    revocations: list[RevocationEntry] = field(default_factory=list)
    crls: list[CrlEntry] = field(default_factory=list)
    ocsp: list[OcspEntry] = field(default_factory=list)
    tsa: list[TsaEntry] = field(default_factory=list)
    #: Each country's conformity assessment body and company (key and certificate).
    bodies: dict[str, _Holder] = field(default_factory=dict)
    companies: dict[str, _Holder] = field(default_factory=dict)
    #: Each company's signatory, software, key-agreement and node TLS identities.
    signatories: dict[str, _Holder] = field(default_factory=dict)
    software: dict[str, _Holder] = field(default_factory=dict)
    agreements: dict[str, _Holder] = field(default_factory=dict)
    node_tls: dict[str, _Holder] = field(default_factory=dict)
    sessions: list[SessionEntry] = field(default_factory=list)
    contract: ContractEntry | None = None
    messages: list[dict[str, object]] = field(default_factory=list)
    access: list[AccessEntry] = field(default_factory=list)
    credentials: list[CredentialEntry] = field(default_factory=list)
    assessments: list[AssessmentEntry] = field(default_factory=list)
    #: Each company's machine identity (Muster's AM-7, Hayabusa's production line).
    machines: dict[str, _Holder] = field(default_factory=dict)
    provenance: list[ProvenanceRecord] = field(default_factory=list)
    logs: list[LogEntryRecord] = field(default_factory=list)
    #: The OPC UA session between the supplier's test station and the customer (step 9).
    opcua: dict[str, Any] | None = None

    # -- helpers --------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.console.print(f"  [green]✓[/] {text}", highlight=False, markup=True)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def artifact(self, code: str, *parts: str) -> Path:
        return self.out.joinpath("artifacts", code, *parts)

    def write(self, path: Path, data: bytes, *, private: bool = False) -> str:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
        if private:
            write_private(path, data)
        else:
            path.write_bytes(data)
        return self.rel(path)

    @contextmanager
    def step(self, number: int) -> Iterator[None]:
        """One step of the story, timed; a failure names the step (and the nodes' logs)."""
        title, status, note = _STORY[number - 1]
        self.console.rule(Text.from_markup(f"[bold]Step {number}: {escape(title)}"))
        started = time.perf_counter()
        try:
            yield
        except TrustbridgeError as exc:
            raise DemoStepError(number, title, exc.message, hint=exc.hint) from exc
        except (OSError, httpx.HTTPError, ValueError, KeyError) as exc:
            raise DemoStepError(number, title, f"{type(exc).__name__}: {exc}") from exc
        if note:
            self.console.print(
                f"  [yellow]{status}:[/] {escape(note)}", highlight=False, markup=True
            )
        self.steps.append(_step_entry(number, time.perf_counter() - started))

    def unavailable(self, number: int) -> None:
        title, _, note = _STORY[number - 1]
        self.console.rule(Text.from_markup(f"[dim]Step {number}: {escape(title)}"))
        self.console.print(
            f"  [yellow]not available:[/] {escape(note or '')}", highlight=False, markup=True
        )
        self.steps.append(_step_entry(number, 0.0))

    # -- nodes ----------------------------------------------------------------------------

    def node(self, node: _Node, stack: ExitStack) -> Home:
        index = _NODES.index(node)
        path = self.out / "nodes" / node.name
        home = Home.init(
            path,
            node_name=node.name,
            host="127.0.0.1",
            http_port=self.http_base + index,
            https_port=self.https_base + index,
            database_url=HOME_SQLITE,  # each node its own database, whatever the environment says
            clock=self.clock,
        )
        stack.callback(home.close)
        # Demo convenience, not a practice to copy: the node keeps its CA key passphrase in
        # its own home (mode 600), named in config.toml's [secrets], so that `serve` can start
        # it unattended. A real node takes it from a prompt, the environment or an HSM PIN.
        write_secret_file(path / PASSPHRASE_FILE, secrets.token_urlsafe(32))
        # Every node keeps a transparency log; its checkpoint key uses the same demo secret.
        home.log.create_key(secret=SecretSource(file=PASSPHRASE_FILE))
        self.homes[node.name] = home
        config = home.config
        entry = NodeEntry(
            node=node.name,
            organization=node.organization,
            role=node.role,
            home=self.rel(path),
            http_url=config.base_url,
        )
        if node.api:
            entry["https_url"] = f"https://{config.host}:{config.https_port}"
        self.nodes.append(entry)
        self.say(
            f"node [bold]{node.name}[/] ({node.organization}) at {config.base_url}; "
            f"key passphrase in {self.rel(path)}/{PASSPHRASE_FILE} (a demo convenience)"
        )
        return home

    def ca_key(self, key_type: KeyType) -> KeySpec:
        return KeySpec(key_type, secret=SecretSource(file=PASSPHRASE_FILE))

    # -- step 1: schemes ------------------------------------------------------------------

    def scheme(self, c: _Country, stack: ExitStack) -> None:
        home = self.node(c.operator, stack)
        home.create_scheme(c.scheme)
        root = home.create_root_ca(
            scheme=c.code,
            name=c.root_name,
            country=c.country,
            organization=c.operator.organization,
            key=self.ca_key(KeyType.P384),
            # No pathLenConstraint: paths through the bridge are longer than the scheme's own
            # (and some validators, openssl among them, enforce the anchor's constraint).
            path_length=None,
        )
        assert root.certificate is not None  # an active root has its certificate
        root_file = self.write(self.artifact(c.code, "root.pem"), _pem([root.certificate]))
        self.roots[c.code] = root_file
        self.schemes.append(
            SchemeEntry(
                code=c.code,
                name=c.scheme.name,
                levels=[lv.name for lv in c.scheme.levels],
                root=root_file,
                node=c.operator.name,
            )
        )
        levels = " < ".join(lv.name for lv in c.scheme.levels)
        self.say(f"scheme [bold]{c.code}[/]: levels {levels}")
        self.say(f"root [bold]{c.root_name}[/] (P-384) -> {root_file}")

    # -- step 2: trust service providers --------------------------------------------------

    def tsp(self, c: _Country, stack: ExitStack) -> None:
        operator = self.homes[c.operator.name]
        home = self.node(c.tsp, stack)
        # The TSP imports the scheme with the scheme operator's own policy OIDs.
        home.create_scheme(c.scheme)
        root_slug = slugify(c.root_name)
        for spec in (c.identity_ca, c.device_ca):
            _, csr = home.request_subordinate_ca(
                scheme=c.code,
                name=spec.name,
                slug=spec.slug,
                country=c.country,
                organization=c.tsp.organization,
                key=self.ca_key(KeyType.P256),
            )
            certificate = operator.certify_subordinate_ca(
                parent=root_slug,
                csr_data=csr.public_bytes(Encoding.PEM),
                kinds=spec.kinds,
                roles=spec.roles,
                source=f"CSR of {spec.name}",
            )
            info = home.install_ca_certificate(spec.slug, certificate, operator.chain_of(root_slug))
            path = self.write(self.artifact(c.code, "cas", f"{spec.slug}.pem"), _pem([certificate]))
            self.ca_files[certificate_fingerprint(certificate)] = path
            self.cas.append(
                CaEntry(
                    name=spec.name,
                    scheme=c.code,
                    node=c.tsp.name,
                    certificate=path,
                    kinds=list(info.kinds),
                    levels=list(info.levels),
                    roles=list(info.roles),
                )
            )
            roles = f"; roles {', '.join(info.roles)}" if info.roles else ""
            self.say(
                f"[bold]{spec.name}[/] certified by {c.root_name}: {', '.join(info.kinds)}{roles}"
                f" -> {path}"
            )

    # -- step 3: identities ---------------------------------------------------------------

    def appoint_officer(self, c: _Country) -> _Holder:
        """The TSP's registration officer: the first identity, bootstrapped by the operator."""
        home = self.homes[c.tsp.name]
        ids = c.identity_ca.slug
        key = generate_private_key(KeyType.P256)
        issued = home.bootstrap_officer(
            ca=ids,
            subject=c.officer,
            level=c.high_level,
            csr_data=_csr(key, c.officer),
            csr_source=f"CSR of {c.officer.display_name}",
        )
        officer = _Holder(key, _certificate(issued))
        self.officers[c.code] = officer
        self.record(c, c.officer, ca=ids, level=c.high_level, holder=officer, note="bootstrapped")
        return officer

    def assessment_body(self, c: _Country, stack: ExitStack) -> None:
        """The scheme's conformity assessment body: its node, its organization identity (it
        signs its certificates and audit reports with it) and its status lists."""
        home = self.node(c.body, stack)
        home.create_scheme(c.scheme)
        officer = self.officers.get(c.code) or self.appoint_officer(c)
        holder = self.approved(
            c, c.body_subject, ca=c.identity_ca.slug, level=c.high_level, officer=officer
        )
        self.bodies[c.code] = holder
        self.credential_issuer(c, home, holder)

    def credential_issuer(self, c: _Country, home: Home, holder: _Holder) -> None:
        chain = (holder.certificate, *self.homes[c.tsp.name].chain_of(c.identity_ca.slug)[:-1])
        home.credentials.set_issuer(
            private_key_pem(holder.key), chain, secret=SecretSource(file=PASSPHRASE_FILE)
        )

    def company_home(self, c: _Country, stack: ExitStack) -> None:
        """The company's node: trusts its own root, the group's LOTL and the lists it names;
        issues its self-declarations; holds its credentials."""
        home = self.node(c.company_node, stack)
        for scheme in (c.scheme, *(x.scheme for x in self.countries if x is not c)):
            home.create_scheme(scheme)
        operator = self.homes[c.operator.name]
        home.trust.pin_anchors([operator.chain_of(slugify(c.root_name))[-1]])
        assert self.lotl_signer is not None and self.lotl_file is not None  # step 2
        home.trust.pin_lotl_signers([self.lotl_signer])
        home.trust.accept_lotl((self.out / self.lotl_file).read_bytes(), source=self.lotl_file)
        for entry in self.schemes:
            if "trust_list" in entry:
                path = entry["trust_list"]
                home.trust.accept_trust_list((self.out / path).read_bytes(), source=path)
        self.credential_issuer(c, home, self.companies[c.code])
        exchange.setup_node(self, c, home)

    def issue_identities(self, c: _Country) -> None:
        ids, devices = c.identity_ca.slug, c.device_ca.slug
        officer = self.officers.get(c.code) or self.appoint_officer(c)
        company = self.approved(c, c.company, ca=ids, level=c.high_level, officer=officer)
        self.companies[c.code] = company
        self.agreements[c.code] = self.approved(
            c,
            c.company,
            ca=ids,
            level=c.high_level,
            officer=officer,
            purpose=Purpose.KEY_AGREEMENT,
        )
        self.signatories[c.code] = self.approved(
            c, c.signatory, ca=ids, level=c.high_level, officer=officer
        )
        if c.machine is not None:
            self.machines[c.code] = self.enrolled(
                c, c.machine, ca=devices, credential=company, key_type=c.machine_key
            )
        self.software[c.code] = self.enrolled(
            c, c.software, ca=devices, credential=company, key_type=KeyType.P256
        )
        # The company node's own TLS identity (a software process of the company).
        self.node_tls[c.code] = self.enrolled(
            c,
            SoftwareSubject(
                name=f"{c.company_node.name} trustbridge node",
                version=__version__,
                organization=c.company.name,
                organization_identifier=c.company.identifier,
                country=c.country,
                dns_names=("localhost",),
            ),
            ca=devices,
            credential=company,
            key_type=KeyType.P256,
        )
        if c.batch is not None:
            self.batch(c, c.batch, ca=devices, credential=company)

    def approved(
        self,
        c: _Country,
        subject: Subject,
        *,
        ca: str,
        level: str,
        officer: _Holder,
        purpose: Purpose = Purpose.IDENTITY,
        key_type: KeyType = KeyType.P256,
    ) -> _Holder:
        """A holder's request, approved by the registration officer's signed decision."""
        home = self.homes[c.tsp.name]
        key = generate_private_key(key_type)
        pending = home.submit_request(
            ca=ca,
            subject=subject,
            level=level,
            csr_data=_csr(key, subject),
            csr_source=f"CSR of {subject.display_name}",
            purpose=purpose,
        )
        if not isinstance(pending, RequestInfo):
            raise ReleaseError(f"the request for {subject.display_name} skipped the officer")
        decision = Decision(
            request_id=pending.id,
            request_digest=pending.digest,
            decision="approve",
            at=home.now(),
            reason=f"{subject.kind} identity checked by the registration officer",
        )
        signature = sign_statement(decision.payload(), FileSigner(officer.key))
        issued = home.decide(
            pending.id, decision=decision, signature=signature, officer=officer.certificate
        )
        holder = _Holder(key, _certificate(issued))
        note = f"approved by {c.officer.display_name}'s signed decision"
        self.record(c, subject, ca=ca, level=level, holder=holder, purpose=purpose, note=note)
        return holder

    def enrolled(
        self,
        c: _Country,
        subject: MachineSubject | SoftwareSubject,
        *,
        ca: str,
        credential: _Holder,
        key_type: KeyType,
    ) -> _Holder:
        """A machine or software request released by the organization's enrolment credential."""
        home = self.homes[c.tsp.name]
        level = c.device_level
        key = generate_private_key(key_type)
        csr_data = _csr(key, subject)
        digest = home.request_digest_for(ca=ca, subject=subject, level=level, csr_data=csr_data)
        issued = home.submit_request(
            ca=ca,
            subject=subject,
            level=level,
            csr_data=csr_data,
            csr_source=f"CSR of {subject.display_name}",
            enrolment=_proof(credential, digest),
        )
        holder = _Holder(key, _certificate(issued))
        note = f"released by the enrolment credential of {c.company.name}"
        self.record(c, subject, ca=ca, level=level, holder=holder, note=note)
        return holder

    def batch(self, c: _Country, batch: _Batch, *, ca: str, credential: _Holder) -> None:
        """A production batch: the CA generates each device's key at manufacture."""
        home = self.homes[c.tsp.name]
        manufacturer = c.company.name
        production = ProductionBatch(
            ca=ca,
            manufacturer=manufacturer,
            model=batch.model,
            country=c.country,
            serial_numbers=batch.serials,
            level=c.device_level,
            key_type=batch.key_type,
            uri_template=batch.uri_template,
        )
        proof = _proof(credential, home.batch_digest(production))
        subjects = iter(production.subjects())
        folder = slugify(batch.model)
        count = 0
        for certificates, keys in home.issue_machine_batch(production, enrolment=proof):
            for certificate, key in zip(certificates, keys, strict=True):
                subject = next(subjects)
                self.record(
                    c,
                    subject,
                    ca=ca,
                    level=c.device_level,
                    holder=_Holder(key, certificate),
                    folder=folder,
                    batch=batch.model,
                    quiet=True,
                )
                count += 1
        self.say(
            f"[bold]{count} {batch.model}[/] sensors of {manufacturer} ({c.code}, "
            f"{c.device_level}), keys generated by the CA at manufacture; batch released by "
            f"the enrolment credential of {manufacturer} -> {self.rel(self.artifact(c.code))}/"
            f"identities/{folder}/"
        )

    def record(
        self,
        c: _Country,
        subject: Subject,
        *,
        ca: str,
        level: str,
        holder: _Holder,
        purpose: Purpose = Purpose.IDENTITY,
        note: str = "",
        folder: str | None = None,
        batch: str | None = None,
        quiet: bool = False,
    ) -> None:
        """Write an identity's certificate, chain and key, and list it in the manifest."""
        chain = self.homes[c.tsp.name].chain_of(ca)[:-1]  # issuing CA and up, not the anchor
        # In a batch folder the serial number names the device; elsewhere the display name.
        name = slugify(
            subject.serial_number
            if isinstance(subject, MachineSubject) and folder
            else subject.display_name
        )
        if purpose is not Purpose.IDENTITY:
            name = f"{name}-{purpose.value}"
        sub = (folder,) if folder else ()
        identities = self.artifact(c.code, "identities", *sub)
        certificate_file = self.write(identities / f"{name}.pem", _pem([holder.certificate]))
        chain_file = self.write(identities / f"{name}.chain.pem", _pem(chain))
        key_file = self.write(
            self.artifact(c.code, "keys", *sub) / f"{name}.key.pem",
            private_key_pem(holder.key),
            private=True,
        )
        entry = IdentityEntry(
            holder=subject.display_name,
            kind=subject.kind.value,
            purpose=purpose.value,
            scheme=c.code,
            level=level,
            node=c.tsp.name,
            ca=ca,
            serial=format(holder.certificate.serial_number, "x"),
            certificate=certificate_file,
            chain=[self.ca_files[certificate_fingerprint(cert)] for cert in chain],
            chain_file=chain_file,
            anchor=self.roots[c.code],
            key_origin="ca-generated" if batch else "holder",
            key=key_file,
        )
        if isinstance(subject, PersonSubject):
            entry["roles"] = sorted(r.value for r in subject.roles)
        if batch:
            entry["batch"] = batch
        self.identities.append(entry)
        if not quiet:
            what = subject.kind.value if purpose is Purpose.IDENTITY else purpose.value
            roles = escape(f" [{', '.join(entry['roles'])}]") if entry.get("roles") else ""
            self.say(
                f"{what} [bold]{escape(subject.display_name)}[/]{roles} ({level}, {ca}): "
                f"{escape(note)} -> {certificate_file}"
            )

    # -- the nodes as processes -----------------------------------------------------------

    def serve_nodes(self, stack: ExitStack) -> None:
        """Start every node as its own `trustbridge serve` process (stopped when the run ends)."""
        with ExitStack() as starting:
            for entry in self.nodes:  # all at once, then wait for each
                name = entry["node"]
                node = start_node(
                    self.out / entry["home"],
                    name=name,
                    http_url=entry["http_url"],
                    https_url=entry.get("https_url", ""),
                    log=self.out / "logs" / f"{name}.log",
                )
                starting.callback(stop_node, node)
                self.served[name] = node
            for node in self.served.values():
                wait_ready(node)
            stack.push(starting.pop_all())
        self.say(
            "nodes serving as separate processes: "
            + ", ".join(f"{n} {p.http_url} (pid {p.process.pid})" for n, p in self.served.items())
        )
        for entry in self.nodes:
            home = self.homes[entry["node"]]
            for ca in home.cas():
                if ca.state == "active":
                    self.ocsp.append(
                        OcspEntry(
                            issuer=ca.name,
                            node=entry["node"],
                            url=f"{entry['http_url']}/pki/{ca.slug}/ocsp",
                        )
                    )

    # -- step 9: a fault ------------------------------------------------------------------

    def fault(self, c: _Country) -> None:
        """A sensor's key is reported compromised: revoke it; OCSP and the CRL say so at once."""
        sensors = [i for i in self.identities if i.get("batch") and i["scheme"] == c.code]
        victim = sensors[0]
        node = self.served[victim["node"]]
        home = self.homes[victim["node"]]
        certificate = x509.load_pem_x509_certificate(
            (self.out / victim["certificate"]).read_bytes()
        )
        issuer = home.authority(victim["ca"]).certificate
        before = _ocsp_status(node, victim["ca"], certificate, issuer)
        if before != "good":
            raise ReleaseError(f"OCSP says {before} for {victim['holder']} before the revocation")
        # The TSP's registration officer revokes it through the node's signed API.
        officer = self.officers[c.code]
        with SignedClient(
            node.https_url,
            signer=FileSigner(officer.key),
            chain=[officer.certificate],
            trust=home.path / "tls" / "anchor.pem",
            clock=home.clock,
        ) as client:
            info = client.request(
                "POST",
                f"/api/v1/certificates/{victim['serial']}/revoke",
                body={"reason": Reason.KEY_COMPROMISE.value},
                params={"ca": victim["ca"]},
            )
        after = _ocsp_status(node, victim["ca"], certificate, issuer)
        if after != "revoked":
            raise ReleaseError(
                f"node {node.name} still says {after} for {victim['holder']} after the revocation"
            )
        self.revocations.append(
            RevocationEntry(
                certificate=victim["certificate"],
                reason=Reason.KEY_COMPROMISE.value,
                node=node.name,
                serial=info["serial"],
                ocsp_status=after,
            )
        )
        self.say(
            f"sensor [bold]{escape(victim['holder'])}[/] reported compromised: revoked "
            f"(key-compromise) by {escape(c.officer.display_name)} through the node's signed "
            f"API; {node.http_url}/pki/{victim['ca']}/ocsp answered good before "
            "and revoked on the first query after"
        )
        self.publish_crls(victim["serial"], victim["ca"], node.name)
        self.timestamp(c, node, self.out / victim["certificate"])

    def publish_crls(self, serial: str, ca: str, node_name: str) -> None:
        """Fetch every CA's CRL from its node over HTTP into the artifacts."""
        for entry in self.nodes:
            name = entry["node"]
            home = self.homes[name]
            for info in home.cas():
                if info.state != "active":
                    continue
                url = f"{entry['http_url']}/pki/{info.slug}/crl"
                response = httpx.get(url, timeout=30)
                response.raise_for_status()
                crl = x509.load_der_x509_crl(response.content)
                listed = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
                if name == node_name and info.slug == ca and listed is None:
                    raise ReleaseError(f"the CRL at {url} does not list revoked {serial}")
                number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
                file = self.write(
                    self.out / "artifacts" / "crls" / f"{name}-{info.slug}.crl", response.content
                )
                self.crls.append(
                    CrlEntry(
                        issuer=info.name,
                        node=name,
                        url=url,
                        file=file,
                        number=number,
                        entries=len(crl),
                    )
                )
        self.say(f"{len(self.crls)} CRLs fetched from the nodes -> artifacts/crls/")

    def timestamp(self, c: _Country, node: NodeProcess, data: Path) -> None:
        """Time-stamp the revoked certificate at the TSP's TSA (RFC 3161 over HTTP)."""
        request = TimestampRequestBuilder().data(data.read_bytes()).nonce(nonce=True).build()
        url = f"{node.http_url}/tsa"
        response = httpx.post(
            url,
            content=request.as_bytes(),
            headers={"content-type": "application/timestamp-query"},
            timeout=30,
        )
        response.raise_for_status()
        reply = decode_timestamp_response(response.content)
        if reply.status != 0:
            raise ReleaseError(f"the TSA at {url} refused the request (status {reply.status})")
        ca = self.homes[node.name].status.default_tsa_ca()
        tsa_der = httpx.get(f"{node.http_url}/tsa/{ca}/tsa.crt", timeout=30).content
        tsa_cert = x509.load_der_x509_certificate(tsa_der)
        folder = self.artifact(c.code, "tsa")
        self.tsa.append(
            TsaEntry(
                node=node.name,
                url=url,
                certificate=self.write(folder / "tsa.pem", _pem([tsa_cert])),
                token=self.write(folder / "revocation.tsr", response.content),
                data=self.rel(data),
            )
        )
        self.say(
            f"time-stamp from {url} over the revoked certificate -> "
            f"{self.rel(folder / 'revocation.tsr')} (openssl ts -verify checks it)"
        )

    # -- step 10: report ------------------------------------------------------------------

    def report(self, manifest: Manifest) -> str:
        """Render ``report.html`` from the manifest (step 10 is listed while it runs)."""
        steps = [*self.steps, _step_entry(10, 0.0)]
        page = render_report(self.out, {**manifest, "steps": steps}, generated_at=self.clock.now())
        (self.out / REPORT_FILE).write_text(page, encoding="utf-8")
        self.say(
            f"report -> {REPORT_FILE}: trust topology and paths as pictures, level mappings, "
            "assessments, contract, messages, provenance timelines, checkpoints, the revocation"
        )
        return REPORT_FILE

    def manifest(self) -> Manifest:
        manifest = Manifest(
            version=MANIFEST_VERSION,
            generated_at=self.clock.now().isoformat(),
            reference_levels=list(REFERENCE_LEVELS),
            nodes=self.nodes,
            schemes=self.schemes,
            cas=self.cas,
            identities=self.identities,
            steps=self.steps,
            report=REPORT_FILE,
            revocations=self.revocations,
            crls=self.crls,
            ocsp=self.ocsp,
            tsa=self.tsa,
            lotl=self.lotl_file or "",
            resolutions=self.resolutions,
            credentials=self.credentials,
            assessments=self.assessments,
            sessions=self.sessions,
            messages=self.messages,
            access=self.access,
            logs=self.logs,
            provenance=self.provenance,
        )
        if self.contract is not None:
            manifest["contract"] = self.contract
        if self.bridge_entry is not None:
            manifest["bridge"] = self.bridge_entry
        if self.opcua is not None:
            manifest["opcua"] = self.opcua
        return manifest

    def wait_for_interrupt(self) -> None:
        """Leave the nodes up, print where they are, and stop them on Ctrl-C."""
        table = Table(title="nodes still running (Ctrl-C stops them)")
        for column in ("node", "role", "public (HTTP)", "API and web UI (HTTPS)"):
            table.add_column(column)
        for entry in self.nodes:
            https = entry.get("https_url")
            table.add_row(
                entry["node"], entry["role"], entry["http_url"], f"{https}/ui/" if https else "-"
            )
        self.console.print(table)
        self.console.print(
            "[dim]The web UI asks for a person identity's client certificate: the officers' "
            "certificates and keys are under artifacts/<scheme>/identities and keys.[/]",
            markup=True,
        )
        try:
            while all(node.process.poll() is None for node in self.served.values()):
                time.sleep(0.5)
            stopped = [n for n, node in self.served.items() if node.process.poll() is not None]
            raise ConfigError(f"node {', '.join(stopped)} stopped on its own; see {self.out}/logs")
        except KeyboardInterrupt:
            self.console.print("stopping the nodes")

    def summary(self) -> None:
        table = Table(title="the joint DE-JP demonstrator")
        for column in ("step", "", "status", "seconds"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        styles = {"done": "green", "partial": "yellow", "not-available": "dim"}
        for s in self.steps:
            style = styles[s["status"]]
            table.add_row(
                str(s["step"]),
                s["title"],
                Text(s["status"], style=style),
                _seconds(s),
            )
        self.console.print(table)


def run_demo(
    out: Path,
    *,
    console: Console,
    clock: Clock | None = None,
    port_base: int | None = None,
    keep_running: bool = False,
) -> None:
    """Run the joint demonstrator into ``out``: node homes, artifacts, manifest and report.

    The nodes listen on fixed loopback ports (see :data:`HTTP_PORT_BASE`), or from
    ``port_base`` on: HTTP at ``port_base + i``, HTTPS at ``port_base + 100 + i``. They are
    stopped when the run ends, fails or is interrupted; with ``keep_running`` they stay up (their
    URLs printed) until Ctrl-C.
    """
    started = time.perf_counter()
    clock = clock or SystemClock()
    if port_base is not None and not 1024 <= port_base <= 65_000:
        raise InputError(f"port base {port_base} must lie between 1024 and 65000")
    _prepare(out)
    run = _Run(out=out, console=console, clock=clock)
    if port_base is not None:
        run.http_base, run.https_base = port_base, port_base + 100
    console.print(f"[bold]trustbridge demo[/] -> {escape(str(out))}", markup=True)
    with ExitStack() as stack:
        _story(run, stack)
        manifest = run.manifest()
        with run.step(10):
            run.report(manifest)
        manifest["steps"] = run.steps
        write_manifest(out, manifest)
        console.print()
        run.summary()
        console.print(
            f"{len(run.identities)} identities in {out / 'artifacts'}; manifest "
            f"{out / MANIFEST_FILE}; report {out / REPORT_FILE} "
            f"({time.perf_counter() - started:.1f} s in all; the story "
            f"{sum(s['seconds'] for s in run.steps):.1f} s after set-up, goal "
            f"{DEMO_GOAL_SECONDS:.0f} s)",
            highlight=False,
        )
        console.print(
            "[dim]The nodes keep their CA key passphrases in their homes "
            "(secrets/demo-passphrase): a demo convenience, not a practice to copy.[/]",
            markup=True,
        )
        if keep_running:
            run.wait_for_interrupt()


def _story(run: _Run, stack: ExitStack) -> None:
    """Steps 1 to 9 of DEMO.md's story."""
    with run.step(1):
        for c in _COUNTRIES:
            run.scheme(c, stack)
        linking.bridge_schemes(run, _COUNTRIES, stack, group_node=_GROUP, bridge_node=_BRIDGE)
    with run.step(2):
        for c in _COUNTRIES:
            run.tsp(c, stack)
            run.assessment_body(c, stack)
        linking.publish_lists(run, _COUNTRIES, group_node=_GROUP)
    with run.step(3):
        for c in _COUNTRIES:
            run.issue_identities(c)
            run.company_home(c, stack)
        opcua.issue_identities(run, supplier=JAPAN, customer=GERMANY)
        run.serve_nodes(stack)
    with run.step(4):
        profiles.issue_profiles(run, supplier=JAPAN, customer=GERMANY)
        profiles.issue_customer_profile(run, customer=GERMANY, supplier=JAPAN)
    with run.step(5):
        linking.resolve_partners(run, _COUNTRIES, group_node=_GROUP)
        session = exchange.first_contact(run, supplier=JAPAN, customer=GERMANY)
    with run.step(6):
        exchange.conclude_contract(run, session, supplier=JAPAN, customer=GERMANY)
    with run.step(7):
        exchange.exchange_data(run, session, supplier=JAPAN, customer=GERMANY)
    with run.step(8):
        provenance.record_lifecycles(run, supplier=JAPAN, customer=GERMANY)
    with run.step(9):
        provenance.verify_sensors(run, customer=GERMANY)
        run.opcua = opcua.read_test_results(run, supplier=JAPAN, customer=GERMANY)
        run.fault(JAPAN)
        provenance.after_revocation(run, supplier=JAPAN, customer=GERMANY)
        provenance.publish_logs(run)


def render_again(out: Path, *, console: Console, clock: Clock | None = None) -> Path:
    """Render ``report.html`` again from a finished run's manifest and artifacts."""
    manifest = read_manifest(out)
    page = render_report(out, manifest, generated_at=(clock or SystemClock()).now())
    path = out / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    console.print(f"report -> {path}", highlight=False)
    return path


def start_entry(out: Path, entry: NodeEntry, *, log_suffix: str) -> NodeProcess:
    """Start the node a manifest entry names (``trustbridge serve`` on its home); see
    :func:`~trustbridge.node.launcher.wait_ready`."""
    return start_node(
        out / entry["home"],
        name=entry["node"],
        http_url=entry["http_url"],
        https_url=entry.get("https_url", ""),
        log=out / "logs" / f"{entry['node']}-{log_suffix}.log",
    )


@contextmanager
def serve_again(out: Path, *, log_suffix: str = "again") -> Iterator[list[NodeProcess]]:
    """Serve every node of a demo output folder again, each as its own process on the ports its
    certificates name, until the block ends (``DIR/logs/<node>-<log_suffix>.log``)."""
    with ExitStack() as stack:
        nodes = []
        for entry in read_manifest(out)["nodes"]:
            node = start_entry(out, entry, log_suffix=log_suffix)
            stack.callback(stop_node, node)
            nodes.append(node)
        for node in nodes:
            wait_ready(node)
        yield nodes


def _ocsp_status(
    node: NodeProcess, ca: str, certificate: x509.Certificate, issuer: x509.Certificate
) -> str:
    """Ask the node's OCSP responder (POST, SHA-256 CertID) and check who answered."""
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256())
    url = f"{node.http_url}/pki/{ca}/ocsp"
    response = httpx.post(
        url,
        content=request.build().public_bytes(Encoding.DER),
        headers={"content-type": "application/ocsp-request"},
        timeout=30,
    )
    response.raise_for_status()
    answer = ocsp.load_der_ocsp_response(response.content)
    if answer.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ReleaseError(f"OCSP at {url}: {answer.response_status.name}")
    responder = answer.certificates[0]
    responder.verify_directly_issued_by(issuer)
    key = responder.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert answer.signature_hash_algorithm is not None
    key.verify(
        answer.signature, answer.tbs_response_bytes, ec.ECDSA(answer.signature_hash_algorithm)
    )
    return answer.certificate_status.name.lower()


def _prepare(out: Path) -> None:
    """Make ``out`` ready: new or empty, or the output of a previous demo (replaced)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file, not a folder", hint="choose a folder with --out")
    if out.is_dir() and any(out.iterdir()):
        if not ((out / MANIFEST_FILE).is_file() or (out / _MARKER).is_file()):
            raise InputError(
                f"{out} is not empty and holds no previous demo output",
                hint="choose a new or empty folder with --out (a previous demo's output "
                "folder is replaced)",
            )
        for name in _ISSUED_BY_DEMO:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text(
        "Output of `trustbridge demo`: a rerun replaces nodes/, artifacts/, manifest.json and "
        "report.html in this folder.\n"
    )


def _step_entry(number: int, seconds: float) -> StepEntry:
    title, status, note = _STORY[number - 1]
    entry = StepEntry(step=number, title=title, status=status, seconds=round(seconds, 3))
    if note:
        entry["note"] = note
    return entry


def _pem(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def _csr(key: CertificateIssuerPrivateKeyTypes, subject: Subject) -> bytes:
    """The holder's PKCS#10 request: proves possession; the CA sets the real subject."""
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, subject.display_name[:64])])
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(key, hash_for(KeyType.of(key)))
    )
    return request.public_bytes(Encoding.PEM)


def _certificate(result: RequestInfo | Issued) -> x509.Certificate:
    if isinstance(result, RequestInfo):
        raise ReleaseError(f"request {result.id} is {result.state}; expected an issued identity")
    return result.certificates[0]


def _proof(credential: _Holder, digest: str) -> EnrolmentProof:
    """The organization signs a request digest with its identity: the enrolment credential."""
    return EnrolmentProof.sign(credential.certificate, FileSigner(credential.key), digest)


def _seconds(step: StepEntry) -> str:
    return "-" if step["status"] == "not-available" else f"{step['seconds']:.2f}"
