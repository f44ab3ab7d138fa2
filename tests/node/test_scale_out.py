"""Scale-out: two `serve` processes of one TSP on one PostgreSQL database.

Both nodes share the home (keys, configuration) and the database, as they would behind a load
balancer. Identities issued through both at once get distinct serials and are all recorded; a
revocation made through one is answered by the other on its very next OCSP query.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from tests.homes import PASSPHRASE, PASSPHRASE_ENV, build_reference_home
from trustbridge.clock import SystemClock
from trustbridge.home import Home
from trustbridge.node.launcher import free_port, running, start_node

pytestmark = pytest.mark.postgres

ISSUER = """
import sys
from pathlib import Path
from tests.homes import PASSPHRASE, PASSPHRASE_ENV, build_reference_home
from trustbridge.clock import SystemClock
from trustbridge.home import Home
sys.path.insert(0, {tests!r})
from node.conftest import issue_machine
home = Home.open(Path({home!r}))
for i in range({count}):
    issue_machine(home, f"{prefix}-{{i:03d}}", Path({work!r}))
home.close()
"""


def _ocsp(url: str, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    response = httpx.post(url, content=request.public_bytes(Encoding.DER), timeout=10)
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    return answer.certificate_status


def test_two_nodes_on_one_database(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    env = {**os.environ}
    home, _ = build_reference_home(
        tmp_path / "home", database_url=postgres_url, clock=SystemClock()
    )
    issuer = home.authority("devices").certificate
    home.close()
    with ExitStack() as stack:
        nodes = []
        for name in ("a", "b"):
            http_port, https_port = free_port(), free_port()
            node = stack.enter_context(
                running(
                    start_node(
                        tmp_path / "home",
                        name="rheintal",
                        http_url=f"http://127.0.0.1:{http_port}",
                        https_url=f"https://127.0.0.1:{https_port}",
                        log=tmp_path / f"node-{name}.log",
                        env=env,
                        extra_args=(
                            "--http-port",
                            str(http_port),
                            "--https-port",
                            str(https_port),
                        ),
                    )
                )
            )
            nodes.append(node.http_url)
        # Two processes issue at once against the same database.
        tests = str(Path(__file__).resolve().parent.parent)
        work = tmp_path / "issued"
        work.mkdir()
        scripts = [
            ISSUER.format(
                tests=tests, home=str(tmp_path / "home"), count=15, prefix=p, work=str(work)
            )
            for p in ("A", "B")
        ]
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda code: subprocess.run(
                        [sys.executable, "-c", code],
                        env=env,
                        capture_output=True,
                        text=True,
                        check=False,
                    ),
                    scripts,
                )
            )
        for result in results:
            assert result.returncode == 0, result.stderr
        certs = [x509.load_pem_x509_certificate(p.read_bytes()) for p in work.glob("*.pem")]
        assert len(certs) == 30
        assert len({c.serial_number for c in certs}) == 30
        home = Home.open(tmp_path / "home")
        try:
            assert len(home.certificates(ca="devices")) == 30
            # Both nodes answer for every certificate; a revocation through one is seen by both.
            victim = certs[0]
            for url in nodes:
                assert _ocsp(f"{url}/pki/devices/ocsp", victim, issuer) is ocsp.OCSPCertStatus.GOOD
            home.status.revoke(format(victim.serial_number, "x"))
        finally:
            home.close()
        for url in nodes:
            assert _ocsp(f"{url}/pki/devices/ocsp", victim, issuer) is ocsp.OCSPCertStatus.REVOKED
            crl = x509.load_der_x509_crl(httpx.get(f"{url}/pki/devices/crl").content)
            assert crl.get_revoked_certificate_by_serial_number(victim.serial_number) is not None
