"""Verifying a component's provenance: each statement and the chain they form.

The caller has checked how each statement was logged (the inclusion proof against a checkpoint
consistent with the newest one it knows) or timestamped (RFC 3161), and hands over the trusted
time with it (:class:`LoggedStatement`). The claimed time in a statement is shown, never used.

For each statement, in trusted-time order (ties broken by log index): the DSSE signature with
the chain's leaf key; the payload; the subject (the same component throughout); the signer,
resolved at the statement's trusted time (a statement signed after its signer's identity was
revoked fails); the ``previous`` link (a gap or an out-of-order link fails); the lifecycle
transition; who signed it. An empty chain is invalid.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cryptography import x509

from trustbridge.clock import ensure_utc
from trustbridge.errors import InputError, ValidationError
from trustbridge.pki.profiles import SubjectKind, subject_kind_of
from trustbridge.provenance.dsse import EnvelopeSignatureError, verify_envelope
from trustbridge.provenance.lifecycle import (
    SIGNERS,
    LifecycleError,
    LifecycleState,
    Organization,
    ProductRule,
    SignerNotAllowedError,
    check_signer,
    check_transition,
    organization_of,
)
from trustbridge.provenance.statement import (
    PAYLOAD_TYPE,
    Component,
    LifecycleEvent,
    MalformedStatementError,
    ProvenanceError,
    SignedStatement,
    Statement,
    keyid_of,
)
from trustbridge.trust.paths import PathSearchError
from trustbridge.trust.resolver import Resolution, UntrustedError
from trustbridge.trust.validation import FailureKind, PathValidationError

__all__ = [
    "InvalidStatementError",
    "LoggedStatement",
    "NoStatementsError",
    "OutOfOrderError",
    "ProvenanceReport",
    "Resolve",
    "RevokedSignerError",
    "SubjectMismatchError",
    "TamperedStatementError",
    "TimelineEntry",
    "TimeSource",
    "UntrustedSignerError",
    "verify_chain",
    "verify_statement",
]

#: ``resolve(leaf, intermediates, at)``: a :meth:`TrustResolver.resolve` that raises
#: :class:`~trustbridge.errors.ValidationError` for an identity untrusted at ``at``.
Resolve = Callable[[x509.Certificate, Sequence[x509.Certificate], datetime], Resolution]

#: Where a statement's trusted time comes from: its log inclusion or an RFC 3161 timestamp.
TimeSource = Literal["log", "tsa"]
_TIME_SOURCES = ("log", "tsa")


class TamperedStatementError(ProvenanceError):
    """The DSSE signature does not verify with the signer's certificate."""


class InvalidStatementError(ProvenanceError):
    """A signed payload that is not a well-formed lifecycle statement."""


class SubjectMismatchError(ProvenanceError):
    """A statement about another component than the one verified."""


class UntrustedSignerError(ProvenanceError):
    """The signer's identity does not resolve at the statement's trusted time."""


class RevokedSignerError(UntrustedSignerError):
    """The signer's identity was revoked before the statement's trusted time."""


class OutOfOrderError(LifecycleError):
    """A statement whose ``previous`` names one logged after it."""


class NoStatementsError(ProvenanceError):
    """No statement about the component: nothing to rely on."""


@dataclass(frozen=True)
class LoggedStatement:
    """A signed statement with the time the caller established for it.

    ``time`` is the log-inclusion time (``time_source`` ``log``) or the RFC 3161 timestamp's
    time (``tsa``), after the caller checked the inclusion proof or the token.
    """

    statement: SignedStatement
    time: datetime
    time_source: TimeSource = "log"
    #: The origin of the log that holds it.
    log: str | None = None
    #: Its index in that log.
    index: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.statement, SignedStatement):
            raise InputError("a logged statement needs a SignedStatement")
        if not isinstance(self.time, datetime):
            raise InputError("a logged statement's time must be a datetime")
        object.__setattr__(self, "time", ensure_utc(self.time))
        if self.time_source not in _TIME_SOURCES:
            raise InputError(
                f"time source {self.time_source!r} is neither 'log' nor 'tsa'",
                hint="a statement's time comes from its log inclusion or an RFC 3161 timestamp",
            )
        if self.index is not None and (not isinstance(self.index, int) or self.index < 0):
            raise InputError(f"log index {self.index!r} is not a non-negative integer")

    @property
    def digest(self) -> str:
        return self.statement.digest


