"""OCSP throughput: our node against the OpenSSL responder, and nginx serving our exports.

What is measured (DESIGN.md 8: figures beside a baseline measured in the same run):

- one CA (P-256) with ``--certs`` machine certificates, issued by the home; load is nonce-less
  RFC 5019 GET requests with SHA-1 CertIDs, cycling over all certificates, from ``wrk``
  (Debian) with ``--connections`` keep-alive connections for ``--seconds`` seconds;
- every server runs on one core (``taskset -c 0``), wrk on the other (``taskset -c 1``);
- baseline: ``openssl ocsp -index index.txt -port P -rsigner responder.pem -rkey
  responder.key -CA ca.pem -nmin 60 -multi 2 -timeout 1``, serving the same certificates
  with our CA's delegated responder key: it signs every response and answers HTTP/1.0, one
  connection per request. (A single responder process stalls for good on the empty probe
  connection wrk opens first; two worker processes on the same core and a one-second read
  timeout keep it serving.)
- ours: ``trustbridge serve`` (uvicorn + FastAPI, one process), answering from the pre-signed
  responses in its SQLite database;
- ours, static: the pre-signed responses exported by ``trustbridge ocsp export`` and served
  by nginx (Debian ``nginx-light``, one worker process).

Before each run, one request per server is checked: a successful response, status good, from
the responder of our CA. Goals of the issue: the node at least 0.5 times the OpenSSL responder,
nginx with the exports at least 2 times.

Run from the project root: ``python -m bench.ocsp``.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/ocsp.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from bench._common import Record, in_ci, machine_summary, print_table, rate_record, write_results
from bench._homes import DEVICES_CA, bench_environment, devices_home
from trustbridge.home.records import Issued
from trustbridge.node.launcher import free_port, start_node
from trustbridge.node.launcher import running as running_node
from trustbridge.pki.ca import ServiceKind
from trustbridge.pki.keys import KeyType, generate_private_key, hash_for, private_key_pem
from trustbridge.pki.profiles import MachineSubject
from trustbridge.pki.release import Principal

NAME = "ocsp"
NODE_NAME = "bench-ocsp"
ACTOR = Principal("local", "bench", "OCSP benchmark")
#: RFC 5019 clients identify certificates by SHA-1 CertIDs: a name, not a security hash.
SHA1 = hashes.SHA1()  # noqa: S303
GOAL_NODE = 0.5
GOAL_NGINX = 2.0
BASELINE_NAME = (
    "openssl ocsp -index index.txt -port P -rsigner responder.pem -rkey responder.key "
    "-CA ca.pem -nmin 60 -multi 2 -timeout 1 (OpenSSL {version}; signs each response with the "
    "same P-256 delegated responder key; HTTP/1.0, a connection per request), on one core, "
    "same certificates and GET requests, wrk -t1 load from the other core"
)


@dataclass
class Setup:
    work: Path
    home: Path
    http_port: int
    https_port: int
    ca_pem: Path
    root_pem: Path
    responder_pem: Path
    responder_key: Path
    index: Path
    #: Per certificate: the percent-encoded base64 of its OCSP request (the GET path's end).
    encoded: list[str]
    certificate: x509.Certificate  # one of them, for the pre-flight check
    issuer: x509.Certificate


def build(work: Path, count: int) -> Setup:
    http_port, https_port = free_port(), free_port()
    home = devices_home(
        work / "home",
        node_name=NODE_NAME,
        actor=ACTOR,
        http_port=http_port,
        https_port=https_port,
    )
    try:
        certificates = []
        index_lines = []
        for i in range(count):
            key = generate_private_key(KeyType.P256)
            csr = (
                x509.CertificateSigningRequestBuilder()
                .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "d")]))
                .sign(key, hash_for(KeyType.P256))
                .public_bytes(Encoding.PEM)
            )
            result = home.submit_request(
                ca=DEVICES_CA,
                subject=MachineSubject(
                    manufacturer="Bench", model="B-1", serial_number=f"B{i:07d}", country="DE"
                ),
                level="de-basic",
                csr_data=csr,
                enrolment_token=home.create_enrolment_token(organization="Bench"),
            )
            assert isinstance(result, Issued)
            cert = result.certificates[0]
            certificates.append(cert)
            expiry = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
            dn = "/" + "/".join(
                f"{a.rfc4514_attribute_name}={a.value!s}" for a in reversed(list(cert.subject))
            )
            index_lines.append(f"V\t{expiry}\t\t{cert.serial_number:X}\tunknown\t{dn}\n")
        issuer = home.authority(DEVICES_CA).certificate
        responder_cert, responder_signer = home.status.service_certificate(
            DEVICES_CA, ServiceKind.OCSP
        )
        home.status.presign(DEVICES_CA)
        exported = home.status.export_ocsp(work / "export")
        assert exported >= 2 * count, exported
        root = home.chain_of(DEVICES_CA)[-1]
    finally:
        home.close()
    (work / "ca.pem").write_bytes(issuer.public_bytes(Encoding.PEM))
    (work / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    (work / "responder.pem").write_bytes(responder_cert.public_bytes(Encoding.PEM))
    (work / "responder.key").write_bytes(private_key_pem(responder_signer.private_key))
    (work / "index.txt").write_text("".join(index_lines))
    (work / "index.txt.attr").write_text("unique_subject = no\n")
    paths = []
    for cert in certificates:
        der = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert, issuer, SHA1)
            .build()
            .public_bytes(Encoding.DER)
        )
        encoded = base64.b64encode(der).decode()
        quoted = encoded.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        paths.append(quoted)
    return Setup(
        work,
        work / "home",
        http_port,
        https_port,
        work / "ca.pem",
        work / "root.pem",
        work / "responder.pem",
        work / "responder.key",
        work / "index.txt",
        paths,
        certificates[0],
        issuer,
    )


# -- servers -----------------------------------------------------------------------------------


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def _wait_log(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()}")
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server not ready after {timeout} s: {log.read_text()}")


@contextmanager
def running(
    command: Sequence[str],
    port: int,
    *,
    env: dict[str, str] | None = None,
    log: Path,
    ready_line: str | None = None,
    new_session: bool = True,
) -> Iterator[None]:
    """Run a server on core 0 until the block ends.

    ``ready_line``: wait for this line in its log instead of probing the port (the OpenSSL
    responder serves one connection at a time and stalls on an empty probe connection).
    """
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", "0", *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            # Its workers (nginx's) go with it when we stop the group. `openssl ocsp -multi`
            # makes its own process group (and exits if it leads a session already).
            start_new_session=new_session,
        )
    try:
        if ready_line is not None:
            _wait_log(log, ready_line, process)
        else:
            _wait_port(port, process)
        yield
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def openssl_server(setup: Setup, port: int) -> list[str]:
    return [
        "openssl",
        "ocsp",
        "-index",
        str(setup.index),
        "-port",
        str(port),
        "-rsigner",
        str(setup.responder_pem),
        "-rkey",
        str(setup.responder_key),
        "-CA",
        str(setup.ca_pem),
        "-nmin",
        "60",
        "-ignore_err",
        # wrk opens a probe connection that sends nothing; a lone responder waits on it for
        # good. Two worker processes (still on the one core) and a one-second read timeout
        # keep it serving.
        "-multi",
        "2",
        "-timeout",
        "1",
    ]


def nginx_server(setup: Setup, port: int) -> list[str]:
    # nginx workers run unprivileged: the exported tree must be readable by them.
    for folder in (setup.work, setup.work / "export"):
        folder.chmod(0o755)
    for path in (setup.work / "export").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    conf = setup.work / "nginx.conf"
    temp = setup.work / "nginx-tmp"
    temp.mkdir(exist_ok=True)
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {setup.work / "nginx.pid"};
error_log {setup.work / "nginx-error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {temp};
    proxy_temp_path {temp};
    fastcgi_temp_path {temp};
    uwsgi_temp_path {temp};
    scgi_temp_path {temp};
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location {NODE_PREFIX} {{
            alias {setup.work / "export" / DEVICES_CA / "ocsp"}/;
            index index.der;
            default_type application/ocsp-response;
            add_header Cache-Control "max-age=3600, public, no-transform, must-revalidate";
        }}
    }}
}}
"""
    )
    return ["nginx", "-c", str(conf), "-e", str(setup.work / "nginx-error.log")]


