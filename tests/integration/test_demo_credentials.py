"""Step 4 of the demonstrator: the supplier's credentials, checked with independent tools and,
on a copy of the demo's nodes served again, revoked and refused through the CLI."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwcrypto import jwk, jws
from sd_jwt.verifier import SDJWTVerifier

from tests.integration.conftest import served_copy_of
from tests.tools import run_cli
from trustbridge.credentials.aas import from_json as aas_from_json
from trustbridge.demo.manifest import CredentialEntry, Manifest, read_manifest


@pytest.fixture(scope="module")
def manifest(demo_out: Path) -> Manifest:
    return read_manifest(demo_out)


def _credentials(manifest: Manifest) -> list[CredentialEntry]:
    """The supplier's credentials (the customer's own, for step 5, are checked apart)."""
    return [e for e in manifest["credentials"] if e["holder"] == "Hayabusa Sensor Components K.K."]


def _leaf_key(token: str) -> jwk.JWK:
    header = json.loads(base64.urlsafe_b64decode(token.split(".", maxsplit=1)[0] + "=="))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    pem = leaf.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return jwk.JWK.from_pem(pem)


def test_the_story_s_credentials_are_all_there(demo_out: Path, manifest: Manifest) -> None:
    entries = _credentials(manifest)
    by_criterion = {e["criterion"]: e for e in entries}
    assert set(by_criterion) >= {
        "iso-iec-27001",
        "iec-62443-4-1",
        "iec-61508",
        "iec-62443-3-3",
        "appi-processing",
        "mtbf",
        "incident-response",
        "business-continuity",
    }
    assert by_criterion["iec-61508"]["issuer"] == "Fuji Conformity Assessment Co."
    assert by_criterion["iec-61508"]["evidence"] == "certificate"
    assert by_criterion["iec-62443-3-3"]["issuer"] == "Nordsee Certification GmbH"
    assert by_criterion["iec-62443-3-3"]["evidence"] == "audit"
    assert by_criterion["appi-processing"]["evidence"] == "self-declaration"
    characteristics = {e["characteristic"] for e in entries}
    assert characteristics == {"security", "safety", "privacy", "reliability", "resilience"}
    assert {e["format"] for e in entries} == {"vc+jwt", "dc+sd-jwt"}
    nodes = {n["node"]: n for n in manifest["nodes"]}
    for entry in entries:
        assert (demo_out / entry["file"]).is_file()
        assert entry["holder"] == "Hayabusa Sensor Components K.K."
        assert entry["verified_by"] == "Muster Maschinenbau GmbH"
        assert entry["status"].startswith(nodes[entry["issuer_node"]]["http_url"])
        # Fuji and Hayabusa are Japanese: Muster reaches them over the bridge.
        expected = "own-scheme" if entry["issuer_node"] == "nordsee" else "bridge"
        assert entry["route"] == expected


def test_vc_jwt_credentials_verify_with_jwcrypto(demo_out: Path, manifest: Manifest) -> None:
    checked = 0
    for entry in _credentials(manifest):
        token = (demo_out / entry["file"]).read_text().strip()
        issuer_jwt = token.split("~")[0]
        verified = jws.JWS()
        verified.deserialize(issuer_jwt)
        verified.verify(_leaf_key(issuer_jwt), alg="ES256")
        payload = json.loads(verified.payload)
        assert payload["jti"] == entry["id"]
        checked += 1
    assert checked == len(_credentials(manifest))


def test_sd_jwt_credentials_verify_with_the_reference_implementation(
    demo_out: Path, manifest: Manifest
) -> None:
    sd = [e for e in _credentials(manifest) if e["format"] == "dc+sd-jwt"]
    assert sd
    for entry in sd:
        token = (demo_out / entry["file"]).read_text().strip()
        key = _leaf_key(token)
        verifier = SDJWTVerifier(token, lambda _iss, _header, key=key: key)
        payload = verifier.get_verified_payload()
        claims = payload["credentialSubject"]["claims"]
        assert [c["criterion"] for c in claims] == [entry["criterion"]]
        assert payload["vct"] == "https://w3id.org/trustbridge/vct/trustworthiness/v1"


def test_the_presented_audit_withholds_its_findings(demo_out: Path, manifest: Manifest) -> None:
    audit = next(e for e in _credentials(manifest) if e["evidence"] == "audit")
    assert "evidence[0].scope" not in audit["disclosed"]
    presented = demo_out / audit["file"].replace("credentials/", "credentials/presented/")
    text = presented.read_text()
    disclosed = [
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        for part in text.strip().split("~")[1:-1]
    ]
    names = {d[1] for d in disclosed if len(d) == 3}
    assert "findings" not in names
    full = (demo_out / audit["file"]).read_text()
    assert len(full.split("~")) > len(text.split("~")) - 1  # the issued token holds more


def test_the_profile_exports_as_an_aas_submodel(demo_out: Path) -> None:
    folder = demo_out / "artifacts" / "credentials"
    profile = json.loads(next(folder.glob("*-profile.json")).read_text())
    assert profile["subject"]["id"] == "urn:trustbridge:org:NTRJP-3180001012345"
    exported = aas_from_json(next(folder.glob("*-profile.aas.json")).read_text())
    assert exported.subject.id == profile["subject"]["id"]
    assert {c.criterion for c in exported.claims} >= {"iso-iec-27001", "iec-62443-4-1"}


# -- on the nodes, served again from a copy ------------------------------------------------------


@pytest.fixture(scope="module")
def served_copy(demo_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with served_copy_of(demo_out, tmp_path_factory.mktemp("demo-copy")) as copy:
        yield copy


def test_a_revoked_credential_is_refused_by_the_customer(
    served_copy: Path, manifest: Manifest
) -> None:
    env = dict(os.environ)
    entry = next(e for e in _credentials(manifest) if e["criterion"] == "iec-61508")
    muster = ("--home", str(served_copy / "nodes" / "muster"))
    file = str(served_copy / entry["file"])
    ok = run_cli(*muster, "credential", "verify", file, cwd=served_copy, env=env)
    assert "valid" in ok.stdout and "iec-61508" in ok.stdout
    fuji = ("--home", str(served_copy / "nodes" / "fuji"))
    run_cli(
        *fuji,
        "credential",
        "revoke",
        entry["id"],
        "--reason",
        "withdrawn",
        cwd=served_copy,
        env=env,
    )
    refused = run_cli(*muster, "credential", "verify", file, cwd=served_copy, env=env, ok=False)
    assert refused.returncode == 3
    assert "revocation" in refused.stderr and "error" in refused.stderr


def test_a_presentation_with_the_wrong_nonce_is_refused_by_the_cli(
    served_copy: Path, manifest: Manifest
) -> None:
    env = dict(os.environ)
    entry = next(e for e in _credentials(manifest) if e["criterion"] == "mtbf")
    presented = served_copy / entry["file"].replace("credentials/", "credentials/presented/")
    audience = next(n["http_url"] for n in manifest["nodes"] if n["node"] == "muster")
    refused = run_cli(
        "--home",
        str(served_copy / "nodes" / "muster"),
        "credential",
        "verify",
        str(presented),
        "--audience",
        audience,
        "--nonce",
        "not-the-nonce",
        cwd=served_copy,
        env=env,
        ok=False,
    )
    assert refused.returncode == 3
    assert "nonce" in refused.stderr


def test_issue_present_verify_suspend_and_profile_through_the_cli(
    served_copy: Path, manifest: Manifest, tmp_path: Path
) -> None:
    env = dict(os.environ)
    fuji = ("--home", str(served_copy / "nodes" / "fuji"))
    muster = ("--home", str(served_copy / "nodes" / "muster"))
    hayabusa = ("--home", str(served_copy / "nodes" / "hayabusa"))
    holder = next(
        i
        for i in manifest["identities"]
        if i["holder"] == "Hayabusa Sensor Components K.K."
        and i["kind"] == "organization"
        and i["purpose"] == "identity"
    )
    request = tmp_path / "component.yaml"
    request.write_text(
        "subject:\n"
        "  element: product\n"
        "  name: HPS-200 pressure sensor\n"
        "  organization: NTRJP-3180001012345\n"
        "  partNumber: HPS-200\n"
        "  globalAssetId: https://hayabusa-sensors.example/aas/HPS-200\n"
        "claims:\n"
        "  - criterion: iec-62443-4-2\n"
        "    value: SL-C2\n"
        "    scope: HPS-200 firmware 2.1\n"
        "evidence:\n"
        "  kind: certificate\n"
        "  reference: FCA-CSL-2026-0009\n"
    )
    token = tmp_path / "component.sd-jwt"
    run_cli(
        *fuji,
        "credential",
        "issue",
        str(request),
        "--holder",
        str(served_copy / holder["certificate"]),
        "--format",
        "dc+sd-jwt",
        "--out",
        str(token),
        cwd=served_copy,
        env=env,
    )
    listed = run_cli(*fuji, "credential", "list", "--json", cwd=served_copy, env=env)
    issued = [c for c in json.loads(listed.stdout) if c["criteria"] == ["iec-62443-4-2"]]
    assert len(issued) == 1 and issued[0]["state"] == "valid"
    presentation = tmp_path / "component.presented"
    run_cli(
        "credential",
        "present",
        str(token),
        "--key",
        str(served_copy / holder["key"]),
        "--audience",
        "https://muster.example",
        "--nonce",
        "n-42",
        "--disclose",
        "credentialSubject.claims[0]",
        "--out",
        str(presentation),
        cwd=served_copy,
        env=env,
    )
    ok = run_cli(
        *muster,
        "credential",
        "verify",
        str(presentation),
        "--audience",
        "https://muster.example",
        "--nonce",
        "n-42",
        "--json",
        cwd=served_copy,
        env=env,
    )
    verdict = json.loads(ok.stdout)
    assert verdict["holder_bound"] is True
    assert verdict["disclosed"] == ["credentialSubject.claims[0]"]
    assert verdict["credential"]["claims"][0]["value"] == "SL-C2"
    run_cli(*fuji, "credential", "suspend", issued[0]["id"], cwd=served_copy, env=env)
    suspended = run_cli(
        *muster, "credential", "verify", str(token), cwd=served_copy, env=env, ok=False
    )
    assert suspended.returncode == 3 and "suspension" in suspended.stderr
    run_cli(*fuji, "credential", "resume", issued[0]["id"], cwd=served_copy, env=env)
    run_cli(*muster, "credential", "verify", str(token), cwd=served_copy, env=env)
    run_cli(*hayabusa, "credential", "store", str(token), cwd=served_copy, env=env)
    shown = run_cli(
        *hayabusa, "profile", "show", "NTRJP-3180001012345", "--json", cwd=served_copy, env=env
    )
    profile = json.loads(shown.stdout)
    assert profile["subject"]["id"] == "urn:trustbridge:org:NTRJP-3180001012345"
    security = {c["criterion"] for c in profile["characteristics"]["security"]}
    assert {"iso-iec-27001", "iec-62443-4-1"} <= security
    sensor = "https://hayabusa-sensors.example/aas/HPS-200"
    shown = run_cli(*hayabusa, "profile", "show", sensor, "--json", cwd=served_copy, env=env)
    profile = json.loads(shown.stdout)
    assert "iec-62443-4-2" in {c["criterion"] for c in profile["characteristics"]["security"]}
    assert "mtbf" in {c["criterion"] for c in profile["characteristics"]["reliability"]}
    # Once revoked, the component's credential is left out of the profile, with its reason.
    run_cli(*fuji, "credential", "revoke", issued[0]["id"], cwd=served_copy, env=env)
    shown = run_cli(*hayabusa, "profile", "show", sensor, "--json", cwd=served_copy, env=env)
    profile = json.loads(shown.stdout)
    assert "iec-62443-4-2" not in {c["criterion"] for c in profile["characteristics"]["security"]}
    refused = [r for r in profile["refused"] if issued[0]["id"] in r["source"]]
    assert [r["error"] for r in refused] == ["RevokedCredentialError"]


def test_bad_input_gets_a_clear_error(served_copy: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    fuji = ("--home", str(served_copy / "nodes" / "fuji"))
    muster = ("--home", str(served_copy / "nodes" / "muster"))
    request = tmp_path / "wrong.yaml"
    request.write_text(
        "subject: {element: product, name: X, organization: NTRJP-3180001012345}\n"
        "claims: [{criterion: iec-61509, value: SIL2}]\n"
        "evidence: {kind: certificate}\n"
    )
    holder = next(served_copy.glob("artifacts/jp/identities/hayabusa-sensor-components-k-k.pem"))
    wrong = run_cli(
        *fuji,
        "credential",
        "issue",
        str(request),
        "--holder",
        str(holder),
        "--out",
        str(tmp_path / "x.jwt"),
        cwd=served_copy,
        env=env,
        ok=False,
    )
    said = wrong.stderr.replace("\n", "")  # rich wraps long lines
    assert wrong.returncode == 2 and "iec-61509" in said and "iec-61508" in said
    assert not (tmp_path / "x.jwt").exists()
    garbage = tmp_path / "garbage.jwt"
    garbage.write_text("eyJhbGciOiJFUzI1NiJ9.e30.AAAA\n")
    refused = run_cli(
        *muster, "credential", "verify", str(garbage), cwd=served_copy, env=env, ok=False
    )
    assert refused.returncode == 3 and "garbage.jwt" in refused.stderr.replace("\n", "")


def test_the_report_shows_the_verified_profile(demo_out: Path, manifest: Manifest) -> None:
    page = (demo_out / "report.html").read_text()
    assert "Trust profile of the supplier" in page
    for entry in _credentials(manifest):
        assert entry["id"] in page
    # self-contained: nothing loaded from elsewhere
    assert "<script src" not in page and "<link" not in page and "<img src" not in page
