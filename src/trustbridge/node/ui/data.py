"""What each page of the web UI shows, read from the home: one small function per page.

The functions take the home (and the page's parameters) and return plain values the templates
render; they know nothing of HTTP, so the tests call them directly. They only read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select

from trustbridge._canonical import canonical_json
from trustbridge.errors import NotFoundError, TrustbridgeError
from trustbridge.exchange.contract import ContractReport, ContractTerms, contract_terms
from trustbridge.home import Home
from trustbridge.home.exchange import SessionInfo, assessment_summary
from trustbridge.home.log import Peer
from trustbridge.home.provenance import ProvenanceVerification
from trustbridge.home.records import CaInfo, CertificateInfo, RequestInfo
from trustbridge.ledger.entries import LogEntry
from trustbridge.ledger.note import SignedCheckpoint
from trustbridge.pki.ca import certificate_fingerprint
from trustbridge.provenance.verify import LoggedStatement
from trustbridge.store import tables as t
from trustbridge.trust.lists import (
    Lotl,
    TrustList,
    TrustListError,
    lotl_from_json,
    payload_of,
    trust_list_from_json,
)

__all__ = [
    "CaRow",
    "CertificateDetail",
    "CheckpointRow",
    "ComponentPage",
    "ContractDetail",
    "ContractRow",
    "CrlStatus",
    "EntryRow",
    "LogPage",
    "OcspStatus",
    "PartnerDetail",
    "PartnerRow",
    "PublishedList",
    "RequestDetail",
    "TrustPage",
    "ca_rows",
    "certificate_detail",
    "certificate_rows",
    "component_page",
    "components",
    "contract_detail",
    "contract_rows",
    "log_entry",
    "log_page",
    "message_rows",
    "partner_detail",
    "partner_rows",
    "request_detail",
    "request_rows",
    "trust_page",
]

#: Most rows a list page shows (filters narrow the rest).
PAGE_ROWS = 500
#: Most certificates a request page lists (a production batch has many).
REQUEST_CERTIFICATES = 50


# -- CAs, CRLs and OCSP ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CrlStatus:
    number: int
    this_update: datetime
    next_update: datetime
    entries: int
    #: Past its nextUpdate: relying parties refuse it.
    overdue: bool


@dataclass(frozen=True)
class OcspStatus:
    #: Pre-signed answers in the database, and the first of them to expire.
    answers: int
    first_expiry: datetime | None
    #: The delegated responder's certificate (made on the first OCSP query).
    responder: x509.Certificate | None


@dataclass(frozen=True)
class CaRow:
    info: CaInfo
    urls: dict[str, str]
    crl: CrlStatus | None
    delta_crl: CrlStatus | None
    ocsp: OcspStatus

    @property
    def fingerprint(self) -> str:
        certificate = self.info.certificate
        return certificate_fingerprint(certificate) if certificate is not None else ""


def _crl_status(home: Home, slug: str, *, delta: bool, now: datetime) -> CrlStatus | None:
    try:
        info = home.status.latest_crl(slug, delta=delta)
    except NotFoundError:
        return None
    return CrlStatus(
        info.number, info.this_update, info.next_update, info.entries, info.next_update <= now
    )


def _ocsp_status(home: Home, slug: str) -> OcspStatus:
    with home.engine.connect() as conn:
        ca_id = conn.execute(
            select(t.authorities.c.id).where(t.authorities.c.slug == slug)
        ).scalar_one()
        answers = conn.execute(
            select(func.count()).where(t.ocsp_responses.c.ca_id == ca_id)
        ).scalar_one()
        first = conn.execute(
            select(t.ocsp_responses.c.next_update)
            .where(t.ocsp_responses.c.ca_id == ca_id)
            .order_by(t.ocsp_responses.c.next_update)
            .limit(1)
        ).scalar_one_or_none()
        responder = conn.execute(
            select(t.service_keys.c.certificate_der)
            .where(t.service_keys.c.ca_id == ca_id, t.service_keys.c.service == "ocsp")
            .order_by(t.service_keys.c.not_after.desc())
            .limit(1)
        ).scalar_one_or_none()
    return OcspStatus(
        int(answers),
        first,
        x509.load_der_x509_certificate(responder) if responder is not None else None,
    )


def ca_rows(home: Home) -> list[CaRow]:
    """Every CA of the home with its certificate, its CRLs and its OCSP responder's state."""
    base = home.config.base_url
    now = home.now()
    rows = []
    for info in home.cas():
        active = info.state == "active"
        urls = (
            {
                "certificate": f"{base}/pki/{info.slug}/ca.crt",
                "crl": f"{base}/pki/{info.slug}/crl",
                "delta CRL": f"{base}/pki/{info.slug}/delta-crl",
                "OCSP": f"{base}/pki/{info.slug}/ocsp",
                "issuers (.p7c)": f"{base}/pki/{info.slug}/issuers.p7c",
            }
            if active
            else {}
        )
        rows.append(
            CaRow(
                info,
                urls,
                _crl_status(home, info.slug, delta=False, now=now) if active else None,
                _crl_status(home, info.slug, delta=True, now=now) if active else None,
                _ocsp_status(home, info.slug),
            )
        )
    return rows


