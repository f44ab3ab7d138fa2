"""The errors of the transparency log: proofs, checkpoints and their text formats.

Grouped like python-tuf's exceptions: a proof that does not verify, a checkpoint that is not
signed as required, and the two ways a log can lie to its clients (rolling back and showing
different clients different histories) as their own classes.
"""

from __future__ import annotations

from trustbridge.errors import InputError, ValidationError

__all__ = [
    "CheckpointError",
    "LedgerError",
    "NoteFormatError",
    "ProofError",
    "RollbackError",
    "SplitViewError",
]


class LedgerError(ValidationError):
    """A transparency-log artifact (proof, checkpoint) that does not validate."""


class ProofError(LedgerError):
    """An inclusion or consistency proof that does not verify, or is for another tree."""


class CheckpointError(LedgerError):
    """A checkpoint without a valid signature by the expected key, or for another log."""


class RollbackError(CheckpointError):
    """A checkpoint with a smaller tree than one already seen from the same log."""


class SplitViewError(CheckpointError):
    """Two checkpoints of one log that cannot both be true: the log rewrote its history."""


class NoteFormatError(InputError):
    """A signed note, checkpoint or verifier key whose text is malformed."""
