"""The ``trustbridge`` command end to end, with ``openssl`` as the independent checker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.softhsm import SoftHsmToken
from tests.tools import openssl, run_cli

PROJECT = Path(__file__).resolve().parents[2]
TB = [sys.executable, "-m", "trustbridge.cli.main"]


class Cli:
    def __init__(self, home: Path, workdir: Path) -> None:
        self.home = home
        self.workdir = workdir
        self.env = {
            **os.environ,
            "TRUSTBRIDGE_HOME": str(home),
            "PP": "pass-phrase-1",
            "COLUMNS": "200",
        }
        self.env.pop("TRUSTBRIDGE_DEBUG", None)

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=self.workdir, env=self.env, ok=ok)


def only(folder: Path, pattern: str = "*.pem") -> Path:
    files = [p for p in folder.glob(pattern) if not p.name.endswith((".chain.pem", ".key.pem"))]
    assert len(files) == 1, files
    return files[0]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    work = tmp_path_factory.mktemp("cli")
    tb = Cli(work / "home", work)
    tb("init", "--name", "rheintal")
    tb(
        "scheme",
        "create",
        "de",
        "--name",
        "Germany",
        "--level",
        "de-basic",
        "--level",
        "de-substantial",
        "--level",
        "de-high",
    )
    tb(
        "ca",
        "create-root",
        "--scheme",
        "de",
        "--name",
        "DE Industrial Root CA",
        "--slug",
        "de-root",
        "--country",
        "DE",
        "--passphrase-env",
        "PP",
    )
    tb(
        "ca",
        "create-issuing",
        "--parent",
        "de-root",
        "--name",
        "Rheintal Identity CA",
        "--slug",
        "ids",
        "--kind",
        "organization",
        "--kind",
        "person",
        "--role",
        "registration-officer",
        "--role",
        "authorized-signatory",
        "--passphrase-env",
        "PP",
    )
    tb(
        "ca",
        "create-issuing",
        "--parent",
        "de-root",
        "--name",
        "Rheintal Device CA",
        "--slug",
        "devices",
        "--kind",
        "machine",
        "--kind",
        "software",
        "--key-type",
        "p384",
        "--passphrase-env",
        "PP",
    )
    tb("key", "create", "--out", "officer.key", "--csr", "officer.csr")
    tb(
        "officer",
        "bootstrap",
        "--ca",
        "ids",
        "--level",
        "de-high",
        "--csr",
        "officer.csr",
        "--given-name",
        "Anna",
        "--surname",
        "Schmidt",
        "--organization",
        "Rheintal Trust Services GmbH",
        "--country",
        "DE",
        "--out",
        "officer",
    )
    tb("ca", "export", "de-root", "--out", "root.pem")
    tb("ca", "export", "ids", "--out", "ids-chain.pem")
    tb("ca", "export", "devices", "--out", "devices-chain.pem")
    return tb


def submit_and_approve(cli: Cli, name: str, *args: str) -> Path:
    cli("key", "create", "--out", f"{name}.key", "--csr", f"{name}.csr")
    submitted = cli("request", "submit", "--csr", f"{name}.csr", *args)
    request_id = re.search(r"[0-9a-f-]{36}", submitted.stdout)
    assert request_id, submitted.stdout
    assert "pending" in submitted.stdout
    cli(
        "request",
        "approve",
        request_id.group(0),
        "--officer-cert",
        str(only(cli.workdir / "officer")),
        "--officer-key",
        "officer.key",
        "--out",
        name,
    )
    return only(cli.workdir / name)


def muster(cli: Cli) -> Path:
    """Muster's organization identity, submitted and approved once per CLI home."""
    if (cli.workdir / "org").exists():
        return only(cli.workdir / "org")
    return submit_and_approve(
        cli,
        "org",
        "--ca", "ids", "--kind", "organization", "--level", "de-high",
        "--organization", "Muster Maschinenbau GmbH", "--country", "DE",
        "--org-id", "VATDE-123456789",
    )  # fmt: skip


def test_organization_identity_verifies_with_openssl(cli: Cli) -> None:
    leaf = muster(cli)
    result = openssl(
        "verify", "-CAfile", "root.pem", "-untrusted", "ids-chain.pem", str(leaf), cwd=cli.workdir
    )
    assert result.returncode == 0, result.stderr
    text = openssl("x509", "-in", str(leaf), "-noout", "-text", cwd=cli.workdir).stdout
    assert "organizationIdentifier = VATDE-123456789" in text
    assert "X509v3 Certificate Policies" in text
    assert "URI:http://127.0.0.1:8080/pki/ids/crl" in text
    assert "OCSP - URI:http://127.0.0.1:8080/pki/ids/ocsp" in text