# -- identities and requests -----------------------------------------------------------------------


def certificate_rows(
    home: Home,
    *,
    kind: str | None = None,
    holder: str | None = None,
    ca: str | None = None,
    status: str | None = None,
) -> list[CertificateInfo]:
    """Issued certificates matching the filters, at most :data:`PAGE_ROWS`."""
    return home.certificates(
        kind=kind or None,
        holder=holder or None,
        ca=ca or None,
        status=status or None,
        limit=PAGE_ROWS,
    )


@dataclass(frozen=True)
class CertificateDetail:
    info: CertificateInfo
    pem: str
    chain: tuple[x509.Certificate, ...]


def certificate_detail(home: Home, serial: str, *, ca: str | None = None) -> CertificateDetail:
    info = home.certificate(serial, ca=ca)
    pem = info.certificate.public_bytes(Encoding.PEM).decode()
    return CertificateDetail(info, pem, home.chain_for(info))


def request_rows(
    home: Home, *, state: str | None = None, ca: str | None = None
) -> list[RequestInfo]:
    """Requests matching the filters, newest first, at most :data:`PAGE_ROWS`."""
    found = home.requests(state=state or None, ca=ca or None)
    return list(reversed(found))[:PAGE_ROWS]


@dataclass(frozen=True)
class RequestDetail:
    info: RequestInfo
    #: What the request released (the first :data:`REQUEST_CERTIFICATES` of a batch).
    certificates: tuple[CertificateInfo, ...]
    #: The signed statement of the officer who decided, where one did.
    decision: dict[str, Any] | None


def request_detail(home: Home, request_id: str) -> RequestDetail:
    info = home.request(request_id)
    with home.engine.connect() as conn:
        issued = [
            str(serial)
            for serial in conn.execute(
                select(t.certificates.c.serial)
                .where(t.certificates.c.request_id == request_id)
                .order_by(t.certificates.c.id)
                .limit(REQUEST_CERTIFICATES)
            ).scalars()
        ]
        payload = conn.execute(
            select(t.requests.c.decision_payload).where(t.requests.c.id == request_id)
        ).scalar_one_or_none()
    decision: dict[str, Any] | None = None
    if payload:
        try:
            decision = json.loads(payload)
        except ValueError:
            decision = None
    return RequestDetail(info, tuple(home.certificate(s, ca=info.ca) for s in issued), decision)


# -- trust lists and the LOTL ----------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedList:
    """A list this node publishes (as a scheme or group operator), as it signed it."""

    name: str
    url: str
    document: TrustList | Lotl | None
    problem: str | None = None

    @property
    def is_lotl(self) -> bool:
        return isinstance(self.document, Lotl)


@dataclass(frozen=True)
class TrustPage:
    #: What this home accepted as a relying party, verified again now.
    lotl: Lotl | None
    lists: tuple[TrustList, ...]
    problems: tuple[str, ...]
    published: tuple[PublishedList, ...]
    lotl_signers: tuple[x509.Certificate, ...]
    anchors: tuple[x509.Certificate, ...]


def _published(home: Home) -> list[PublishedList]:
    folder = home.path / "trust" / "published"
    out: list[PublishedList] = []
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.jws")):
        url = f"{home.config.base_url}/trust/{path.name}"
        try:
            payload = payload_of(path.read_bytes())
            data = canonical_json(payload)
            document: TrustList | Lotl = (
                lotl_from_json(data, source=path.name)
                if "pointers" in payload
                else trust_list_from_json(data, source=path.name)
            )
        except (TrustbridgeError, OSError) as exc:
            problem = exc.message if isinstance(exc, TrustbridgeError) else str(exc)
            out.append(PublishedList(path.name, url, None, problem))
            continue
        out.append(PublishedList(path.name, url, document))
    return out


