"""Conformance suites that nobody on this project wrote, read from ``../shared/conformance``."""
