"""Trust profiles as verifiable credentials: not built yet, see the trust-profiles issue."""
