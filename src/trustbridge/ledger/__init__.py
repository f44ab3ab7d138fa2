"""Transparency log (RFC 9162): not built yet, see the provenance issue."""
