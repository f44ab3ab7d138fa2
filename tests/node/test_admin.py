"""The signed administrative API on a served node: who may do what, and what is refused."""

from __future__ import annotations

import base64
import json
import ssl
from datetime import UTC, datetime

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from tests.homes import Holder, new_holder
from trustbridge.clock import SystemClock
from trustbridge.errors import AccessDeniedError, AuthenticationError, InputError
from trustbridge.home import Home
from trustbridge.node.client import SignedClient
from trustbridge.node.httpsig import sign_request
from trustbridge.pki.keys import private_key_pem
from trustbridge.pki.profiles import Role
from trustbridge.pki.release import Decision, sign_statement

from .conftest import Node, issue, issue_person, ocsp_check
from .test_httpsig import self_signed


def tls(node: Node) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(node.work / "root.pem"))


def client(node: Node, holder: Holder) -> SignedClient:
    assert holder.certificate is not None
    return SignedClient(
        node.https, signer=holder.signer, chain=[holder.certificate], trust=node.work / "root.pem"
    )


def person(node: Node, roles: frozenset[Role], ca: str, given: str) -> Holder:
    """A person identity of the served home, released by its officer."""
    home = Home.open(node.home_path)
    try:
        return issue_person(home, node.officer, ca, given, "Test", roles)
    finally:
        home.close()


def test_an_unsigned_request_is_refused_and_told_what_to_sign(node: Node) -> None:
    response = httpx.get(f"{node.https}/api/v1/whoami", verify=tls(node))
    assert response.status_code == 401
    assert "carries no trustbridge-chain header" in response.json()["error"]
    assert '"content-digest"' in response.headers["accept-signature"]


def test_whoami_names_the_caller_and_its_roles(node: Node) -> None:
    with client(node, node.officer) as officer, client(node, node.operator) as operator:
        me = officer.request("GET", "/api/v1/whoami")
        assert me["roles"] == ["registration-officer"]
        assert "CN=Anna Schmidt" in me["subject"]
        assert operator.request("GET", "/api/v1/whoami")["roles"] == ["operator"]


def test_operator_submits_and_officer_approves_through_the_cli(node: Node) -> None:
    """`trustbridge remote`: the operator requests, the officer releases; the trail says who."""
    holder = new_holder()
    (node.work / "p.csr").write_bytes(holder.csr())
    (node.work / "subject.json").write_text(
        json.dumps(
            {
                "kind": "person",
                "given_name": "Lena",
                "surname": "Vogel",
                "country": "DE",
                "organization": "Muster Maschinenbau GmbH",
            }
        )
    )
    for who, holder_ in (("operator", node.operator), ("officer", node.officer)):
        assert holder_.certificate is not None
        (node.work / f"{who}.pem").write_bytes(holder_.certificate.public_bytes(Encoding.PEM))
        (node.work / f"{who}.key").write_bytes(private_key_pem(holder_.key))

    def remote(who: str, *args: str, ok: bool = True) -> str:
        result = node.cli(
            "remote",
            "--node",
            node.https,
            "--cert",
            f"{who}.pem",
            "--key",
            f"{who}.key",
            "--trust",
            "root.pem",
            *args,
            ok=ok,
        )
        out = result.stdout + result.stderr
        # Refusals are read as text: undo the terminal's line wrapping.
        return out if ok else " ".join(out.split())

    out = remote(
        "operator", "submit", "--ca", "ids", "--level", "de-high",
        "--subject", "subject.json", "--csr", "p.csr",
    )  # fmt: skip
    assert "pending" in out, out
    request_id = out.split("request ")[1].split()[0]
    pending = json.loads(remote("officer", "requests", "--state", "pending"))
    assert request_id in [r["id"] for r in pending]
    # The officer releases it; the certificate arrives over the API.
    out = remote("officer", "approve", request_id, "--out", "lena")
    assert "released" in out, out
    cert = x509.load_pem_x509_certificate((node.work / "lena" / "cert.pem").read_bytes())
    assert "Lena Vogel" in cert.subject.rfc4514_string()
    assert cert.public_key() == holder.key.public_key()
    # The operator may not decide; the officer may not read the audit trail.
    refused = remote("operator", "reject", request_id, "--reason", "x", ok=False)
    assert "may not decide on requests" in refused and "registration-officer role" in refused
    refused = remote("officer", "audit", ok=False)
    assert "needs the operator role" in refused
    actors = {
        e["action"]: e["actor_display"]
        for object_id in (request_id, format(cert.serial_number, "x"))
        for e in json.loads(remote("operator", "audit", "--object", object_id))
    }
    assert "Otto Betrieb" in actors["request.submit"]
    assert "Anna Schmidt" in actors["certificate.issue"]


def test_revocation_through_the_api_reaches_ocsp_and_the_crl(node: Node) -> None:
    cert = issue(node, "ADM-1")
    serial = format(cert.serial_number, "x")
    with client(node, node.operator) as operator:
        info = operator.request(
            "POST",
            f"/api/v1/certificates/{serial}/revoke",
            body={"reason": "key-compromise", "compromise_date": "2026-01-02T03:04:05+00:00"},
        )
        assert info["status"] == "revoked" and info["revocation_reason"] == "key-compromise"
        with pytest.raises(InputError, match="is revoked already"):
            operator.request("POST", f"/api/v1/certificates/{serial}/revoke", body={})
    assert "ADM-1.pem: revoked" in ocsp_check(node, "ADM-1")
    crl = x509.load_der_x509_crl(httpx.get(f"{node.http}/pki/devices/crl").content)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    home = Home.open(node.home_path)
    try:
        actors = {e.action: e.actor_display for e in home.audit_events(object_id=serial)}
    finally:
        home.close()
    assert "Otto Betrieb" in actors["certificate.revoke"]


