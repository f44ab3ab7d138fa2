"""A reference home (scheme, root, two issuing CAs, an officer), built once and copied per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from tests.homes import NOW, PASSPHRASE, PASSPHRASE_ENV, Holder, build_reference_home
from trustbridge.clock import FixedClock
from trustbridge.home import Home


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)


@pytest.fixture(scope="session")
def reference_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The reference home on SQLite, built once; tests get copies."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSPHRASE_ENV, PASSPHRASE)
        path = tmp_path_factory.mktemp("template") / "home"
        home, officer = build_reference_home(path)
        home.close()
    assert officer.certificate is not None
    from trustbridge.pki.keys import private_key_pem

    return path, private_key_pem(officer.key) + officer.certificate.public_bytes(Encoding.PEM)


@dataclass
class Reference:
    home: Home
    officer: Holder


@pytest.fixture
def ref(reference_template: tuple[Path, bytes], tmp_path: Path) -> Iterator[Reference]:
    """A private copy of the reference home, opened with the pinned clock."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    source, officer_pem = reference_template
    target = tmp_path / "home"
    shutil.copytree(source, target)
    home = Home.open(target, clock=FixedClock(NOW))
    key = load_pem_private_key(officer_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    officer = Holder(key, x509.load_pem_x509_certificate(officer_pem))
    yield Reference(home, officer)
    home.close()