#: Where each server expects GET requests: the OpenSSL responder only at the root.
NODE_PREFIX = f"/pki/{DEVICES_CA}/ocsp/"
OPENSSL_PREFIX = "/"


def preflight(url: str, prefix: str, setup: Setup) -> None:
    """One request: must be a successful, good answer signed by our CA's responder."""
    response = httpx.get(url + prefix + setup.encoded[0], timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code}")
    answer = ocsp.load_der_ocsp_response(response.content)
    if answer.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RuntimeError(f"{url}: {answer.response_status}")
    if answer.certificate_status is not ocsp.OCSPCertStatus.GOOD:
        raise RuntimeError(f"{url}: certificate status {answer.certificate_status}")
    if answer.serial_number != setup.certificate.serial_number:
        raise RuntimeError(f"{url}: answer for another certificate")
    responder = answer.certificates[0] if answer.certificates else None
    if responder is None or responder.issuer != setup.issuer.subject:
        raise RuntimeError(f"{url}: not signed by the delegated responder of our CA")


def wrk(url: str, prefix: str, setup: Setup, seconds: int, connections: int) -> float:
    """Requests per second that wrk reports; non-2xx answers abort."""
    paths = setup.work / "paths.txt"
    paths.write_text("".join(f"{prefix}{e}\n" for e in setup.encoded))
    script = setup.work / "cycle.lua"
    script.write_text(
        f"""
local paths = {{}}
for line in io.lines("{paths}") do paths[#paths + 1] = line end
local counter = 0
request = function()
    counter = counter + 1
    return wrk.format("GET", paths[(counter % #paths) + 1])
end
"""
    )
    result = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}\n{result.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise RuntimeError(f"{url}: {bad.group(1)} failed responses under load:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    summary = f"{float(rate.group(1)):,.0f} req/s"
    if errors:
        summary += f" (socket errors: {errors.group(0)[15:]})"
    print(f"  {prefix and url}{prefix}...: {summary}")
    return float(rate.group(1))


def openssl_version() -> str:
    out = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--certs", type=int, default=500, help="certificates of the CA")
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per server")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--no-write", action="store_true", help=f"do not write results/{NAME}.json")
    args = parser.parse_args(argv)

    missing = [tool for tool in ("wrk", "nginx", "taskset", "openssl") if not shutil.which(tool)]
    if missing:
        message = f"ocsp benchmark needs {', '.join(missing)} (run `make bench-setup`)"
        if in_ci():
            raise SystemExit(message)
        print(f"skipped: {message}")
        return 0
    bench_environment()
    print(f"OCSP benchmark, P-256, nonce-less GET; {machine_summary()}")
    with tempfile.TemporaryDirectory(prefix="tb-bench-ocsp-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        setup = build(work, args.certs)
        print(
            f"setup: {args.certs} certificates, responses pre-signed and exported "
            f"in {time.perf_counter() - started:.1f} s"
        )
        rates: dict[str, float] = {}
        port = free_port()
        with running(
            openssl_server(setup, port),
            port,
            log=work / "openssl.log",
            ready_line="ACCEPT",
            new_session=False,
        ):
            url = f"http://127.0.0.1:{port}"
            preflight(url, OPENSSL_PREFIX, setup)
            rates["openssl"] = wrk(url, OPENSSL_PREFIX, setup, args.seconds, args.connections)
        node = start_node(
            setup.home,
            name=NODE_NAME,
            http_url=f"http://127.0.0.1:{setup.http_port}",
            https_url=f"https://127.0.0.1:{setup.https_port}",
            log=work / "node.log",
            extra_args=("--refresh-interval", "3600"),
        )
        os.sched_setaffinity(node.process.pid, {0})  # before it starts a thread: one core
        with running_node(node):
            url = node.http_url
            preflight(url, NODE_PREFIX, setup)
            rates["node"] = wrk(url, NODE_PREFIX, setup, args.seconds, args.connections)
        port = free_port()
        with running(nginx_server(setup, port), port, log=work / "nginx.log"):
            url = f"http://127.0.0.1:{port}"
            preflight(url, NODE_PREFIX, setup)
            rates["nginx"] = wrk(url, NODE_PREFIX, setup, args.seconds, args.connections)

    baseline_name = BASELINE_NAME.format(version=openssl_version())
    records: list[Record] = [
        rate_record(
            metric,
            unit="req/s",
            ours=round(rates[server], 1),
            baseline=round(rates["openssl"], 1),
            baseline_name=baseline_name,
            goal=goal,
        )
        for metric, server, goal in (
            ("ocsp-node", "node", GOAL_NODE),
            ("ocsp-nginx-export", "nginx", GOAL_NGINX),
        )
    ]
    print_table(records, title="OCSP requests per second against the OpenSSL responder")
    if not args.no_write:
        path = write_results(NAME, records)
        print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
