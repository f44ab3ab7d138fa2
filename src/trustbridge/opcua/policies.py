"""The OPC UA security policies trustbridge speaks, always in SignAndEncrypt mode."""

from __future__ import annotations

import enum

from trustbridge.errors import InputError

__all__ = ["SecurityPolicy"]

_BASE = "http://opcfoundation.org/UA/SecurityPolicy#"


class SecurityPolicy(enum.StrEnum):
    """A security policy by its OPC UA name (OPC 10000-7); the mode is SignAndEncrypt."""

    BASIC256SHA256 = "Basic256Sha256"
    AES256_SHA256_RSAPSS = "Aes256_Sha256_RsaPss"

    @property
    def uri(self) -> str:
        return _BASE + self.value

    @classmethod
    def parse(cls, text: str) -> SecurityPolicy:
        """``Basic256Sha256`` or ``Aes256_Sha256_RsaPss``, in any case, ``_`` or ``-`` optional."""
        wanted = text.strip().lower().replace("_", "").replace("-", "")
        for member in cls:
            if member.value.lower().replace("_", "") == wanted:
                return member
        choices = ", ".join(m.value for m in cls)
        raise InputError(f"unknown security policy {text!r}", hint=f"choose one of: {choices}")
