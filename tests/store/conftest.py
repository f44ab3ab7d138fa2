"""The store tests build reference homes like the home tests: same passphrase fixture."""

from tests.home.conftest import _passphrase

__all__ = ["_passphrase"]
