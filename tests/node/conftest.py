"""A node under test: the reference home (tests/homes.py) served by `trustbridge serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.homes import (
    PASSPHRASE,
    PASSPHRASE_ENV,
    Holder,
    build_reference_home,
    decide,
    issued,
    new_holder,
)
from tests.tools import openssl, run_cli
from trustbridge.clock import SystemClock
from trustbridge.home import Home, KeySpec
from trustbridge.home.config import SecretSource
from trustbridge.home.records import Issued, RequestInfo
from trustbridge.node.launcher import NodeProcess, free_port, running, start_node
from trustbridge.pki.keys import KeyType, generate_private_key, hash_for, private_key_pem
from trustbridge.pki.profiles import MachineSubject, PersonSubject, Role, SubjectKind

TB = [sys.executable, "-m", "trustbridge.cli.main"]


@dataclass
class Node:
    home_path: Path
    work: Path
    http: str
    https: str
    env: dict[str, str]
    process: NodeProcess
    #: The home's registration officer (its key and certificate).
    officer: Holder
    #: An operator of the node, issued by the staff CA.
    operator: Holder

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli("--home", str(self.home_path), *args, cwd=self.work, env=self.env, ok=ok)


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


def issue_operator(home: Home, officer: Holder) -> Holder:
    """A staff CA for the node's operators, and one operator, released by the officer."""
    home.create_issuing_ca(
        parent="de-root",
        name="Rheintal Staff CA",
        slug="staff",
        kinds=[SubjectKind.PERSON],
        roles=[Role.OPERATOR],
        key=KeySpec(KeyType.P256, secret=SecretSource(env=PASSPHRASE_ENV)),
    )
    return issue_person(home, officer, "staff", "Otto", "Betrieb", frozenset({Role.OPERATOR}))


def issue_person(
    home: Home, officer: Holder, ca: str, given: str, surname: str, roles: frozenset[Role]
) -> Holder:
    """A person identity of the home with ``roles``, released by the officer's decision."""
    holder = new_holder()
    pending = home.submit_request(
        ca=ca,
        subject=PersonSubject(
            given_name=given,
            surname=surname,
            country="DE",
            organization="Rheintal Trust Services GmbH",
            roles=roles,
        ),
        level="de-high",
        csr_data=holder.csr(),
    )
    assert isinstance(pending, RequestInfo)
    holder.certificate = issued(decide(home, pending.id, officer))
    return holder


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    work = tmp_path_factory.mktemp("node")
    os.environ[PASSPHRASE_ENV] = PASSPHRASE
    env = {**os.environ}
    http_port, https_port = free_port(), free_port()
    home, officer = build_reference_home(
        work / "home", clock=SystemClock(), http_port=http_port, https_port=https_port
    )
    operator = issue_operator(home, officer)
    (work / "root.pem").write_bytes(home.chain_of("de-root")[-1].public_bytes(Encoding.PEM))
    (work / "devices.pem").write_bytes(home.chain_of("devices")[0].public_bytes(Encoding.PEM))
    home.close()
    http, https = f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}"
    with running(
        start_node(
            work / "home",
            name="rheintal",
            http_url=http,
            https_url=https,
            log=work / "node.log",
            env=env,
            extra_args=("--refresh-interval", "2"),
        )
    ) as process:
        yield Node(work / "home", work, http, https, env, process, officer, operator)


def issue(node: Node, serial: str) -> x509.Certificate:
    """A machine identity issued by the served home (its files in the node's work folder)."""
    home = Home.open(node.home_path)
    try:
        return issue_machine(home, serial, node.work)
    finally:
        home.close()


def ocsp_check(node: Node, serial: str) -> str:
    """``openssl ocsp`` against the node for a machine ``issue`` made; its report."""
    result = openssl(
        "ocsp",
        "-issuer",
        "devices.pem",
        "-cert",
        f"{serial}.pem",
        "-url",
        f"{node.http}/pki/devices/ocsp",
        "-CAfile",
        "root.pem",
        cwd=node.work,
    )
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr, result.stderr
    return result.stdout