def trust_page(home: Home) -> TrustPage:
    """The LOTL and trust lists the home accepted (re-verified now: stale ones drop out, with
    the reason), the lists it publishes, and its pins."""
    problems: list[str] = []
    lotl: Lotl | None = None
    lists: tuple[TrustList, ...] = ()
    try:
        snapshot = home.trust.snapshot()
    except (NotFoundError, TrustListError) as exc:
        problems.append(exc.message)
    else:
        lotl, lists = snapshot.config.lotl, snapshot.config.trust_lists
        problems += snapshot.problems
    # A list that fails verification is named by its file: where the home is stays private.
    home_path = str(home.path)
    return TrustPage(
        lotl,
        lists,
        tuple(p.replace(home_path, "HOME") for p in problems),
        tuple(_published(home)),
        tuple(home.trust.lotl_signers()),
        tuple(home.trust.pinned_anchors()),
    )


# -- partners, contracts, messages -----------------------------------------------------------------


def _summary(document: Any) -> dict[str, Any] | None:
    if not isinstance(document, dict) or "decision" not in document:
        return None
    try:
        return assessment_summary(document)
    except (KeyError, TypeError):
        return {"decision": document.get("decision")}


@dataclass(frozen=True)
class PartnerRow:
    session: SessionInfo
    #: Our assessment of the partner, and the partner's of us (summaries).
    ours: dict[str, Any] | None
    theirs: dict[str, Any] | None


def partner_rows(home: Home) -> list[PartnerRow]:
    """Every first-contact session, newest first, with both assessments' summaries."""
    return [
        PartnerRow(s, _summary(s.data.get("assessment")), _summary(s.data.get("their_assessment")))
        for s in reversed(home.exchange.sessions())
    ]


@dataclass(frozen=True)
class PartnerDetail:
    session: SessionInfo
    #: Our full assessment of the partner (``Assessment.to_json()``), theirs of us (summary).
    assessment: dict[str, Any] | None
    theirs: dict[str, Any] | None
    #: The partner's identity as our resolver saw it (organization, route, reference level).
    identity: dict[str, Any] | None


def partner_detail(home: Home, session_id: str) -> PartnerDetail:
    session = home.exchange.session(session_id)
    data = session.data
    assessment = data.get("assessment")
    identity = data.get("partner")
    return PartnerDetail(
        session,
        assessment if isinstance(assessment, dict) else None,
        _summary(data.get("their_assessment")),
        identity if isinstance(identity, dict) else None,
    )


@dataclass(frozen=True)
class ContractRow:
    session: SessionInfo
    terms: ContractTerms | None
    problem: str | None = None


def contract_rows(home: Home) -> list[ContractRow]:
    """Sessions that reached a contract (proposed, countersigned or concluded), newest first,
    with the terms their PDF carries."""
    rows = []
    for session in reversed(home.exchange.sessions()):
        if session.contract_id is None:
            continue
        try:
            terms = contract_terms(home.exchange.contract(session.id), source=session.id)
        except TrustbridgeError as exc:
            rows.append(ContractRow(session, None, exc.message))
            continue
        rows.append(ContractRow(session, terms))
    return rows


@dataclass(frozen=True)
class ContractDetail:
    session: SessionInfo
    terms: ContractTerms
    size: int
    #: The verification with this home's trust and the validation data the PDF carries.
    report: ContractReport | None
    problem: str | None = None


def contract_detail(home: Home, session_id: str, *, verify: bool = True) -> ContractDetail:
    session = home.exchange.session(session_id)
    pdf = home.exchange.contract(session_id)
    terms = contract_terms(pdf, source=f"contract of session {session_id}")
    report: ContractReport | None = None
    problem: str | None = None
    if verify:
        try:
            report = home.exchange.verify_contract(pdf, allow_fetching=False)
        except TrustbridgeError as exc:
            problem = exc.message
    return ContractDetail(session, terms, len(pdf), report, problem)


def message_rows(home: Home, *, direction: str | None = None) -> list[dict[str, Any]]:
    """Messages received and sent, newest first: who, what, accepted or refused and why (their
    content stays out of the UI: reading it is a decision of the access policies)."""
    return list(reversed(home.exchange.messages(direction=direction or None)))[:PAGE_ROWS]


# -- the transparency log --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointRow:
    size: int
    root: bytes
    at: datetime
    cosignatures: int


@dataclass(frozen=True)
class EntryRow:
    index: int
    kind: str
    subject: str | None
    at: datetime
    #: What the entry is about, for people (a certificate's subject, a list's name, ...).
    about: str = ""


_ABOUT = ("subject", "name", "contract", "component", "credential", "id")


def _about(data: bytes, index: int) -> str:
    try:
        body = LogEntry.from_bytes(data, source=f"entry {index}").body
    except TrustbridgeError:
        return ""
    return next((str(body[key]) for key in _ABOUT if isinstance(body.get(key), str)), "")


