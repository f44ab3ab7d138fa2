"""Signed lifecycle statements of components: not built yet."""
