"""Provenance statements at a node: logged when its organization acts, imported with their
receipts when a component arrives from a partner, and verified end to end.

A statement's trusted time is the time its log appended it (committed to by the log's signed
checkpoint), never the time it claims. This node logs only statements signed for its own
organization, and only after checking them: the signer resolves now, and the statement extends
the component's chain as the lifecycle allows. Statements a partner logged come with receipts
from the partner's log (followed here with the key its signed description names); they are
checked against the newest checkpoint of that log before they are logged here too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from trustbridge.errors import InputError, NotFoundError, TrustbridgeError, ValidationError
from trustbridge.home.delivery import write_private
from trustbridge.home.exchange import assessment_summary
from trustbridge.home.records import local_principal
from trustbridge.ledger.entries import EntryKind, LogEntry
from trustbridge.ledger.errors import LedgerError, ProofError, SplitViewError
from trustbridge.ledger.merkle import verify_consistency
from trustbridge.ledger.receipt import Receipt
from trustbridge.pki.profiles import SubjectKind, subject_kind_of
from trustbridge.provenance.lifecycle import LifecycleError, Organization, organization_of
from trustbridge.provenance.statement import LifecycleEvent, SignedStatement
from trustbridge.provenance.verify import (
    LoggedStatement,
    ProvenanceReport,
    verify_chain,
    verify_statement,
)
from trustbridge.store import tables as t

if TYPE_CHECKING:
    from trustbridge.home.home import Home
    from trustbridge.home.log import LogService, Peer
    from trustbridge.trust.resolver import Resolution

__all__ = ["ProofSource", "ProvenanceService", "ProvenanceVerification", "Recorded"]

_EQUIPMENT = "provenance/equipment.json"
#: Events only registered production or test equipment may sign (where a machine signs).
_MANUFACTURING = frozenset(
    {LifecycleEvent.MANUFACTURED, LifecycleEvent.FIRMWARE_INSTALLED, LifecycleEvent.TESTED}
)
#: Clock skew allowed between this node and a partner's log.
_SKEW = timedelta(minutes=2)

#: Fetches a consistency proof (origin, first size, second size) from a partner's log.
ProofSource = Callable[[str, int, int], list[bytes]]


@dataclass(frozen=True)
class Recorded:
    """A statement this node logged: its digest, log index and receipt."""

    digest: str
    index: int
    receipt: Receipt
    imported: bool = False


@dataclass(frozen=True)
class ProvenanceVerification:
    """A component's chain checked end to end: the statements (the core's report) and how
    each is logged (``logs``: one line per statement; ``log_failures``: what did not hold)."""

    report: ProvenanceReport
    logs: tuple[str, ...]
    log_failures: tuple[str, ...]
    assessments: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.report.valid and not self.log_failures

    def require(self) -> None:
        if self.log_failures:
            raise LedgerError(f"{self.report.component}: {self.log_failures[0]}")
        self.report.require()

    def to_json(self) -> dict[str, Any]:
        return {
            **self.report.to_json(),
            "valid": self.valid,
            "logs": list(self.logs),
            "log_failures": list(self.log_failures),
            "assessments": self.assessments,
        }


class ProvenanceService:
    """This node's provenance records."""

    def __init__(self, home: Home) -> None:
        self.home = home

    # -- trust -------------------------------------------------------------------------------

    def _resolve(self) -> Callable[[Any, Sequence[Any], datetime], Resolution]:
        # Point-in-time: a statement logged before its signer's revocation stays valid, one
        # logged after fails, judged with the revocation information of now.
        resolver = self.home.trust.resolver(retroactive_revocation=True)

        def resolve(certificate: Any, extra: Sequence[Any], at: datetime) -> Resolution:
            return resolver.resolve(certificate, at=at, extra=extra)

        return resolve

    def organization(self) -> Organization:
        """The organization this node logs statements for (its organization identity)."""
        try:
            chain = self.home.credentials.issuer_chain()
        except (NotFoundError, InputError) as exc:
            raise InputError(
                "this node has no organization identity, so it logs no provenance",
                hint="trustbridge credential issuer set (the organization's identity) first",
            ) from exc
        organization = organization_of(chain[0])
        if organization is None:
            raise InputError(f"{chain[0].subject.rfc4514_string()} names no organization")
        return organization

    # -- reading -----------------------------------------------------------------------------

    def _rows(self, component: str) -> list[Any]:
        with self.home.engine.connect() as conn:
            return list(
                conn.execute(
                    select(t.provenance_statements)
                    .where(t.provenance_statements.c.component == component)
                    .order_by(t.provenance_statements.c.idx)
                ).all()
            )

    def history(self, component: str) -> list[LoggedStatement]:
        """The component's statements here, with their trusted times (unverified)."""
        return [_logged(row) for row in self._rows(component)]

    def components(self) -> list[str]:
        with self.home.engine.connect() as conn:
            return list(
                conn.execute(
                    select(t.provenance_statements.c.component)
                    .distinct()
                    .order_by(t.provenance_statements.c.component)
                ).scalars()
            )

    def exported(self, component: str) -> list[dict[str, Any]]:
        """The component's statements with receipts, as a partner imports them: statements
        logged here with a receipt from this log, imported ones with their origin's receipt."""
        out = []
        for row in self._rows(component):
            if row.origin == self.home.log.origin:
                receipt = self.home.log.receipt(row.idx).to_json()
            else:
                receipt = row.receipt
            out.append({"statement": json.loads(row.bundle), "receipt": receipt})
        if not out:
            raise NotFoundError(f"no provenance statements for component {component!r} here")
        return out

    # -- logging -----------------------------------------------------------------------------

    def record(self, statement: SignedStatement) -> Recorded:
        """Check a statement of this node's organization and log it; return its receipt.
        Recording the same statement again returns its receipt (idempotent)."""
        log = self.home.log
        existing = self._by_digest(statement.digest)
        if existing is not None:
            return Recorded(statement.digest, existing.idx, log.receipt(existing.idx))
        own = self.organization()
        signer = organization_of(statement.leaf)
        parsed = statement.statement
        component = parsed.component.id
        # The cheap checks first: whose statement it is, and by which equipment. A component
        # this organization holds (received here) may report about itself, whoever made it.
        itself = parsed.component.certificate == statement.leaf and self._held_here(component)
        if not itself and (signer is None or not own.matches(signer)):
            raise ValidationError(
                f"{statement.leaf.subject.rfc4514_string()} does not act for "
                f"{own.name}: this node logs its own organization's statements only",
                hint="a partner's statements come in with their receipts (provenance import)",
            )
        self._check_equipment(statement)
        now = self.home.now()
        record = LoggedStatement(statement, time=now, log=log.origin)
        # Signature, signer trusted now (a revoked identity fails), chain and lifecycle.
        verify_statement(record, resolve=self._resolve(), history=self.history(component))
        try:
            return self._append_own(statement, component)
        except IntegrityError:
            again = self._by_digest(statement.digest)
            if again is not None:  # the same statement, logged concurrently
                return Recorded(statement.digest, again.idx, log.receipt(again.idx))
            raise LifecycleError(
                f"{component}: another statement following {parsed.previous or 'the start'} "
                "was logged meanwhile (a fork of the chain)"
            ) from None

    def _held_here(self, component: str) -> bool:
        origin = self.home.log.origin
        return any(
            row.event == LifecycleEvent.RECEIVED.value and row.origin == origin
            for row in self._rows(component)
        )

    def _append_own(self, statement: SignedStatement, component: str) -> Recorded:
        index = self._log(statement, component)
        return Recorded(statement.digest, index, self.home.log.receipt(index))

    def _log(
        self,
        statement: SignedStatement,
        component: str,
        *,
        receipt: Receipt | None = None,
        hop: dict[str, Any] | None = None,
        logged_at: datetime | None = None,
    ) -> int:
        """Append a statement to this log and index it, in one transaction; ``receipt``: the
        partner log's receipt of an imported one (its origin and time are the statement's)."""
        log = self.home.log
        parsed = statement.statement
        body: dict[str, Any] = {
            "component": component,
            "event": parsed.event.value,
            "digest": statement.digest,
            "statement": statement.to_json(),
        }
        if receipt is not None:
            body["logged_by"] = {"origin": receipt.origin, "index": receipt.index}
        with self.home._tx() as conn:
            appended = log.append(EntryKind.PROVENANCE, body, subject=component, conn=conn)
            conn.execute(
                insert(t.provenance_statements),
                {
                    "digest": statement.digest,
                    "component": component,
                    "event": parsed.event.value,
                    "idx": appended.index,
                    "origin": receipt.origin if receipt else log.origin,
                    "origin_idx": receipt.index if receipt else appended.index,
                    "bundle": json.dumps(statement.to_json()),
                    "receipt": {**receipt.to_json(), "consistency": hop} if receipt else None,
                    "at": logged_at or appended.entry.time,
                    "previous": parsed.previous or "",
                },
            )
        return appended.index

    # -- production equipment ------------------------------------------------------------------

    def equipment(self) -> dict[str, str]:
        """The machine identities registered here as production or test equipment
        (certificate SHA-256 -> subject)."""
        path = self.home.path / _EQUIPMENT
        if not path.is_file():
            return {}
        data = json.loads(path.read_text())
        return {str(k): str(v) for k, v in data.items()}

    def register_equipment(self, certificate: x509.Certificate) -> str:
        """Register a machine identity of this organization as production or test equipment:
        only such machines may sign that a component was manufactured, had its firmware
        installed or was tested here (a component's own key may not vouch for another)."""
        own = self.organization()
        acting = organization_of(certificate)
        if subject_kind_of(certificate) is not SubjectKind.MACHINE:
            raise InputError(f"{certificate.subject.rfc4514_string()} is not a machine identity")
        if acting is None or not own.matches(acting):
            raise InputError(
                f"{certificate.subject.rfc4514_string()} is not a machine of {own.name}"
            )
        fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
        registered = {**self.equipment(), fingerprint: certificate.subject.rfc4514_string()}
        path = self.home.path / _EQUIPMENT
        path.parent.mkdir(mode=0o700, exist_ok=True)
        write_private(path, json.dumps(registered, indent=2).encode() + b"\n")
        with self.home._tx() as conn:
            self.home._audit(
                conn,
                local_principal(),
                "provenance.equipment",
                "certificate",
                fingerprint,
                subject=certificate.subject.rfc4514_string(),
            )
        return fingerprint

    def _check_equipment(self, statement: SignedStatement) -> None:
        parsed = statement.statement
        leaf = statement.leaf
        if parsed.event not in _MANUFACTURING or subject_kind_of(leaf) is not SubjectKind.MACHINE:
            return
        own_component = parsed.component.certificate
        if own_component is not None and own_component == leaf:
            return  # the component reports its own firmware (the lifecycle rules decide)
        if leaf.fingerprint(hashes.SHA256()).hex() not in self.equipment():
            raise ValidationError(
                f"{leaf.subject.rfc4514_string()} is not registered here as production or "
                f"test equipment, so it may not sign that a component was {parsed.event.value}",
                hint="trustbridge provenance equipment add CERT",
            )

    def _by_digest(self, digest: str) -> Any:
        with self.home.engine.connect() as conn:
            return conn.execute(
                select(t.provenance_statements).where(t.provenance_statements.c.digest == digest)
            ).first()

    def import_chain(
        self, items: Sequence[dict[str, Any]], *, proofs: ProofSource, source: str
    ) -> list[Recorded]:
        """Import a component's statements that partners logged, each with its receipt:
        the receipt verifies with the partner log's key (followed here), its checkpoint is
        consistent with the newest one seen of that log (``proofs`` fetches the consistency
        proof), the logged entry is this statement, and the chain verifies at the logged
        times. Then each is logged here too. Statements already here are skipped."""
        parsed: list[tuple[SignedStatement, Receipt, LogEntry, dict[str, Any] | None]] = []
        digests: set[str] = set()
        for n, item in enumerate(items):
            where = f"{source}, statement {n + 1}"
            if not isinstance(item, dict):
                raise InputError(f"{where} is not a JSON object")
            statement = SignedStatement.from_json(item.get("statement"), source=where)
            if statement.digest in digests:
                raise InputError(f"{where} repeats statement {statement.digest[:12]}")
            digests.add(statement.digest)
            receipt = Receipt.from_json(item.get("receipt"), source=f"{where}'s receipt")
            entry, hop = self._check_receipt(statement, receipt, proofs=proofs, source=where)
            parsed.append((statement, receipt, entry, hop))
        if not parsed:
            raise InputError(f"{source} holds no statements")
        component = parsed[0][0].statement.component.id
        history = self.history(component)
        incoming = [
            LoggedStatement(s, time=e.time, log=r.origin, index=r.index) for s, r, e, _ in parsed
        ]
        report = verify_chain([*history, *incoming], component=component, resolve=self._resolve())
        report.require()
        recorded = []
        for statement, receipt, entry, hop in parsed:
            if self._by_digest(statement.digest) is not None:
                continue
            try:
                index = self._log(
                    statement, component, receipt=receipt, hop=hop, logged_at=entry.time
                )
            except IntegrityError:
                continue  # imported concurrently
            recorded.append(Recorded(statement.digest, index, receipt, imported=True))
        return recorded

    def _check_receipt(
        self,
        statement: SignedStatement,
        receipt: Receipt,
        *,
        proofs: ProofSource | None,
        source: str,
        hop: dict[str, Any] | None = None,
    ) -> tuple[LogEntry, dict[str, Any] | None]:
        peer = self.home.log.peer(receipt.origin)
        # A statement counts only in the log of the organization that acts: a log run by
        # someone else could log anything for it.
        runner = peer.organization
        acting = organization_of(statement.leaf)
        if not runner:
            raise ProofError(
                f"{source}: who runs log {receipt.origin} is not known here",
                hint="follow a partner's log through first contact (its signed description)",
            )
        if acting is None or not acting.matches(
            Organization(runner.get("name", ""), runner.get("identifier"))
        ):
            raise ProofError(
                f"{source}: {statement.leaf.subject.rfc4514_string()} acts for another "
                f"organization than {runner.get('name')}, who runs log {receipt.origin}"
            )
        signed, entry = receipt.verify(peer.key, source=f"{source}'s receipt")
        # The partner's clock is its own claim; bound it by what this node saw: an entry not
        # in a checkpoint seen at time T was appended after T.
        before = self.home.log.seen_before(receipt.origin, receipt.index)
        if before is not None and entry.time < before - _SKEW:
            raise ProofError(
                f"{source}: {receipt.origin} dates entry {receipt.index} "
                f"{entry.time.isoformat()}, but it was not in its log at {before.isoformat()}"
            )
        if entry.kind is not EntryKind.PROVENANCE or entry.body.get("digest") != statement.digest:
            raise ProofError(
                f"{source}: the receipt's entry {receipt.index} in {receipt.origin} is not "
                "this statement"
            )
        if SignedStatement.from_json(entry.body.get("statement"), source=source) != statement:
            raise ProofError(f"{source}: the logged statement differs from the one given")
        kept = _consistent(
            self.home.log,
            signed.checkpoint.size,
            signed.checkpoint.root,
            peer,
            proofs,
            source,
            hop=hop,
        )
        return entry, kept

    # -- verifying ---------------------------------------------------------------------------

    def verify(
        self, component: str, *, proofs: ProofSource | None = None
    ) -> ProvenanceVerification:
        """Check the component's whole chain: each statement's log inclusion (this log: an
        inclusion proof against its newest checkpoint; a partner's: its receipt against a
        checkpoint consistent with the newest one seen of that log), then the chain itself
        (signatures, signers trusted at the logged times, order, lifecycle)."""
        rows = self._rows(component)
        if not rows:
            raise NotFoundError(
                f"no provenance statements for component {component!r} here",
                hint="trustbridge provenance show lists the components this node knows",
            )
        log = self.home.log
        key = log.key()
        latest = log.checkpoint()
        lines: list[str] = []
        failures: list[str] = []
        records: list[LoggedStatement] = []
        for row in rows:
            try:
                own = log.receipt(row.idx)
                _, entry = own.verify(key, source=f"entry {row.idx} of this log")
                # The statement as the log holds it, never the copy beside it.
                statement = SignedStatement.from_json(
                    entry.body.get("statement"), source=f"entry {row.idx} of this log"
                )
                if entry.body.get("digest") != row.digest or statement.digest != row.digest:
                    raise ProofError(f"entry {row.idx} of this log is not statement {row.digest}")
                where = f"in this log at {row.idx} (checkpoint {latest.checkpoint.size})"
                time = entry.time
                if row.origin != log.origin:
                    receipt = Receipt.from_json(row.receipt, source=f"the receipt of {row.digest}")
                    origin_entry, _ = self._check_receipt(
                        statement,
                        receipt,
                        proofs=proofs,
                        source=f"statement {row.digest[:12]}",
                        hop=row.receipt.get("consistency"),
                    )
                    time = origin_entry.time
                    where += f"; logged first by {row.origin} at {receipt.index}"
                lines.append(f"{row.event}: {where}")
                records.append(
                    LoggedStatement(statement, time=time, log=row.origin, index=row.origin_idx)
                )
            except TrustbridgeError as exc:
                failures.append(f"{row.event} ({row.digest[:12]}): {exc.message}")
        report = verify_chain(records, component=component, resolve=self._resolve())
        return ProvenanceVerification(
            report=report,
            logs=tuple(lines),
            log_failures=tuple(failures),
            assessments=self._assessments(report),
        )

    def _assessments(self, report: ProvenanceReport) -> dict[str, dict[str, Any]]:
        """This node's newest assessment of each acting organization, where one exists."""
        found: dict[str, dict[str, Any]] = {}
        if not self.home.exchange.configured:
            return found
        sessions = list(reversed(self.home.exchange.sessions()))
        for entry in report.timeline:
            acting = entry.organization
            if acting is None or acting.name in found:
                continue
            for session in sessions:
                document = session.data.get("assessment")
                partner = Organization(session.partner_name or "", session.partner_org)
                if document and acting.matches(partner):
                    found[acting.name] = {"session": session.id, **assessment_summary(document)}
                    break
        return found


