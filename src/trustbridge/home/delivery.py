"""Handing CA-generated device keys to the factory: PEM files, readable by their owner only.

Keys generated at manufacture are never stored by the CA; these files are the one copy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from trustbridge.pki.keys import private_key_pem

__all__ = ["device_serial", "write_bundle", "write_device_files", "write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Create or replace ``path`` with mode 600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def device_serial(certificate: x509.Certificate) -> str:
    """The device serial number a machine certificate names (its subject serialNumber)."""
    value = certificate.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)[0].value
    return value if isinstance(value, str) else value.decode()


def _pem(key: PrivateKeyTypes, certificate: x509.Certificate) -> bytes:
    return private_key_pem(key) + certificate.public_bytes(Encoding.PEM)


def write_device_files(
    out: Path, certificates: Sequence[x509.Certificate], keys: Sequence[PrivateKeyTypes]
) -> list[Path]:
    """One ``<device serial>.pem`` per device: its key, then its certificate."""
    paths = []
    for certificate, key in zip(certificates, keys, strict=True):
        path = out / f"{device_serial(certificate)}.pem"
        write_private(path, _pem(key, certificate))
        paths.append(path)
    return paths


def write_bundle(
    path: Path, certificates: Sequence[x509.Certificate], keys: Sequence[PrivateKeyTypes]
) -> Path:
    """All devices of a chunk in one PEM file: each device's key followed by its certificate."""
    write_private(path, b"".join(_pem(k, c) for c, k in zip(certificates, keys, strict=True)))
    return path
