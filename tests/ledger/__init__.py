"""The transparency log: Merkle tree, proofs, checkpoints and cosignatures."""
