"""`trustbridge serve`: CRLs, OCSP and CA certificates over HTTP, checked with openssl."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.tools import openssl

from .conftest import Node, issue, ocsp_check

#: RFC 5019 clients identify certificates by SHA-1 CertIDs: a name, not a security hash.
SHA1 = hashes.SHA1()  # noqa: S303


def _fetch_crl_pem(node: Node, name: str) -> Path:
    response = httpx.get(f"{node.http}/pki/devices/crl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.content)
    path = node.work / name
    path.write_bytes(crl.public_bytes(Encoding.PEM))
    return path


def test_health_on_both_listeners_and_openapi(node: Node) -> None:
    assert httpx.get(f"{node.http}/health").json()["status"] == "ready"
    anchor = str(node.home_path / "tls" / "anchor.pem")
    with httpx.Client(verify=ssl.create_default_context(cafile=anchor)) as client:
        health = client.get(f"{node.https}/health").json()
        assert health["status"] == "ready"
        assert health["cas"] == ["de-root", "ids", "devices", "staff"]
        paths = client.get(f"{node.https}/openapi.json").json()["paths"]
        assert "/api/v1/node" in paths
        # No Swagger or ReDoc page: they would load scripts from a CDN into the UI's origin.
        assert client.get(f"{node.https}/docs").status_code == 404
        assert client.get(f"{node.https}/redoc").status_code == 404


def test_openssl_ocsp_reports_good_then_revoked_with_reason(node: Node) -> None:
    issue(node, "OC-1")
    assert "OC-1.pem: good" in ocsp_check(node, "OC-1")
    node.cli("revoke", _serial(node, "OC-1"), "--reason", "key-compromise")
    out = ocsp_check(node, "OC-1")
    assert "OC-1.pem: revoked" in out
    assert "Reason: keyCompromise" in out


def test_openssl_verify_with_the_served_crl(node: Node) -> None:
    issue(node, "CRL-1")
    chain = node.work / "chain.pem"
    chain.write_bytes((node.work / "devices.pem").read_bytes())
    before = _fetch_crl_pem(node, "before.crl.pem")
    root_crl = node.work / "root.crl.pem"
    root_der = httpx.get(f"{node.http}/pki/de-root/crl").content
    root_crl.write_bytes(x509.load_der_x509_crl(root_der).public_bytes(Encoding.PEM))
    verify = (
        "verify",
        "-crl_check_all",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "chain.pem",
        "-CRLfile",
        root_crl.name,
        "-CRLfile",
    )
    ok = openssl(*verify, before.name, "CRL-1.pem", cwd=node.work)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    _crl_verifies(node, before)

    node.cli("revoke", _serial(node, "CRL-1"), "--reason", "superseded")
    after = _fetch_crl_pem(node, "after.crl.pem")
    _crl_verifies(node, after)
    refused = openssl(*verify, after.name, "CRL-1.pem", cwd=node.work)
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stdout + refused.stderr


def _crl_verifies(node: Node, crl: Path) -> None:
    checked = openssl(
        "crl", "-verify", "-in", crl.name, "-CAfile", "devices.pem", "-noout", cwd=node.work
    )
    assert checked.returncode == 0, checked.stderr
    assert "verify OK" in checked.stderr + checked.stdout
    forged = openssl(
        "crl", "-verify", "-in", crl.name, "-CAfile", "root.pem", "-noout", cwd=node.work
    )
    assert "verify OK" not in forged.stderr + forged.stdout  # signed by devices, not the root


def test_ocsp_get_is_the_cacheable_pre_signed_answer(node: Node) -> None:
    cert = issue(node, "GET-1")
    issuer = x509.load_pem_x509_certificate((node.work / "devices.pem").read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, SHA1).build()
    der = request.public_bytes(Encoding.DER)
    encoded = base64.b64encode(der).decode().replace("/", "%2F").replace("+", "%2B")
    got = httpx.get(f"{node.http}/pki/devices/ocsp/{encoded}")
    posted = httpx.post(
        f"{node.http}/pki/devices/ocsp",
        content=der,
        headers={"content-type": "application/ocsp-request"},
    )
    assert got.status_code == posted.status_code == 200
    assert got.headers["content-type"] == "application/ocsp-response"
    assert got.content == posted.content  # no new signature for a nonce-less request
    assert "max-age=" in got.headers["cache-control"]
    response = ocsp.load_der_ocsp_response(got.content)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_bad_ocsp_requests_are_answered_not_crashed(node: Node) -> None:
    malformed = httpx.post(f"{node.http}/pki/devices/ocsp", content=b"not a request")
    assert malformed.status_code == 200
    assert (
        ocsp.load_der_ocsp_response(malformed.content).response_status
        is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    bad_base64 = httpx.get(f"{node.http}/pki/devices/ocsp/%%%not-base64")
    assert (
        ocsp.load_der_ocsp_response(bad_base64.content).response_status
        is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    cert = x509.load_pem_x509_certificate((node.work / "devices.pem").read_bytes())
    foreign = ocsp.OCSPRequestBuilder().add_certificate(cert, cert, SHA1).build()
    unauthorized = httpx.post(
        f"{node.http}/pki/devices/ocsp", content=foreign.public_bytes(Encoding.DER)
    )
    assert (
        ocsp.load_der_ocsp_response(unauthorized.content).response_status
        is ocsp.OCSPResponseStatus.UNAUTHORIZED
    )
    too_big = httpx.post(f"{node.http}/pki/devices/ocsp", content=b"\x30" * 100_000)
    assert too_big.status_code == 413
    assert httpx.get(f"{node.http}/pki/nope/crl").status_code == 404


def test_ca_certificates_and_p7c_bundles(node: Node) -> None:
    response = httpx.get(f"{node.http}/pki/devices/issuers.p7c")
    assert response.status_code == 200
    (node.work / "devices.p7c").write_bytes(response.content)
    printed = openssl(
        "pkcs7", "-inform", "DER", "-in", "devices.p7c", "-print_certs", "-noout", cwd=node.work
    )
    assert printed.returncode == 0, printed.stderr
    assert "Rheintal Device CA" in printed.stdout
    assert "DE Industrial Root CA" in printed.stdout
    der = httpx.get(f"{node.http}/pki/devices/ca.crt").content
    assert (
        x509.load_der_x509_certificate(der)
        .subject.rfc4514_string()
        .startswith("CN=Rheintal Device CA")
    )


def _serial(node: Node, name: str) -> str:
    cert = x509.load_pem_x509_certificate((node.work / f"{name}.pem").read_bytes())
    return format(cert.serial_number, "x")


def test_openssl_ts_against_the_node_tsa(node: Node) -> None:
    data = node.work / "contract.txt"
    data.write_text("Rahmenvertrag Sakura / Rheintal, Fassung 3\n")
    query = openssl(
        "ts", "-query", "-data", data.name, "-sha256", "-cert", "-out", "req.tsq", cwd=node.work
    )
    assert query.returncode == 0, query.stderr
    reply = httpx.post(
        f"{node.http}/tsa/devices",
        content=(node.work / "req.tsq").read_bytes(),
        headers={"content-type": "application/timestamp-query"},
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/timestamp-reply"
    (node.work / "resp.tsr").write_bytes(reply.content)
    tsa_cert = httpx.get(f"{node.http}/tsa/devices/tsa.crt").content
    tsa = x509.load_der_x509_certificate(tsa_cert)
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    verify = (
        "ts",
        "-verify",
        "-in",
        "resp.tsr",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "devices.pem",
    )
    ok = openssl(*verify, "-data", data.name, cwd=node.work)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Verification: OK" in ok.stdout
    data.write_text("Rahmenvertrag Sakura / Rheintal, Fassung 4\n")
    changed = openssl(*verify, "-data", data.name, cwd=node.work)
    assert changed.returncode != 0


def test_rfc3161_client_and_a_malformed_query(node: Node) -> None:
    from rfc3161_client import (
        TimestampRequestBuilder,
        VerifierBuilder,
        decode_timestamp_response,
    )

    payload = b"sensor HPS-200 lot 42 test report"
    request = TimestampRequestBuilder().data(payload).nonce(nonce=True).build()
    reply = httpx.post(f"{node.http}/tsa", content=request.as_bytes())
    response = decode_timestamp_response(reply.content)
    root = x509.load_pem_x509_certificate((node.work / "root.pem").read_bytes())
    devices = x509.load_pem_x509_certificate((node.work / "devices.pem").read_bytes())
    verifier = (
        VerifierBuilder.from_request(request)
        .add_root_certificate(root)
        .add_intermediate_certificate(devices)
        .build()
    )
    verifier.verify_message(response, payload)

    bad = httpx.post(f"{node.http}/tsa", content=b"no time-stamp query")
    assert bad.status_code == 200
    assert decode_timestamp_response(bad.content).status == 2  # rejection