def test_person_signatory_and_pkcs12_export(cli: Cli) -> None:
    leaf = submit_and_approve(
        cli,
        "signatory",
        "--ca",
        "ids",
        "--kind",
        "person",
        "--level",
        "de-high",
        "--given-name",
        "Klaus",
        "--surname",
        "Weber",
        "--organization",
        "Muster Maschinenbau GmbH",
        "--country",
        "DE",
        "--email",
        "k.weber@muster.example",
        "--role",
        "authorized-signatory",
    )
    text = openssl("x509", "-in", str(leaf), "-noout", "-text", cwd=cli.workdir).stdout
    assert "email:k.weber@muster.example" in text
    assert "GN = Klaus" in text
    serial = leaf.stem
    cli.env["P12PASS"] = "p12-secret"
    cli(
        "cert",
        "export",
        serial,
        "--format",
        "p12",
        "--key",
        "signatory.key",
        "--out",
        "signatory.p12",
        "--p12-passphrase-env",
        "P12PASS",
    )
    opened = openssl(
        "pkcs12", "-in", "signatory.p12", "-nokeys", "-passin", "pass:p12-secret", cwd=cli.workdir
    )
    assert opened.returncode == 0, opened.stderr
    assert "Klaus Weber" in opened.stdout
    assert "Rheintal Identity CA" in opened.stdout


def test_machine_released_by_enrolment_credential_and_batch(cli: Cli) -> None:
    org = muster(cli)
    cli("key", "create", "--out", "m.key", "--csr", "m.csr", "--key-type", "rsa2048")
    cli(
        "request",
        "submit",
        "--ca",
        "devices",
        "--kind",
        "machine",
        "--level",
        "de-substantial",
        "--csr",
        "m.csr",
        "--manufacturer",
        "Muster Maschinenbau GmbH",
        "--model",
        "AM-7",
        "--serial-number",
        "0001",
        "--country",
        "DE",
        "--uri",
        "urn:muster:assembly:AM-7:0001",
        "--dns",
        "am7-0001.plant.example",
        "--ip",
        "10.20.30.40",
        "--ip",
        "fd00::7",
        "--enrol-cert",
        str(org),
        "--enrol-key",
        "org.key",
        "--out",
        "machine",
    )
    leaf = only(cli.workdir / "machine")
    assert (
        openssl(
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "devices-chain.pem",
            str(leaf),
            cwd=cli.workdir,
        ).returncode
        == 0
    )
    text = openssl("x509", "-in", str(leaf), "-noout", "-text", cwd=cli.workdir).stdout
    assert "URI:urn:muster:assembly:AM-7:0001" in text
    assert "DNS:am7-0001.plant.example" in text
    assert "IP Address:10.20.30.40" in text and "IP Address:FD00:0:0:0:0:0:0:7" in text
    assert "Key Encipherment, Data Encipherment" in text
    cli(
        "enrol",
        "batch",
        "--ca",
        "devices",
        "--manufacturer",
        "Muster Maschinenbau GmbH",
        "--model",
        "AM-7",
        "--country",
        "DE",
        "--level",
        "de-basic",
        "--enrol-cert",
        str(org),
        "--enrol-key",
        "org.key",
        "--count",
        "3",
        "--out",
        "batch",
    )
    devices = sorted((cli.workdir / "batch").glob("SN*.pem"))
    assert [d.name for d in devices] == ["SN000001.pem", "SN000002.pem", "SN000003.pem"]
    assert oct(devices[0].stat().st_mode & 0o777) == "0o600"
    assert (
        openssl(
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "devices-chain.pem",
            str(devices[0]),
            cwd=cli.workdir,
        ).returncode
        == 0
    )
    listed = cli("cert", "list", "--kind", "machine").stdout
    assert listed.count("ca-generated") == 3


