"""The transparency log: an RFC 9162 Merkle tree, its proofs, and checkpoints as signed notes.

The log appends entries to a :class:`MerkleTree` and publishes its tree head as a
:class:`Checkpoint` signed with :func:`sign_checkpoint`; witnesses add :func:`cosign` lines.
Clients verify a checkpoint with :func:`open_checkpoint`, an entry with
:func:`verify_inclusion`, and that the log only grows with :func:`check_update`.
"""

from trustbridge.ledger.errors import (
    CheckpointError,
    LedgerError,
    NoteFormatError,
    ProofError,
    RollbackError,
    SplitViewError,
)
from trustbridge.ledger.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)
from trustbridge.ledger.note import (
    Checkpoint,
    Cosignature,
    LogKey,
    SignedCheckpoint,
    WitnessKey,
    add_signatures,
    check_update,
    cosign,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)

__all__ = [
    "EMPTY_ROOT",
    "Checkpoint",
    "CheckpointError",
    "Cosignature",
    "LedgerError",
    "LogKey",
    "MerkleTree",
    "NoteFormatError",
    "ProofError",
    "RollbackError",
    "SignedCheckpoint",
    "SplitViewError",
    "WitnessKey",
    "add_signatures",
    "check_update",
    "cosign",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "root_from_inclusion",
    "sign_checkpoint",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
]
