"""The joint demonstrator end to end: its output folder, checked with independent tools."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from rich.console import Console

from tests.tools import openssl, openssl_verify_policy
from trustbridge import oids
from trustbridge.demo.manifest import (
    REFERENCE_LEVELS,
    IdentityEntry,
    Manifest,
    read_manifest,
)
from trustbridge.demo.scenario import PASSPHRASE_FILE, _prepare, run_demo
from trustbridge.errors import InputError, ValidationError
from trustbridge.home import Home
from trustbridge.pki.profiles import Role, roles_of, subject_kind_of
from trustbridge.trust.reference import REFERENCE_SCHEMES
from trustbridge.trust.validation import RevocationMode, ValidationParams, validate_path

from .conftest import demo_port_base

LEVEL_OIDS = {level.name: level.oid for scheme in REFERENCE_SCHEMES for level in scheme.levels}
KINDS = ("organization", "person", "machine", "software")
NOT_BUILT_YET: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def manifest(demo_out: Path) -> Manifest:
    return read_manifest(demo_out)


def _certificate(out: Path, path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((out / path).read_bytes())


def _identities(manifest: Manifest) -> Iterator[IdentityEntry]:
    yield from manifest["identities"]


def _openssl_verify(out: Path, identity: IdentityEntry, policy: str, bundle: Path) -> str:
    """``openssl verify`` with RFC 5280 policy processing; returns its combined output."""
    result = openssl_verify_policy(
        anchor=out / identity["anchor"],
        untrusted=[out / p for p in identity["chain"]],
        leaf=out / identity["certificate"],
        policy=policy,
        work=bundle.parent,
    )
    return result.stdout + result.stderr


# -- the manifest --------------------------------------------------------------------------


def test_manifest_names_what_exists_and_only_that(demo_out: Path, manifest: Manifest) -> None:
    assert manifest["version"] == 1
    assert manifest["reference_levels"] == list(REFERENCE_LEVELS)
    assert [s["code"] for s in manifest["schemes"]] == ["de", "jp"]
    assert manifest["schemes"][0]["levels"] == ["de-basic", "de-substantial", "de-high"]
    assert manifest["schemes"][1]["levels"] == ["jp-level1", "jp-level2", "jp-level3"]
    for scheme in manifest["schemes"]:
        assert scheme["root"] == f"artifacts/{scheme['code']}/root.pem"
        assert scheme["trust_list"] == f"artifacts/{scheme['code']}/trust-list.jws"
        root = _certificate(demo_out, scheme["root"])
        assert root.subject == root.issuer
    for key in NOT_BUILT_YET:
        assert key not in manifest
    assert manifest["report"] == "report.html"
    paths = [s["root"] for s in manifest["schemes"]]
    paths += [ca["certificate"] for ca in manifest["cas"]]
    for identity in _identities(manifest):
        paths += [identity["certificate"], identity["chain_file"], identity["anchor"]]
        paths += [*identity["chain"], identity["key"]]
        assert identity["node"] in {"rheintal", "sakura"}
        assert identity["level"] in LEVEL_OIDS
    for path in [*paths, manifest["report"]]:
        assert not Path(path).is_absolute()
        assert (demo_out / path).is_file(), path
    for node in manifest["nodes"]:
        assert (demo_out / node["home"] / "config.toml").is_file()


def test_steps_say_what_is_built(manifest: Manifest) -> None:
    status = {s["step"]: s["status"] for s in manifest["steps"]}
    assert status == {
        1: "done",
        2: "done",
        3: "done",
        **dict.fromkeys(range(4, 11), "done"),
    }
    for step in manifest["steps"]:
        assert step["seconds"] >= 0
        assert step["status"] == "done" or step.get("note")


def test_the_customer_read_test_results_over_opc_ua_across_the_border(
    demo_out: Path, manifest: Manifest
) -> None:
    opcua = manifest["opcua"]
    assert opcua["endpoint"].startswith("opc.tcp://127.0.0.1:")
    assert opcua["security_mode"] == "SignAndEncrypt"
    assert set(opcua["policies"]) == {"Basic256Sha256", "Aes256_Sha256_RsaPss"}
    # Each side resolved the other with its own node's resolver, across the border.
    assert opcua["server"]["node"] == "hayabusa"
    assert opcua["client"]["node"] == "muster"
    assert opcua["server"]["route"] in ("bridge", "trust-list")
    assert opcua["client"]["route"] in ("bridge", "trust-list")
    for side in ("server", "client"):
        certificate = _certificate(demo_out, opcua[side]["certificate"])
        assert certificate.public_key().key_size >= 2048  # type: ignore[union-attr]
        uris = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.UniformResourceIdentifier)
        assert opcua[side]["application_uri"] in uris
    read = json.loads((demo_out / opcua["file"]).read_text())
    assert opcua["read"]["serial"].startswith("HPS200-")
    assert opcua["read"]["serial"] in json.dumps(read)
    # Three clients turned away, each with its reason.
    refused = opcua["refused"]
    assert len(refused) == 3
    assert all(r["reason"] and r["status"] for r in refused)
    assert any(opcua["client"]["identity"] == r["client"] for r in refused)  # the wrong URI


def test_a_person_read_at_the_station_under_the_contract_the_client_alone_did_not(
    demo_out: Path, manifest: Manifest
) -> None:
    opcua = manifest["opcua"]
    user = opcua["user"]
    # Muster's operator: an RSA person identity with the operator role in the certificate.
    certificate = _certificate(demo_out, user["certificate"])
    assert certificate.public_key().key_size >= 2048  # type: ignore[union-attr]
    assert user["roles"] == ["operator"]
    assert roles_of(certificate) == frozenset({Role.OPERATOR})
    assert user["node"] == "muster"
    assert user["route"] in ("bridge", "trust-list")
    assert user["reference_level"] == "itg/itg-loa3"
    access = opcua["access"]
    assert access["contract"] == manifest["contract"]["id"]
    decisions = access["decisions"]
    # One decision per session: the operator's in both policies, then the client alone.
    assert [d["person"] for d in decisions] == [True, True, False]
    assert [d["decision"] for d in decisions] == ["allow", "allow", "deny"]
    assert decisions[0]["policies"] == ["operator-reads-test-reports"]
    assert decisions[0]["user"] == user["identity"]
    assert decisions[2]["user"] == opcua["client"]["identity"]
    # The operator acted through Muster's client application; the client alone through none.
    assert [d["via"] is not None for d in decisions] == [True, True, False]
    assert decisions[0]["via"].startswith('Trustbridge::System::"urn:trustbridge:software:')
    assert all(d["serial"] == opcua["read"]["serial"] for d in decisions)


def test_nodes_have_distinct_ports(manifest: Manifest) -> None:
    nodes = {n["node"]: n for n in manifest["nodes"]}
    assert set(nodes) == {
        "de-scheme",
        "rheintal",
        "jp-scheme",
        "sakura",
        "itg-group",
        "dejp-bridge",
        "nordsee",
        "fuji",
        "muster",
        "hayabusa",
    }
    urls = [n["http_url"] for n in nodes.values()]
    urls += [n["https_url"] for n in nodes.values() if "https_url" in n]
    # Scheme operators, TSPs, group and bridge have CAs and an HTTPS API; the companies serve
    # their partner API over HTTPS with their node's TLS identity; bodies publish over HTTP only.
    assert len(set(urls)) == 18
    assert "https_url" in nodes["muster"] and "https_url" not in nodes["nordsee"]
    assert all(u.startswith(("http://127.0.0.1:", "https://127.0.0.1:")) for u in urls)


# -- identities, checked independently ------------------------------------------------------


def test_every_chain_verifies_with_openssl_at_its_level(
    demo_out: Path, manifest: Manifest, tmp_path: Path
) -> None:
    for identity in _identities(manifest):
        bundle = tmp_path / "untrusted.pem"
        output = _openssl_verify(
            demo_out, identity, LEVEL_OIDS[identity["level"]].dotted_string, bundle
        )
        assert output.strip().endswith(": OK"), f"{identity['holder']}: {output}"
        assert (demo_out / identity["chain_file"]).read_bytes() == bundle.read_bytes()


def test_openssl_refuses_a_higher_level_than_issued(
    demo_out: Path, manifest: Manifest, tmp_path: Path
) -> None:
    machine = next(i for i in _identities(manifest) if i["holder"] == "AM-7 0001")
    assert machine["level"] == "de-substantial"
    output = _openssl_verify(demo_out, machine, oids.DE_HIGH.dotted_string, tmp_path / "u.pem")
    assert "no explicit policy" in output


def test_certificates_carry_their_level_policy(demo_out: Path, manifest: Manifest) -> None:
    for identity in _identities(manifest):
        certificate = _certificate(demo_out, identity["certificate"])
        policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
        assert LEVEL_OIDS[identity["level"]] in {p.policy_identifier for p in policies}
        assert subject_kind_of(certificate) == identity["kind"]


def test_both_schemes_have_all_four_kinds(manifest: Manifest) -> None:
    for scheme in ("de", "jp"):
        kinds = {i["kind"] for i in _identities(manifest) if i["scheme"] == scheme}
        assert kinds == set(KINDS), scheme
        for entry in _identities(manifest):
            if entry["scheme"] == scheme:
                assert entry["anchor"] == f"artifacts/{scheme}/root.pem"


def test_companies_and_signatories(demo_out: Path, manifest: Manifest) -> None:
    by_holder = {(i["holder"], i["purpose"]): i for i in _identities(manifest)}
    for company, level in (
        ("Muster Maschinenbau GmbH", "de-high"),
        ("Hayabusa Sensor Components K.K.", "jp-level3"),
    ):
        assert by_holder[(company, "identity")]["level"] == level
        agreement = by_holder[(company, "key-agreement")]
        certificate = _certificate(demo_out, agreement["certificate"])
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_agreement
        assert not usage.digital_signature
        public_key = certificate.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        assert isinstance(public_key.curve, ec.SECP256R1)
    for signatory, organization in (
        ("Klaus Weber", "Muster Maschinenbau GmbH"),
        ("Yuki Tanaka", "Hayabusa Sensor Components K.K."),
    ):
        entry = by_holder[(signatory, "identity")]
        assert entry["roles"] == ["authorized-signatory"]
        certificate = _certificate(demo_out, entry["certificate"])
        assert Role.AUTHORIZED_SIGNATORY in roles_of(certificate)
        names = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        assert names[0].value == organization
    for officer in ("Anna Schmidt", "Haruto Sato"):
        certificate = _certificate(demo_out, by_holder[(officer, "identity")]["certificate"])
        assert roles_of(certificate) == {Role.REGISTRATION_OFFICER}


def test_assembly_machine_is_an_opc_ua_application(demo_out: Path, manifest: Manifest) -> None:
    machine = next(i for i in _identities(manifest) if i["holder"] == "AM-7 0001")
    certificate = _certificate(demo_out, machine["certificate"])
    assert certificate.public_key().key_size == 2048  # type: ignore[union-attr]
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["urn:muster:assembly:AM-7:0001"]
    assert machine["key_origin"] == "holder"


def test_sensor_batch(demo_out: Path, manifest: Manifest) -> None:
    sensors = [i for i in _identities(manifest) if i.get("batch") == "HPS-200"]
    assert len(sensors) == 5
    for sensor in sensors:
        assert (sensor["kind"], sensor["scheme"], sensor["node"]) == ("machine", "jp", "sakura")
        assert sensor["key_origin"] == "ca-generated"
        certificate = _certificate(demo_out, sensor["certificate"])
        serial = certificate.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)[0].value
        assert isinstance(serial, str)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.UniformResourceIdentifier) == [
            f"urn:hayabusa:hps-200:{serial}"
        ]
    assert len({s["serial"] for s in sensors}) == 5


def test_holder_keys_belong_to_their_certificates(demo_out: Path, manifest: Manifest) -> None:
    for identity in _identities(manifest):
        key_path = demo_out / identity["key"]
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600, key_path
        key = load_pem_private_key(key_path.read_bytes(), password=None)
        certificate = _certificate(demo_out, identity["certificate"])
        assert key.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        ) == certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scheme", ["de", "jp"])
def test_validate_path_at_the_issued_level(
    demo_out: Path, manifest: Manifest, kind: str, scheme: str
) -> None:
    identity = next(i for i in _identities(manifest) if i["kind"] == kind and i["scheme"] == scheme)
    level = LEVEL_OIDS[identity["level"]].dotted_string
    path = validate_path(
        _certificate(demo_out, identity["certificate"]),
        intermediates=[_certificate(demo_out, p) for p in identity["chain"]],
        anchors=[_certificate(demo_out, identity["anchor"])],
        params=ValidationParams(
            at=datetime.now(UTC),
            acceptable_policies=frozenset({level}),
            # The demo's nodes are stopped after the run: nothing to ask for revocation.
            revocation=RevocationMode.UNSAFE_SOFT_FAIL,
        ),
    )
    assert level in path.user_policies
    assert len(path.certificates) == 2 + len(identity["chain"])


def test_a_device_does_not_validate_at_a_higher_level(demo_out: Path, manifest: Manifest) -> None:
    software = next(
        i for i in _identities(manifest) if i["kind"] == "software" and i["scheme"] == "jp"
    )
    assert software["level"] == "jp-level2"
    with pytest.raises(ValidationError, match="does not validate"):
        validate_path(
            _certificate(demo_out, software["certificate"]),
            intermediates=[_certificate(demo_out, p) for p in software["chain"]],
            anchors=[_certificate(demo_out, software["anchor"])],
            params=ValidationParams(
                at=datetime.now(UTC),
                acceptable_policies=frozenset({oids.JP_LEVEL3.dotted_string}),
                revocation=RevocationMode.UNSAFE_SOFT_FAIL,
            ),
        )


# -- revocation, CRLs, OCSP, TSA (step 9) ------------------------------------------------


def test_the_revoked_sensor_is_on_its_crl_and_openssl_refuses_it(
    demo_out: Path, manifest: Manifest, tmp_path: Path
) -> None:
    (revocation,) = manifest["revocations"]
    assert revocation["reason"] == "key-compromise"
    assert revocation["ocsp_status"] == "revoked"
    sensor = next(i for i in _identities(manifest) if i["certificate"] == revocation["certificate"])
    assert sensor["kind"] == "machine"
    assert sensor.get("batch") == "HPS-200"
    crl_entry = next(
        c
        for c in manifest["crls"]
        if c["node"] == sensor["node"] and c["url"].endswith(f"/pki/{sensor['ca']}/crl")
    )
    crl = x509.load_der_x509_crl((demo_out / crl_entry["file"]).read_bytes())
    assert crl_entry["entries"] == len(crl) >= 1
    revoked = crl.get_revoked_certificate_by_serial_number(int(sensor["serial"], 16))
    assert revoked is not None
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise

    (tmp_path / "sensor.crl.pem").write_bytes(crl.public_bytes(Encoding.PEM))
    issuing = _certificate(demo_out, sensor["chain"][0])
    (tmp_path / "issuing.pem").write_bytes(issuing.public_bytes(Encoding.PEM))
    verified = openssl(
        "crl", "-verify", "-in", "sensor.crl.pem", "-CAfile", "issuing.pem", "-noout", cwd=tmp_path
    )
    assert "verify OK" in verified.stdout + verified.stderr, verified.stderr
    bundle = tmp_path / "chain.pem"
    bundle.write_bytes(b"".join((demo_out / p).read_bytes() for p in sensor["chain"]))

    def verify_with_crl(identity: IdentityEntry) -> subprocess.CompletedProcess[str]:
        return openssl(
            "verify", "-crl_check", "-CRLfile", "sensor.crl.pem",
            "-CAfile", str(demo_out / identity["anchor"]), "-untrusted", str(bundle),
            str(demo_out / identity["certificate"]),
            cwd=tmp_path,
        )  # fmt: skip

    refused = verify_with_crl(sensor)
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stdout + refused.stderr
    # Another sensor of the same batch passes the same check.
    other = next(
        i
        for i in _identities(manifest)
        if i.get("batch") == "HPS-200" and i["serial"] != sensor["serial"]
    )
    accepted = verify_with_crl(other)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def test_every_ca_has_its_crl_and_ocsp_url(demo_out: Path, manifest: Manifest) -> None:
    assert {c["issuer"] for c in manifest["crls"]} == {c["issuer"] for c in manifest["ocsp"]}
    # Two national roots, the group CA, the bridge CA, and the CAs below the roots.
    assert len(manifest["crls"]) == 4 + len(manifest["cas"])
    nodes = {n["node"]: n["http_url"] for n in manifest["nodes"]}
    for entry in [*manifest["crls"], *manifest["ocsp"]]:
        assert entry["url"].startswith(nodes[entry["node"]] + "/pki/")
    for entry in manifest["crls"]:
        x509.load_der_x509_crl((demo_out / entry["file"]).read_bytes())


def test_the_tsa_token_verifies_with_openssl(demo_out: Path, manifest: Manifest) -> None:
    (tsa,) = manifest["tsa"]
    assert tsa["node"] == "sakura"
    tsa_cert = _certificate(demo_out, tsa["certificate"])
    eku = tsa_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    anchor = next(s["root"] for s in manifest["schemes"] if s["code"] == "jp")
    issuer = next(
        c["certificate"]
        for c in manifest["cas"]
        if _certificate(demo_out, c["certificate"]).subject == tsa_cert.issuer
    )
    result = openssl(
        "ts",
        "-verify",
        "-data",
        tsa["data"],
        "-in",
        tsa["token"],
        "-CAfile",
        anchor,
        "-untrusted",
        issuer,
        cwd=demo_out,
    )
    assert "Verification: OK" in result.stdout, result.stdout + result.stderr


def test_the_nodes_are_stopped_after_the_run(manifest: Manifest) -> None:
    for node in manifest["nodes"]:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{node['http_url']}/health", timeout=2)


# -- nodes and report -----------------------------------------------------------------------


def test_nodes_open_unattended_with_their_demo_passphrases(
    demo_out: Path, manifest: Manifest
) -> None:
    """The homes name their passphrase file, so `serve` can start them without a prompt."""
    home = Home.open(demo_out / "nodes" / "rheintal", prompt=None)
    try:
        assert set(home.config.secrets) == {"rheintal-identity-ca", "rheintal-device-ca", "log"}
        assert {s.file for s in home.config.secrets.values()} == {PASSPHRASE_FILE}
        secret = home.path / PASSPHRASE_FILE
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        authority = home.authority("rheintal-identity-ca")  # decrypts the CA key
        common_name = authority.name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        assert common_name[0].value == "Rheintal Identity CA"
        recorded = {c.serial for c in home.certificates(ca="rheintal-identity-ca")}
        listed = {i["serial"] for i in _identities(manifest) if i["ca"] == "rheintal-identity-ca"}
        assert recorded == listed
        # Officer, Nordsee, organization, its key agreement, signatory, the OPC UA operator.
        assert len(listed) == 6
    finally:
        home.close()


def test_report_is_self_contained(demo_out: Path, manifest: Manifest) -> None:
    page = (demo_out / manifest["report"]).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page
    assert "<link" not in page
    for identity in _identities(manifest):
        assert identity["holder"] in page
    for step in manifest["steps"]:
        assert f"<td>{step['title']}</td><td>{step['status']}</td>" in page
    # Every link points into the output folder, at a file that exists.
    for href in re.findall(r'href="([^"#]+)"', page):
        assert (demo_out / html.unescape(href)).is_file(), href


def test_report_draws_the_topology_paths_and_timelines(demo_out: Path, manifest: Manifest) -> None:
    page = (demo_out / manifest["report"]).read_text(encoding="utf-8")
    sections = dict(re.findall(r'<section id="([a-z]+)">(.*?)</section>', page, flags=re.S))
    assert 'aria-label="Trust topology of the demonstrator"' in sections["topology"]
    assert "DE-JP bridge CA" in sections["topology"]
    # One picture per resolved path, each box one certificate of the path, in order.
    resolutions = manifest["resolutions"]
    assert {r["route"] for r in resolutions} == {"bridge", "trust-list"}
    pictures = re.findall(r"<svg.*?</svg>", sections["paths"], flags=re.S)
    assert len(pictures) == len(resolutions)
    for picture, entry in zip(pictures, resolutions, strict=True):
        boxes = re.findall(r'<g class="box (\w+)">', picture)
        assert len(boxes) == len(entry["path"])
        assert boxes[0] == "anchor"
        if entry["route"] == "bridge":
            assert boxes.count("cross") == 2  # into the bridge and out of it
        assert f"{entry['holder_level']} → {entry['reference_level']} → " in picture
    # The level mappings come from the cross-certificates and the LOTL: all levels appear.
    for scheme in manifest["schemes"]:
        for level in scheme["levels"]:
            assert f"<td>{level}</td>" in sections["levels"]
    # A timeline per sensor; the revoked sensor's refused statement is drawn in red.
    for record in manifest["provenance"]:
        assert f'aria-label="Lifecycle of {record["component"]}"' in sections["provenance"]
    revoked = manifest["revocations"][0]
    holder = next(
        i["holder"] for i in manifest["identities"] if i["certificate"] == revoked["certificate"]
    )
    assert f"{holder}: revoked (key-compromise)" in sections["revocation"]
    assert "refused a statement it signed afterwards" in sections["revocation"]


def test_report_renders_again_from_the_manifest(demo_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    shutil.copy(demo_out / "manifest.json", out / "manifest.json")
    shutil.copytree(demo_out / "artifacts", out / "artifacts")
    trustbridge = Path(sys.executable).with_name("trustbridge")
    result = subprocess.run(
        [str(trustbridge), "demo", "--report-only", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    again = (out / "report.html").read_text(encoding="utf-8")
    first = (demo_out / "report.html").read_text(encoding="utf-8")
    # The same page, but for the time it was generated and the steps' times (the first
    # rendering ran while step 10's time was not known yet).
    strip = re.compile(r'Generated [0-9-]+ [0-9:]+ UTC|<section id="steps">.*?</section>', re.S)
    assert strip.sub("", again) == strip.sub("", first)
    assert '<section id="steps">' in again


def test_a_failing_step_is_named_and_the_nodes_are_stopped(tmp_path: Path) -> None:
    """The demo's own port for the supplier's node is taken: step 3 (serving) fails, by name."""
    base = demo_port_base() + 700
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", base + 9))  # the supplier's node, the last one served
        blocker.listen()
        trustbridge = Path(sys.executable).with_name("trustbridge")
        result = subprocess.run(
            [str(trustbridge), "demo", "--out", str(tmp_path / "out"), "--port-base", str(base)],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
            timeout=300,
        )
    assert result.returncode != 0
    assert "demo step 3 (Identities) failed" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    # No node of this run is left listening.
    for port in range(base, base + 9):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, port


# -- running it -----------------------------------------------------------------------------


def test_a_rerun_replaces_its_own_output_and_keeps_other_files(tmp_path: Path) -> None:
    """`trustbridge demo` into a previous run's folder replaces nodes/, artifacts/, logs/, the
    manifest and the report, and leaves other files alone (the whole rerun is measured by
    bench.demo, which runs the demo twice into one folder)."""
    out = tmp_path / "demo-out"
    for folder in ("nodes/rheintal", "artifacts/de", "logs"):
        (out / folder).mkdir(parents=True)
        (out / folder / "old").write_text("previous run\n")
    (out / "manifest.json").write_text("{}")
    (out / "report.html").write_text("old")
    (out / "notes.txt").write_text("mine\n")
    _prepare(out)
    assert sorted(p.name for p in out.iterdir()) == [".trustbridge-demo", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine\n"


def test_refuses_a_folder_that_is_not_demo_output(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious\n")
    with pytest.raises(InputError, match="holds no previous demo output"):
        run_demo(tmp_path, console=Console(file=io.StringIO()))
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_keep_running_leaves_the_nodes_up_until_ctrl_c(tmp_path: Path) -> None:
    """`--keep-running`: the nodes answer after the story; Ctrl-C (SIGINT) stops all of them."""
    base = demo_port_base() + 800
    trustbridge = Path(sys.executable).with_name("trustbridge")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [str(trustbridge), "demo", "--out", str(out), "--port-base", str(base), "--keep-running"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops them" in line:
                break
        else:
            pytest.fail("the demo ended without keeping its nodes: " + "".join(lines[-40:]))
        manifest = read_manifest(out)
        for node in manifest["nodes"]:
            health = httpx.get(f"{node['http_url']}/health", timeout=10).json()
            assert health == {**health, "node": node["node"], "status": "ready"}
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    # Ctrl-C is how a kept-running demo ends: a normal end, not an interruption of the story.
    assert process.returncode == 0, "".join(lines[-20:]) + rest
    assert "stopping the nodes" in rest
    for node in manifest["nodes"]:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{node['http_url']}/health", timeout=5)