@dataclass(frozen=True)
class TimelineEntry:
    """One statement as verified: what happened, when (trusted), who signed, and the verdict."""

    digest: str
    event: LifecycleEvent | None
    time: datetime
    time_source: TimeSource
    log: str | None
    index: int | None
    #: Informational only.
    claimed_time: datetime | None
    signer: str
    signer_kind: SubjectKind | None
    organization: Organization | None
    route: str | None
    holder_level: str | None
    reference_level: str | None
    details: Mapping[str, Any] = field(hash=False)
    failures: tuple[str, ...] = ()
    _errors: tuple[ProvenanceError, ...] = field(default=(), repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.failures

    def require(self) -> None:
        """Raise this statement's first error, if any."""
        if self._errors:
            raise self._errors[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "event": self.event.value if self.event is not None else None,
            "time": _iso(self.time),
            "time_source": self.time_source,
            "log": self.log,
            "index": self.index,
            "claimed_time": _iso(self.claimed_time) if self.claimed_time is not None else None,
            "signer": self.signer,
            "signer_kind": self.signer_kind.value if self.signer_kind is not None else None,
            "organization": self.organization.to_json() if self.organization else None,
            "route": self.route,
            "holder_level": self.holder_level,
            "reference_level": self.reference_level,
            "details": dict(self.details),
            "ok": self.ok,
            "failures": list(self.failures),
        }


@dataclass(frozen=True)
class ProvenanceReport:
    """The verdict on a component's chain of statements, and its timeline."""

    component: str
    timeline: tuple[TimelineEntry, ...]
    failures: tuple[str, ...]
    _errors: tuple[ProvenanceError, ...] = field(default=(), repr=False, compare=False)

    @property
    def valid(self) -> bool:
        """True only for a non-empty chain without any failure."""
        return bool(self.timeline) and not self.failures and not self._errors

    def require(self) -> None:
        """Raise the first failure as its typed error (:class:`ProvenanceError`)."""
        if self._errors:
            raise self._errors[0]
        if not self.valid:  # pragma: no cover - every failure carries its error
            raise ProvenanceError(f"{self.component}: provenance is not valid")

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "valid": self.valid,
            "failures": list(self.failures),
            "timeline": [entry.to_json() for entry in self.timeline],
        }


def _iso(value: datetime) -> str:
    return ensure_utc(value).isoformat().replace("+00:00", "Z")


# -- one statement ------------------------------------------------------------------------------


def _revoked(error: ValidationError) -> bool:
    """Whether the resolver refused because a certificate of the path is revoked."""
    if isinstance(error, PathValidationError):
        return error.kind is FailureKind.REVOKED
    if isinstance(error, PathSearchError):
        return any(
            isinstance(e, PathValidationError) and e.kind is FailureKind.REVOKED
            for _, e in error.failures
        )
    if isinstance(error, UntrustedError):
        # The resolver keeps each route's reason as text only.
        return any(o.error is not None and "revoked" in o.error for o in error.routes)
    return "revoked" in error.message


@dataclass
class _Check:
    """What was established about one statement so far."""

    record: LoggedStatement
    statement: Statement | None = None
    resolution: Resolution | None = None
    organization: Organization | None = None
    errors: list[ProvenanceError] = field(default_factory=list)

    def fail(self, error: ProvenanceError) -> None:
        self.errors.append(error)

    def entry(self) -> TimelineEntry:
        leaf = self.record.statement.leaf
        statement = self.statement
        resolution = self.resolution
        organization = self.organization or organization_of(leaf)
        return TimelineEntry(
            digest=self.record.digest,
            event=statement.event if statement is not None else None,
            time=self.record.time,
            time_source=self.record.time_source,
            log=self.record.log,
            index=self.record.index,
            claimed_time=statement.claimed_time if statement is not None else None,
            signer=leaf.subject.rfc4514_string(),
            signer_kind=subject_kind_of(leaf),
            organization=organization,
            route=str(resolution.route) if resolution is not None else None,
            holder_level=str(resolution.holder_level) if resolution is not None else None,
            reference_level=(
                str(resolution.reference_level)
                if resolution is not None and resolution.reference_level is not None
                else None
            ),
            details=dict(statement.details) if statement is not None else {},
            failures=tuple(e.message for e in self.errors),
            _errors=tuple(self.errors),
        )


