"""Development helpers used by the tests and benchmarks (not part of the public API)."""
