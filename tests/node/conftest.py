"""A node under test: a home built with the Python API, served by `trustbridge serve`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from trustbridge.home import Home, KeySpec
from trustbridge.home.config import SecretSource
from trustbridge.home.records import Issued
from trustbridge.node.launcher import NodeProcess, running_node
from trustbridge.pki.keys import KeyType, generate_private_key, hash_for, private_key_pem
from trustbridge.pki.profiles import MachineSubject, SubjectKind
from trustbridge.trust.reference import GERMANY

PASSPHRASE_ENV = "TB_NODE_TEST_PASSPHRASE"
TB = [sys.executable, "-m", "trustbridge.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    home_path: Path
    work: Path
    http: str
    https: str
    env: dict[str, str]
    process: NodeProcess

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*TB, "--home", str(self.home_path), *args],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if ok:
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        return result


def issue_machine(home: Home, serial: str, work: Path) -> x509.Certificate:
    """A machine identity from a CSR; its key and certificate are written to ``work``."""
    key = generate_private_key(KeyType.P256)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, serial)]))
        .sign(key, hash_for(KeyType.P256))
        .public_bytes(Encoding.PEM)
    )
    token = home.create_enrolment_token(organization="Rheintal")
    result = home.submit_request(
        ca="devices",
        subject=MachineSubject(
            manufacturer="Rheintal", model="RX-1", serial_number=serial, country="DE"
        ),
        level="de-basic",
        csr_data=csr,
        enrolment_token=token,
    )
    assert isinstance(result, Issued)
    cert = result.certificates[0]
    (work / f"{serial}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (work / f"{serial}.key").write_bytes(private_key_pem(key))
    return cert


def build_home(
    path: Path, http_port: int, https_port: int, *, database_url: str | None = None
) -> Home:
    home = Home.init(
        path,
        node_name="rheintal",
        http_port=http_port,
        https_port=https_port,
        database_url=database_url,
    )
    home.create_scheme(GERMANY)
    spec = KeySpec(KeyType.P256, secret=SecretSource(env=PASSPHRASE_ENV))
    home.create_root_ca(
        scheme="de", name="DE Industrial Root CA", slug="de-root", country="DE", key=spec
    )
    home.create_issuing_ca(
        parent="de-root",
        name="Rheintal Device CA",
        slug="devices",
        kinds=[SubjectKind.MACHINE, SubjectKind.SOFTWARE],
        levels=["de-basic", "de-substantial"],
        key=spec,
    )
    return home


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    work = tmp_path_factory.mktemp("node")
    env = {**os.environ, PASSPHRASE_ENV: "node test passphrase"}
    os.environ[PASSPHRASE_ENV] = env[PASSPHRASE_ENV]
    http_port, https_port = free_port(), free_port()
    home = build_home(work / "home", http_port, https_port)
    (work / "root.pem").write_bytes(home.chain_of("de-root")[-1].public_bytes(Encoding.PEM))
    (work / "devices.pem").write_bytes(home.chain_of("devices")[0].public_bytes(Encoding.PEM))
    home.close()
    http, https = f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}"
    with running_node(
        work / "home",
        name="rheintal",
        http_url=http,
        https_url=https,
        log=work / "node.log",
        env=env,
        extra_args=("--refresh-interval", "2"),
    ) as process:
        yield Node(work / "home", work, http, https, env, process)