def _consistent(
    log: LogService,
    size: int,
    root: bytes,
    peer: Peer,
    proofs: ProofSource | None,
    source: str,
    *,
    hop: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """A partner checkpoint (size, root) is consistent with the newest one seen of its log:
    by the proofs kept from each look at that log (no network), by ``hop`` (a proof kept at
    import, to a checkpoint seen then), or else by a proof fetched now (returned, to keep)."""
    if size > peer.size:
        raise ProofError(
            f"{source}: the receipt's checkpoint ({size} entries) is newer than the newest "
            f"checkpoint seen of {peer.origin} ({peer.size}); monitor that log first"
        )
    if size == peer.size:
        if root != peer.root:
            raise SplitViewError(
                f"{source}: {peer.origin} signed two different trees of {size} entries"
            )
        return None
    if log.prove_peer(peer.origin, size, root):
        return None
    if hop is not None:
        to = hop.get("to")
        seen = log.peer_checkpoint(peer.origin, to) if isinstance(to, int) else None
        if seen is not None:
            proof = [base64.b64decode(p) for p in hop.get("proof", [])]
            verify_consistency(size, seen[0], root, seen[1], proof)
            if log.prove_peer(peer.origin, seen[0], seen[1]):
                return None
    if proofs is None:
        raise ProofError(
            f"{source}: no kept proof links the receipt's checkpoint ({size} entries) to the "
            f"newest one seen of {peer.origin}, and that log cannot be asked"
        )
    proof = proofs(peer.origin, size, peer.size)
    verify_consistency(size, peer.size, root, peer.root, proof)
    return {"to": peer.size, "proof": [base64.b64encode(p).decode() for p in proof]}


def _logged(row: Any) -> LoggedStatement:
    statement = SignedStatement.from_json(json.loads(row.bundle), source=row.digest)
    return LoggedStatement(statement, time=row.at, log=row.origin, index=row.origin_idx)
