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

from trustbridge.home import Home, KeySpec
from trustbridge.home.config import SecretSource
from trustbridge.home.records import Issued, RequestInfo
from trustbridge.pki.keys import KeyType, private_key_pem
from trustbridge.pki.profiles import OrganizationSubject, PersonSubject, Role, SubjectKind
from trustbridge.pki.release import Decision, sign_statement
from trustbridge.pki.signers import FileSigner

from .conftest import PASSPHRASE_ENV, Node


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)


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
    made = run(
        "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
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
    enrolled = subprocess.run(
        [
            "curl", "-s", "-o", "cert.p7", "-w", "%{http_code}", "--cacert", _anchor(node),
            "-u", f"device:{token}", "-H", "Content-Type: application/pkcs10",
            "--data-binary", "@device.b64", f"{node.https}/.well-known/est/simpleenroll",
        ],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert enrolled.stdout == "200", enrolled.stdout + enrolled.stderr
    (certificate,) = _p7_certs((work / "cert.p7").read_bytes())
    assert certificate.subject.rfc4514_string() == (
        "CN=RX-1 EST-0001,2.5.4.5=EST-0001,O=Rheintal,C=DE"
    )
    # openssl reads the answer as RFC 7030 shows: base64 certs-only PKCS#7.
    (work / "cert.p7.der").write_bytes(base64.b64decode((work / "cert.p7").read_bytes()))
    printed = run(
        "openssl", "pkcs7", "-inform", "DER", "-in", "cert.p7.der", "-print_certs", cwd=work
    )
    assert "EST-0001" in printed.stdout
    # The token is one-time: a second enrolment with it is refused.
    again = subprocess.run(
        [
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", _anchor(node),
            "-u", f"device:{token}", "--data-binary", "@device.b64",
            f"{node.https}/.well-known/est/simpleenroll",
        ],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert again.stdout == "401"


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
        result = subprocess.run(
            [
                "curl", "-s", "-o", "out.p7", "-w", "%{http_code}", "--cacert", _anchor(node),
                "-H", "Content-Type: application/pkcs10", "--data-binary", "@device.b64",
                *extra, f"{node.https}/.well-known/est/{path}",
            ],
            cwd=work, capture_output=True, text=True, check=False,
        )  # fmt: skip
        return result.stdout

    assert curl("simpleenroll", "-u", f"device:{_token(node)}") == "200"
    (first,) = _p7_certs((work / "out.p7").read_bytes())
    # The client sends its chain: the node's TLS layer knows only the anchors.
    chain = (node.work / "devices.pem").read_bytes()
    (work / "device.pem").write_bytes(first.public_bytes(Encoding.PEM) + chain)

    # Without a client certificate: 401. With it: the same key is renewed.
    assert curl("simplereenroll") == "401"
    assert curl("simplereenroll", "--cert", "device.pem", "--key", "device.key") == "200"
    (renewed,) = _p7_certs((work / "out.p7").read_bytes())
    assert renewed.subject == first.subject
    assert renewed.serial_number != first.serial_number
    assert renewed.public_key() == first.public_key()

    # A new key in the CSR: a rekey, still authenticated by the current identity.
    _openssl_csr(work, "RE-0001", name="device2")
    (work / "device.b64").write_bytes((work / "device2.b64").read_bytes())
    assert curl("simplereenroll", "--cert", "device.pem", "--key", "device.key") == "200"
    (rekeyed,) = _p7_certs((work / "out.p7").read_bytes())
    assert rekeyed.public_key() != first.public_key()

    # Once revoked, the identity cannot re-enrol any more.
    node.cli("revoke", format(first.serial_number, "x"), "--reason", "key-compromise")
    (work / "device.b64").write_bytes(base64.encodebytes((work / "device.der").read_bytes()))
    assert curl("simplereenroll", "--cert", "device.pem", "--key", "device.key") == "401"


def _organization_credential(node: Node, work: Path) -> None:
    """Rheintal's organization identity (released by an officer): its enrolment credential."""
    home = Home.open(node.home_path)
    try:
        spec = KeySpec(KeyType.P256, secret=SecretSource(env=PASSPHRASE_ENV))
        home.create_issuing_ca(
            parent="de-root",
            name="Rheintal Identity CA",
            slug="ids",
            kinds=[SubjectKind.ORGANIZATION, SubjectKind.PERSON],
            roles=[Role.REGISTRATION_OFFICER],
            key=spec,
        )
        officer_key = ec.generate_private_key(ec.SECP256R1())
        officer = home.bootstrap_officer(
            ca="ids",
            subject=PersonSubject(
                given_name="Anna",
                surname="Schmidt",
                country="DE",
                organization="Rheintal",
                roles=frozenset({Role.REGISTRATION_OFFICER}),
            ),
            level="de-high",
            csr_data=_csr_pem(officer_key),
        ).certificates[0]
        org_key = ec.generate_private_key(ec.SECP256R1())
        pending = home.submit_request(
            ca="ids",
            subject=OrganizationSubject(name="Rheintal", country="DE", identifier="VATDE-1"),
            level="de-high",
            csr_data=_csr_pem(org_key),
        )
        assert isinstance(pending, RequestInfo)
        statement = Decision(pending.id, pending.digest, "approve", home.now(), "EST test")
        issued = home.decide(
            pending.id,
            decision=statement,
            signature=sign_statement(statement.payload(), FileSigner(officer_key)),
            officer=officer,
        )
        assert isinstance(issued, Issued)
        chain = issued.certificates[0].public_bytes(Encoding.PEM) + home.chain_of("ids")[
            0
        ].public_bytes(Encoding.PEM)
        (work / "org.pem").write_bytes(chain)
        (work / "org.key").write_bytes(private_key_pem(org_key))
    finally:
        home.close()


def _csr_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name.from_rfc4514_string("CN=holder")
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(Encoding.PEM)


def test_simpleenroll_with_the_manufacturers_credential_as_client_certificate(
    node: Node,
) -> None:
    work = node.work / "credential"
    work.mkdir(exist_ok=True)
    _organization_credential(node, work)
    (work / "device.b64").write_bytes(_csr_b64("CR-0001"))
    (work / "foreign.b64").write_bytes(_csr_b64("CR-0002", organization="Sakura"))

    def curl(body: str) -> str:
        result = subprocess.run(
            [
                "curl", "-s", "-o", "out.p7", "-w", "%{http_code}", "--cacert", _anchor(node),
                "--cert", "org.pem", "--key", "org.key", "--data-binary", f"@{body}",
                f"{node.https}/.well-known/est/simpleenroll",
            ],
            cwd=work, capture_output=True, text=True, check=False,
        )  # fmt: skip
        return result.stdout

    assert curl("device.b64") == "200"
    (device,) = _p7_certs((work / "out.p7").read_bytes())
    assert "CR-0001" in device.subject.rfc4514_string()
    assert curl("foreign.b64") == "401"  # Rheintal's credential cannot enrol Sakura's devices
