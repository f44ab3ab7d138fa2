"""A node's home: configuration, database and keys, and the operations on them."""

from trustbridge.home.home import EnrolmentProof, Home, KeySpec, ProductionBatch, local_principal

__all__ = ["EnrolmentProof", "Home", "KeySpec", "ProductionBatch", "local_principal"]