def _label(record: LoggedStatement, statement: Statement | None) -> str:
    event = statement.event.value if statement is not None else "statement"
    how = "logged" if record.time_source == "log" else "timestamped"
    return f"{event} {record.digest[:12]} ({how} {_iso(record.time)})"


def _check_signature(check: _Check) -> None:
    """DSSE signature with the leaf's key (keyid matches), then the payload."""
    record = check.record
    signed = record.statement
    leaf = signed.leaf
    where = f"statement {record.digest[:12]}"
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            check.fail(
                TamperedStatementError(
                    f"{where}: the signer's certificate does not allow digital signatures"
                )
            )
            return
    except x509.ExtensionNotFound:
        pass
    try:
        verify_envelope(
            signed.envelope,
            leaf,
            payload_type=PAYLOAD_TYPE,
            keyids=(keyid_of(leaf),),
            source=where,
        )
    except EnvelopeSignatureError as exc:
        check.fail(TamperedStatementError(exc.message, hint="the statement must not be used"))
        return
    try:
        check.statement = signed.statement
    except MalformedStatementError as exc:
        check.fail(InvalidStatementError(exc.message))


def _check_signer_trusted(check: _Check, resolve: Resolve) -> None:
    record = check.record
    chain = record.statement.chain
    try:
        check.resolution = resolve(chain[0], chain[1:], record.time)
    except ValidationError as exc:
        what = _label(record, check.statement)
        if _revoked(exc):
            check.fail(
                RevokedSignerError(
                    f"{what}: its signer was revoked before the statement's "
                    f"{record.time_source} time ({exc.message})",
                    hint="a statement signed after its signer's revocation is not relied on",
                )
            )
        else:
            check.fail(
                UntrustedSignerError(
                    f"{what}: its signer is not trusted at the statement's "
                    f"{record.time_source} time ({exc.message})"
                )
            )


def _check_kind_only(check: _Check) -> None:
    """Without history: the signer's kind fits the event (or it is the component itself)."""
    statement = check.statement
    if statement is None:
        return
    leaf = check.record.statement.leaf
    rule = SIGNERS[statement.event]
    own = statement.component.certificate
    if own is not None and own == leaf:
        if not rule.component_itself:
            check.fail(
                _not_allowed(statement, f"the component itself may not sign {statement.event}")
            )
        return
    kind = subject_kind_of(leaf)
    allowed = kind in rule.kinds or (
        kind is SubjectKind.MACHINE and rule.product is not ProductRule.NONE
    )
    if not allowed:
        check.fail(
            _not_allowed(
                statement,
                f"{statement.event} must be signed by {rule.text}, not a "
                f"{kind or 'unknown kind of'} identity",
            )
        )


def _not_allowed(statement: Statement, message: str) -> ProvenanceError:
    return SignerNotAllowedError(f"{statement.component.id}: {message}")


def verify_statement(
    record: LoggedStatement,
    *,
    resolve: Resolve,
    history: Sequence[LoggedStatement] | None = None,
) -> TimelineEntry:
    """Verify one statement before relying on it (a node, before it logs it); raise the first
    :class:`ProvenanceError` or return its timeline entry.

    Without ``history``: the signature, the payload, the signer resolved at ``record.time``
    (for a node about to log it: now) and the signer's kind for the event. With ``history``
    (the component's statements so far, possibly none): the whole chain with this statement
    appended is verified, and any failure in it is raised.
    """
    check = _Check(record)
    _check_signature(check)
    if check.statement is None:
        check.entry().require()
    if history is not None:
        assert check.statement is not None
        component = check.statement.component.id
        report = verify_chain([*history, record], component=component, resolve=resolve)
        report.require()
        return next(e for e in report.timeline if e.digest == record.digest)
    _check_signer_trusted(check, resolve)
    _check_kind_only(check)
    entry = check.entry()
    entry.require()
    return entry


# -- the chain ----------------------------------------------------------------------------------


