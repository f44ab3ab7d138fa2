"""Signed lifecycle statements of components and their verification.

Each lifecycle event of a component (manufactured, tested, shipped, received, integrated,
firmware installed or updated) is an in-toto Statement v1 in a DSSE envelope, signed by the
acting identity and logged. :func:`verify_chain` checks a component's whole chain at the
trusted times the caller established (log inclusion or RFC 3161), against the declared
lifecycle (:data:`TRANSITIONS`, :data:`SIGNERS`).
"""

from trustbridge.provenance.dsse import Envelope, EnvelopeSignature, pae
from trustbridge.provenance.lifecycle import (
    SIGNERS,
    TRANSITIONS,
    LifecycleError,
    SignerNotAllowedError,
)
from trustbridge.provenance.statement import (
    PREDICATE_TYPE,
    Component,
    LifecycleEvent,
    MalformedStatementError,
    ProvenanceError,
    SignedStatement,
    Statement,
    build_statement,
    parse_statement,
    sign_statement,
)
from trustbridge.provenance.verify import (
    InvalidStatementError,
    LoggedStatement,
    NoStatementsError,
    OutOfOrderError,
    ProvenanceReport,
    RevokedSignerError,
    SubjectMismatchError,
    TamperedStatementError,
    TimelineEntry,
    UntrustedSignerError,
    verify_chain,
    verify_statement,
)

__all__ = [
    "PREDICATE_TYPE",
    "SIGNERS",
    "TRANSITIONS",
    "Component",
    "Envelope",
    "EnvelopeSignature",
    "InvalidStatementError",
    "LifecycleError",
    "LifecycleEvent",
    "LoggedStatement",
    "MalformedStatementError",
    "NoStatementsError",
    "OutOfOrderError",
    "ProvenanceError",
    "ProvenanceReport",
    "RevokedSignerError",
    "SignedStatement",
    "SignerNotAllowedError",
    "Statement",
    "SubjectMismatchError",
    "TamperedStatementError",
    "TimelineEntry",
    "UntrustedSignerError",
    "build_statement",
    "pae",
    "parse_statement",
    "sign_statement",
    "verify_chain",
    "verify_statement",
]