def test_callers_without_the_role_change_nothing(node: Node) -> None:
    cert = issue(node, "ADM-2")
    serial = format(cert.serial_number, "x")
    signatory = person(node, frozenset({Role.AUTHORIZED_SIGNATORY}), "ids", "Sina")
    with client(node, signatory) as c, pytest.raises(AccessDeniedError, match="may not revoke"):
        c.request("POST", f"/api/v1/certificates/{serial}/revoke", body={})
    machine = Holder(key=_key(node, "ADM-2"), certificate=cert)
    with client(node, machine) as c, pytest.raises(AccessDeniedError, match="may not suspend"):
        c.request("POST", f"/api/v1/certificates/{serial}/suspend")
    with client(node, node.officer) as c, pytest.raises(AccessDeniedError, match="issue CRLs"):
        c.request("POST", "/api/v1/cas/devices/crls")
    assert "ADM-2.pem: good" in ocsp_check(node, "ADM-2")


def _key(node: Node, serial: str) -> ec.EllipticCurvePrivateKey:
    key = load_pem_private_key((node.work / f"{serial}.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def test_an_identity_of_another_pki_is_not_trusted(node: Node) -> None:
    """Same name as the officer, own key, self-signed: the signature verifies, the path fails."""
    impostor = new_holder()
    assert node.officer.certificate is not None
    impostor.certificate = self_signed(impostor.key, "Anna Schmidt")
    with (
        client(node, impostor) as c,
        pytest.raises(AuthenticationError, match="not an identity this node trusts"),
    ):
        c.request("GET", "/api/v1/whoami")


def test_a_replayed_request_is_refused(node: Node) -> None:
    assert node.operator.certificate is not None
    url = f"{node.https}/api/v1/cas/devices/crls"
    headers = sign_request(
        method="POST",
        url=url,
        body=b"",
        signer=node.operator.signer,
        chain=[node.operator.certificate],
        at=datetime.now(UTC),
    )
    verify = tls(node)
    first = httpx.post(url, headers=headers, verify=verify)
    assert first.status_code == 200, first.text
    again = httpx.post(url, headers=headers, verify=verify)
    assert again.status_code == 401 and "replayed" in again.json()["error"]


def test_a_revoked_operator_is_locked_out_at_once(node: Node) -> None:
    second = person(node, frozenset({Role.OPERATOR}), "staff", "Olga")
    assert second.certificate is not None
    with client(node, second) as c:
        assert c.request("GET", "/api/v1/whoami")["roles"] == ["operator"]
        with client(node, node.operator) as operator:
            serial = format(second.certificate.serial_number, "x")
            operator.request(
                "POST", f"/api/v1/certificates/{serial}/revoke", body={"reason": "superseded"}
            )
        with pytest.raises(AuthenticationError, match="is revoked"):
            c.request("GET", "/api/v1/whoami")


def test_four_eyes_hold_over_the_api(node: Node) -> None:
    holder = new_holder()
    with client(node, node.officer) as officer:
        outcome = officer.request(
            "POST",
            "/api/v1/requests",
            body={
                "ca": "ids",
                "level": "de-high",
                "subject": {
                    "kind": "person",
                    "given_name": "Eva",
                    "surname": "Eigen",
                    "country": "DE",
                    "organization": "Rheintal Trust Services GmbH",
                },
                "csr": holder.csr().decode(),
            },
        )
        request_id = outcome["request"]["id"]
        assert outcome["request"]["state"] == "pending"
        with pytest.raises(InputError, match="four-eyes"):
            _approve(officer, node.officer, request_id)


def _approve(c: SignedClient, officer: Holder, request_id: str) -> object:
    info = c.request("GET", f"/api/v1/requests/{request_id}")
    statement = Decision(request_id, info["digest"], "approve", SystemClock().now())
    payload = statement.payload()
    return c.request(
        "POST",
        f"/api/v1/requests/{request_id}/decision",
        body={
            "statement": base64.b64encode(payload).decode(),
            "signature": base64.b64encode(sign_statement(payload, officer.signer)).decode(),
        },
    )


def test_bad_bodies_get_a_schema_error_after_authentication(node: Node) -> None:
    with client(node, node.operator) as operator:
        with pytest.raises(InputError, match="csr: Field required"):
            operator.request(
                "POST", "/api/v1/requests", body={"ca": "ids", "level": "x", "subject": {}}
            )
        with pytest.raises(InputError, match="unknown revocation reason 'stolen'"):
            operator.request("POST", "/api/v1/certificates/1/revoke", body={"reason": "stolen"})


def test_openapi_documents_the_signed_api(node: Node) -> None:
    spec = httpx.get(f"{node.https}/openapi.json", verify=tls(node)).json()
    revoke = spec["paths"]["/api/v1/certificates/{serial}/revoke"]["post"]
    schema = revoke["requestBody"]["content"]["application/json"]["schema"]
    assert "reason" in schema["properties"]
    assert "/api/v1/requests/{request_id}/decision" in spec["paths"]