def _ordered(records: Sequence[LoggedStatement]) -> list[LoggedStatement]:
    """Trusted-time order, ties by log index (records without one after), then as given;
    a statement given more than once (the same digest) is kept once, at its earliest."""
    ranked = sorted(
        enumerate(records),
        key=lambda item: (
            item[1].time,
            item[1].index if item[1].index is not None else sys.maxsize,
            item[0],
        ),
    )
    seen: set[str] = set()
    ordered: list[LoggedStatement] = []
    for _, record in ranked:
        if record.digest not in seen:
            seen.add(record.digest)
            ordered.append(record)
    return ordered


def _matches_name(component: Component, name: str) -> bool:
    return name in (component.id, component.uri)


def verify_chain(
    records: Sequence[LoggedStatement],
    *,
    component: str,
    resolve: Resolve,
) -> ProvenanceReport:
    """Verify every statement about ``component`` (its serial number or URI) and the chain
    they form; the report says whether all of it holds and shows the timeline."""
    ordered = _ordered(records)
    if not ordered:
        error = NoStatementsError(
            f"{component}: no provenance statements", hint="nothing to rely on: fail closed"
        )
        return ProvenanceReport(component, (), (error.message,), (error,))
    positions = {record.digest: i for i, record in enumerate(ordered)}
    reference: Component | None = None
    state: LifecycleState | None = None
    previous: tuple[LoggedStatement, Statement | None] | None = None
    entries: list[TimelineEntry] = []
    for position, record in enumerate(ordered):
        check = _Check(record)
        _check_signature(check)
        statement = check.statement
        if statement is not None:
            # Subject: the first statement's component is the reference.
            if reference is None:
                reference = statement.component
                if not _matches_name(reference, component):
                    check.fail(
                        SubjectMismatchError(
                            f"{_label(record, statement)} is about {reference.id} "
                            f"({reference.uri}), not {component}"
                        )
                    )
                state = LifecycleState.start(reference)
            elif not statement.component.same_as(reference):
                check.fail(
                    SubjectMismatchError(
                        f"{_label(record, statement)} is about {statement.component.id} "
                        f"({statement.component.uri}, digest "
                        f"{statement.component.digest[:12]}), not {reference.id} "
                        f"({reference.uri}, digest {reference.digest[:12]})"
                    )
                )
            _check_signer_trusted(check, resolve)
            _check_link(check, statement, previous, ordered, positions, position)
            assert state is not None
            try:
                check_transition(state, statement)
            except ProvenanceError as exc:
                check.fail(exc)
            try:
                check.organization = check_signer(state, statement, record.statement.leaf)
            except ProvenanceError as exc:
                check.fail(exc)
            state = state.after(statement, record.digest)
        previous = (record, statement)
        entries.append(check.entry())
    errors = tuple(e for entry in entries for e in entry._errors)
    failures = tuple(message for entry in entries for message in entry.failures)
    return ProvenanceReport(component, tuple(entries), failures, errors)


def _check_link(
    check: _Check,
    statement: Statement,
    previous: tuple[LoggedStatement, Statement | None] | None,
    ordered: Sequence[LoggedStatement],
    positions: Mapping[str, int],
    position: int,
) -> None:
    """``previous`` must name the statement just before this one in trusted-time order."""
    record = check.record
    name = statement.component.id
    expected = previous[0].digest if previous is not None else None
    if statement.previous == expected:
        return
    what = _label(record, statement)
    later = positions.get(statement.previous) if statement.previous is not None else None
    if later is not None and later > position:
        linked = ordered[later]
        check.fail(
            OutOfOrderError(
                f"{name}: {what} names as previous {linked.digest[:12]}, which was logged "
                f"after it (at {_iso(linked.time)})",
                hint="statements must be logged in lifecycle order",
            )
        )
        return
    pointed = statement.previous[:12] if statement.previous is not None else "nothing"
    if previous is None:
        before = "nothing (it is the first statement)"
    else:
        before = _label(previous[0], previous[1])
    check.fail(
        LifecycleError(
            f"a gap: {name}: {what}: previous points to {pointed} but the statement before "
            f"is {before}",
            hint="a statement of the chain is missing, or the chain forks",
        )
    )