def org_submit(**options: str) -> tuple[str, ...]:
    """``request submit`` of an organization identity; keyword arguments replace options."""
    values = {
        "ca": "ids",
        "kind": "organization",
        "level": "de-high",
        "csr": "officer.csr",
        "organization": "X",
        "country": "DE",
        "org-id": "VATDE-1",
        **{name.replace("_", "-"): value for name, value in options.items()},
    }
    args: list[str] = ["request", "submit"]
    for name, value in values.items():
        args += [f"--{name}", value]
    return tuple(args)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (org_submit(csr="nothing.csr"), 2, "cannot read CSR nothing.csr"),
        (org_submit(ca="devices"), 3, "does not issue organization"),
        (org_submit(country="Germany"), 2, "not an ISO 3166 two-letter code"),
        (org_submit(org_id="123"), 2, "does not follow ETSI EN 319 412-1"),
        (org_submit(ip="10.0.0.1"), 2, "organization identities carry no DNS names or IP"),
        (
            (
                "request",
                "submit",
                "--ca",
                "ids",
                "--kind",
                "person",
                "--level",
                "de-high",
                "--generate-key",
                "p256",
                "--given-name",
                "A",
                "--surname",
                "B",
                "--organization",
                "X",
                "--country",
                "DE",
            ),
            2,
            "may not generate keys for person",
        ),
        (
            ("key", "create", "--out", "x.key", "--csr", "x.csr", "--key-type", "dsa1024"),
            2,
            "unknown key type 'dsa1024'",
        ),
        (("request", "show", "no-such-request"), 2, "no request 'no-such-request'"),
        (
            ("ca", "create-root", "--scheme", "zz", "--name", "Z Root", "--passphrase-env", "PP"),
            2,
            "no scheme 'zz'",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(
    cli: Cli, args: tuple[str, ...], code: int, message: str
) -> None:
    result = cli(*args, ok=False)
    assert result.returncode == code, result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr


def test_malformed_csr_and_wrong_passphrase(cli: Cli) -> None:
    (cli.workdir / "bad.csr").write_text(
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    )
    requests_before = cli("request", "list").stdout
    result = cli(*org_submit(csr="bad.csr"), ok=False)
    assert result.returncode == 2
    assert "CSR bad.csr is not a readable PKCS#10 request" in " ".join(result.stderr.split())
    cli.env["PP"] = "wrong"
    try:
        cli("key", "create", "--out", "w.key", "--csr", "w.csr")
        result = cli(*org_submit(csr="w.csr"), ok=False)
        assert result.returncode == 4
        assert "wrong passphrase" in result.stderr
    finally:
        cli.env["PP"] = "pass-phrase-1"
    # Neither failure left a request behind.
    assert cli("request", "list").stdout == requests_before


def test_duplicate_request_is_refused(cli: Cli) -> None:
    cli("key", "create", "--out", "d.key", "--csr", "d.csr")
    args = org_submit(csr="d.csr", organization="Dup GmbH", org_id="VATDE-99")
    cli(*args)
    result = cli(*args, ok=False)
    assert result.returncode == 2
    assert "pending already" in result.stderr


def test_help_texts(cli: Cli) -> None:
    for command in ((), ("request",), ("ca",), ("cert",), ("enrol",)):
        result = cli(*command, "--help")
        assert "Usage" in result.stdout


@pytest.mark.softhsm
def test_person_key_generated_in_a_token(cli: Cli, softhsm_token: SoftHsmToken) -> None:
    """A person's key is made in a PKCS#11 token; only its CSR reaches the CA."""
    cli.env["SOFTHSM2_CONF"] = str(softhsm_token.conf)
    cli.env["TOKEN_PIN"] = softhsm_token.pin
    uri = f"pkcs11:token={softhsm_token.label};object=cli-person?module-path={softhsm_token.module}"
    cli("key", "create", "--pkcs11", uri, "--pin-env", "TOKEN_PIN", "--csr", "token-person.csr")
    submitted = cli(
        "request",
        "submit",
        "--csr",
        "token-person.csr",
        "--ca",
        "ids",
        "--kind",
        "person",
        "--level",
        "de-substantial",
        "--given-name",
        "Yuki",
        "--surname",
        "Tanaka",
        "--organization",
        "Muster Maschinenbau GmbH",
        "--country",
        "DE",
    )
    request_id = re.search(r"[0-9a-f-]{36}", submitted.stdout)
    assert request_id
    cli(
        "request",
        "approve",
        request_id.group(0),
        "--officer-cert",
        str(only(cli.workdir / "officer")),
        "--officer-key",
        "officer.key",
        "--out",
        "token-person",
    )
    leaf = only(cli.workdir / "token-person")
    from cryptography import x509

    from trustbridge.pki.pkcs11 import Pkcs11KeyRef, open_signer

    certificate = x509.load_pem_x509_certificate(leaf.read_bytes())
    signer = open_signer(Pkcs11KeyRef.parse(uri), softhsm_token.pin)
    assert certificate.public_key() == signer.public_key
    result = cli("key", "create", "--pkcs11", uri, "--out", "x.key", "--csr", "y.csr", ok=False)
    assert result.returncode == 2
    assert "never leaves the token" in result.stderr