@dataclass(frozen=True)
class LogPage:
    origin: str
    url: str
    has_key: bool
    vkey: str | None
    size: int
    root: bytes
    latest: SignedCheckpoint | None
    checkpoints: tuple[CheckpointRow, ...]
    entries: tuple[EntryRow, ...]
    #: The index below which the next page of entries starts (None: no more).
    older: int | None
    peers: tuple[Peer, ...] = field(default=())
    problem: str | None = None


def log_page(home: Home, *, before: int | None = None, rows: int = 50) -> LogPage:
    """The log's size and root, its newest checkpoint (with cosignatures), the checkpoints it
    signed and its entries, newest first (``before``: entries below that index)."""
    log = home.log
    size = log.size
    problem: str | None = None
    latest: SignedCheckpoint | None = None
    vkey: str | None = None
    if log.has_key:
        try:
            vkey = log.key().vkey
            latest = log.latest()
        except TrustbridgeError as exc:
            problem = exc.message
    top = size if before is None else max(0, min(before, size))
    with home.engine.connect() as conn:
        signed = conn.execute(
            select(t.log_checkpoints.c.size, t.log_checkpoints.c.root, t.log_checkpoints.c.at)
            .order_by(t.log_checkpoints.c.size.desc())
            .limit(rows)
        ).all()
        # Counted for the checkpoints shown only: the table grows with every checkpoint.
        cosigned: dict[int, int] = {
            int(size): int(count)
            for size, count in conn.execute(
                select(t.log_cosignatures.c.size, func.count())
                .where(t.log_cosignatures.c.size.in_([r.size for r in signed]))
                .group_by(t.log_cosignatures.c.size)
            )
        }
        checkpoints = tuple(
            CheckpointRow(r.size, bytes(r.root), r.at, cosigned.get(r.size, 0)) for r in signed
        )
        entries = tuple(
            EntryRow(r.idx, r.kind, r.subject, r.at, _about(bytes(r.data), r.idx))
            for r in conn.execute(
                select(
                    t.log_entries.c.idx,
                    t.log_entries.c.kind,
                    t.log_entries.c.subject,
                    t.log_entries.c.at,
                    t.log_entries.c.data,
                )
                .where(t.log_entries.c.idx < top)
                .order_by(t.log_entries.c.idx.desc())
                .limit(rows)
            )
        )
    older = entries[-1].index if entries and entries[-1].index > 0 else None
    return LogPage(
        origin=log.origin,
        url=log.url,
        has_key=log.has_key,
        vkey=vkey,
        size=size,
        root=log.root(size),
        latest=latest,
        checkpoints=checkpoints,
        entries=entries,
        older=older,
        peers=tuple(log.peers()),
        problem=problem,
    )


def log_entry(home: Home, index: int) -> tuple[LogEntry, str]:
    """One entry of the log and its body as indented JSON."""
    size = home.log.size
    if not 0 <= index < size:
        # Checked here: an index beyond what the database can hold is no query.
        raise NotFoundError(f"the log has no entry {index} (it holds {size})")
    entry = LogEntry.from_bytes(home.log.entry(index), source=f"entry {index}")
    return entry, json.dumps(entry.body, indent=2, ensure_ascii=False, sort_keys=True)


# -- provenance ------------------------------------------------------------------------------------


def components(home: Home, *, prefix: str = "", limit: int = PAGE_ROWS) -> list[tuple[str, int]]:
    """The components this node holds statements about (those whose identifier starts with
    ``prefix``), with how many, in order: at most ``limit`` (a batch makes thousands)."""
    component = t.provenance_statements.c.component
    query = select(component, func.count()).group_by(component).order_by(component).limit(limit)
    if prefix:
        query = query.where(component.startswith(prefix, autoescape=True))
    with home.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(str(name), int(count)) for name, count in rows]


@dataclass(frozen=True)
class ComponentPage:
    component: str
    history: tuple[LoggedStatement, ...]
    verification: ProvenanceVerification | None
    problem: str | None = None


def component_page(home: Home, component: str, *, verify: bool = False) -> ComponentPage:
    """A component's statements as logged here; with ``verify``, the whole chain checked (the
    log inclusions against the newest checkpoints seen, the signers at the logged times)."""
    history = tuple(home.provenance.history(component))
    if not history:
        raise NotFoundError(f"no provenance statements for component {component!r} here")
    verification: ProvenanceVerification | None = None
    problem: str | None = None
    if verify:
        try:
            verification = home.provenance.verify(component)
        except TrustbridgeError as exc:
            problem = exc.message
    return ComponentPage(component, history, verification, problem)
