"""EST (RFC 7030) on the node's HTTPS listener, driven by curl and openssl."""

from __future__ import annotations

import base64
import ssl
import subprocess
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from tests.homes import decide, issued, new_holder
from tests.tools import openssl
from trustbridge.home import Home
from trustbridge.home.records import RequestInfo
from trustbridge.pki.keys import private_key_pem
from trustbridge.pki.profiles import OrganizationSubject

from .conftest import Node


def _token(node: Node) -> str:
    home = Home.open(node.home_path)
    try:
        return home.create_enrolment_token(organization="Rheintal")
    finally:
        home.close()


def _anchor(node: Node) -> str:
    return str(node.home_path / "tls" / "anchor.pem")


def _p7_certs(body: bytes) -> list[x509.Certificate]:
    return pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))


def est_post(node: Node, work: Path, operation: str, body: str, *auth: str) -> str:
    """POST ``work/BODY`` to the node's EST ``operation`` with curl (RFC 7030 style).

    The answer goes to ``work/out.p7``; returns the HTTP status. ``auth``: curl's ``-u`` or
    ``--cert/--key`` arguments.
    """
    result = subprocess.run(
        [
            "curl", "-s", "-o", "out.p7", "-w", "%{http_code}", "--cacert", _anchor(node),
            "-H", "Content-Type: application/pkcs10", "--data-binary", f"@{body}",
            *auth, f"{node.https}/.well-known/est/{operation}",
        ],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout


def _issued(work: Path) -> x509.Certificate:
    (certificate,) = _p7_certs((work / "out.p7").read_bytes())
    return certificate


def test_cacerts_with_curl(node: Node) -> None:
    result = subprocess.run(
        ["curl", "-sf", "--cacert", _anchor(node), f"{node.https}/.well-known/est/cacerts"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    names = [c.subject.rfc4514_string() for c in _p7_certs(result.stdout)]
    assert any("Rheintal Device CA" in n for n in names)
    assert any("DE Industrial Root CA" in n for n in names)


def _openssl_csr(work: Path, serial: str, name: str = "device") -> None:
    """A P-256 key and a CSR made by `openssl req`: NAME.key, NAME.der and NAME.b64 (base64)."""
    made = openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", f"{name}.key", "-outform", "DER", "-out", f"{name}.der",
        "-subj", f"/C=DE/O=Rheintal/serialNumber={serial}/CN=RX-1 {serial}",
        cwd=work,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (work / f"{name}.b64").write_bytes(base64.encodebytes((work / f"{name}.der").read_bytes()))


def test_simpleenroll_with_openssl_and_curl(node: Node) -> None:
    work = node.work / "est"
    work.mkdir(exist_ok=True)
    _openssl_csr(work, "EST-0001")
    token = _token(node)
    assert est_post(node, work, "simpleenroll", "device.b64", "-u", f"device:{token}") == "200"
    certificate = _issued(work)
    assert certificate.subject.rfc4514_string() == (
        "CN=RX-1 EST-0001,2.5.4.5=EST-0001,O=Rheintal,C=DE"
    )
    # openssl reads the answer as RFC 7030 shows: base64 certs-only PKCS#7.
    (work / "cert.p7.der").write_bytes(base64.b64decode((work / "out.p7").read_bytes()))
    printed = openssl("pkcs7", "-inform", "DER", "-in", "cert.p7.der", "-print_certs", cwd=work)
    assert "EST-0001" in printed.stdout
    # The token is one-time: a second enrolment with it is refused.
    assert est_post(node, work, "simpleenroll", "device.b64", "-u", f"device:{token}") == "401"


def _csr_b64(serial: str, organization: str = "Rheintal") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string(f"CN=RX-1 {serial},2.5.4.5={serial},O={organization},C=DE")
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return base64.encodebytes(csr.public_bytes(Encoding.DER))


def test_est_refusals_name_the_problem(node: Node) -> None:
    context = ssl.create_default_context(cafile=_anchor(node))
    with httpx.Client(verify=context) as client:
        url = f"{node.https}/.well-known/est/simpleenroll"
        missing = client.post(url, content=b"")
        assert missing.status_code == 401
        assert "enrolment token" in missing.json()["detail"]
        assert missing.headers["www-authenticate"].startswith("Basic")
        wrong = client.post(url, content=_csr_b64("EST-0002"), auth=("device", "not-a-token"))
        assert wrong.status_code == 401
        assert "unknown enrolment token" in wrong.json()["detail"]
        foreign = client.post(
            url,
            content=_csr_b64("EST-0003", organization="Sakura"),
            auth=("device", _token(node)),
        )
        assert foreign.status_code == 401
        assert "cannot enrol identities of Sakura" in foreign.json()["detail"]
        garbage = client.post(url, content=b"%%%", auth=("device", _token(node)))
        assert garbage.status_code == 400
        assert "base64 DER PKCS#10" in garbage.json()["detail"]
        assert client.get(f"{node.https}/.well-known/est/nope/cacerts").status_code == 404


def test_simplereenroll_with_the_current_identity_as_client_certificate(node: Node) -> None:
    work = node.work / "reenrol"
    work.mkdir(exist_ok=True)
    _openssl_csr(work, "RE-0001")

    def curl(path: str, *extra: str) -> str:
        return est_post(node, work, path, "device.b64", *extra)

    assert curl("simpleenroll", "-u", f"device:{_token(node)}") == "200"
    first = _issued(work)
    # The client sends its chain: the node's TLS layer knows only the anchors.
    chain = (node.work / "devices.pem").read_bytes()
    (work / "device.pem").write_bytes(first.public_bytes(Encoding.PEM) + chain)

    # Without a client certificate: 401. With it: the same key is renewed.
    assert curl("simplereenroll") == "401"
    assert curl("simplereenroll", "--cert", "device.pem", "--key", "device.key") == "200"
    renewed = _issued(work)
    assert renewed.subject == first.subject
    assert renewed.serial_number != first.serial_number
    assert renewed.public_key() == first.public_key()

    # A new key in the CSR: a rekey, still authenticated by the current identity.
    _openssl_csr(work, "RE-0001", name="device2")
    (work / "device.b64").write_bytes((work / "device2.b64").read_bytes())
    assert curl("simplereenroll", "--cert", "device.pem", "--key", "device.key") == "200"
    rekeyed = _issued(work)
    assert rekeyed.public_key() != first.public_key()

    # Once revoked, the identity cannot re-enrol any more.
    node.cli("revoke", format(first.serial_number, "x"), "--reason", "key-compromise")
    (work / "device.b64").write_bytes(base64.encodebytes((work / "device.der").read_bytes()))
    assert curl("simplereenroll", "--cert", "device.pem", "--key", "device.key") == "401"


def _organization_credential(node: Node, work: Path) -> None:
    """Rheintal's organization identity, released by the officer: its enrolment credential."""
    home = Home.open(node.home_path)
    try:
        holder = new_holder()
        pending = home.submit_request(
            ca="ids",
            subject=OrganizationSubject(name="Rheintal", country="DE", identifier="VATDE-1"),
            level="de-high",
            csr_data=holder.csr(),
        )
        assert isinstance(pending, RequestInfo)
        certificate = issued(decide(home, pending.id, node.officer))
        chain = home.chain_of("ids")[0]
        (work / "org.pem").write_bytes(
            b"".join(c.public_bytes(Encoding.PEM) for c in (certificate, chain))
        )
        (work / "org.key").write_bytes(private_key_pem(holder.key))
    finally:
        home.close()


def test_simpleenroll_with_the_manufacturers_credential_as_client_certificate(
    node: Node,
) -> None:
    work = node.work / "credential"
    work.mkdir(exist_ok=True)
    _organization_credential(node, work)
    (work / "device.b64").write_bytes(_csr_b64("CR-0001"))
    (work / "foreign.b64").write_bytes(_csr_b64("CR-0002", organization="Sakura"))

    def curl(body: str) -> str:
        return est_post(node, work, "simpleenroll", body, "--cert", "org.pem", "--key", "org.key")

    assert curl("device.b64") == "200"
    device = _issued(work)
    assert "CR-0001" in device.subject.rfc4514_string()
    assert curl("foreign.b64") == "401"  # Rheintal's credential cannot enrol Sakura's devices
