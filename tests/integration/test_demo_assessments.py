"""Step 5 of the demonstrator: the two companies assess each other; checked from the output
folder, with an independent JOSE library, and through the CLI on the nodes served again."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwcrypto import jwk, jws
from lxml import html as lxml_html

from tests.integration.conftest import served_copy_of, strict_policy
from tests.tools import run_cli
from trustbridge.demo.manifest import AssessmentEntry, Manifest, read_manifest

ENV = dict(os.environ)
MUSTER = "Muster Maschinenbau GmbH"
HAYABUSA = "Hayabusa Sensor Components K.K."


@pytest.fixture(scope="module")
def manifest(demo_out: Path) -> Manifest:
    return read_manifest(demo_out)


def _entry(manifest: Manifest, assessor: str) -> AssessmentEntry:
    return next(a for a in manifest["assessments"] if a["assessor"] == assessor)


def _document(demo_out: Path, entry: AssessmentEntry) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((demo_out / entry["file"]).read_text())
    return data


def test_both_companies_assess_each_other(demo_out: Path, manifest: Manifest) -> None:
    assert {(a["assessor"], a["subject"]) for a in manifest["assessments"]} == {
        (MUSTER, HAYABUSA),
        (HAYABUSA, MUSTER),
    }
    muster = _entry(manifest, MUSTER)
    # Hayabusa shows everything Muster asks for but an ISO 9001 certificate: reliability rests
    # on one self-declaration, below the policy's confidence, so Muster accepts with conditions.
    assert muster["decision"] == "accept-with-conditions"
    assert (muster["score"], muster["credentials"], muster["refused"]) == (80.0, 8, 0)
    assert (muster["route"], muster["reference_level"]) == ("bridge", "itg-loa3")
    document = _document(demo_out, muster)
    assert document["decision"] == muster["decision"]
    assert document["conditions"][0] == "present an ISO 9001 certificate within six months"
    unmet = [c["characteristic"] for c in document["characteristics"] if not c["met"]]
    assert unmet == ["reliability"]
    hayabusa = _entry(manifest, HAYABUSA)
    assert hayabusa["decision"] == "accept"
    # Hayabusa's node (no CA of its own) knows the JP scheme as its own from its pinned root, so
    # Muster's identity resolves through the bridge first, as Hayabusa's resolves for Muster.
    assert hayabusa["route"] == "bridge" and hayabusa["credentials"] == 3
    for entry in manifest["assessments"]:
        assert (demo_out / entry["policy"]).is_file()
        assert _document(demo_out, entry)["policy"]["file"] == entry["policy"]


def test_every_reason_is_tied_to_a_claim_or_to_what_is_missing(
    demo_out: Path, manifest: Manifest
) -> None:
    document = _document(demo_out, _entry(manifest, MUSTER))
    presented = {e["id"] for e in manifest["credentials"] if e["holder"] == HAYABUSA}
    requirements = [r for c in document["characteristics"] for r in c["requirements"]]
    for requirement in requirements:
        if requirement["status"] == "missing":
            assert requirement["claim"] is None
            assert requirement["reason"].startswith(f"no claim for {requirement['criterion']}")
        else:
            assert requirement["claim"]["credential"] in presented
    reasons = [r for r in document["reasons"] if r["kind"] == "requirement"]
    assert {r["criterion"] for r in reasons} == {r["criterion"] for r in requirements}


def test_the_package_verifies_with_an_independent_jose_library(
    demo_out: Path, manifest: Manifest
) -> None:
    entry = _entry(manifest, MUSTER)
    document = json.loads((demo_out / entry["package"]).read_text())
    assert document["type"] == "tb-presentations"
    token = document["proof"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "tb-presentations+jwt"
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert HAYABUSA in leaf.subject.rfc4514_string()
    key = jwk.JWK.from_pem(
        leaf.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    verified = jws.JWS()
    verified.deserialize(token)
    verified.verify(key, alg="ES256")
    payload = json.loads(verified.payload)
    # Bound to the asking organization (its identifier) and to the nonce of its challenge.
    assert payload["aud"] == "VATDE-123456789"
    assert len(payload["nonce"]) >= 16
    # The proof signs the SHA-256 digest of every presentation, in order.
    assert payload["presentations"] == [
        base64.urlsafe_b64encode(hashlib.sha256(p.encode()).digest()).rstrip(b"=").decode()
        for p in document["presentations"]
    ]
    assert len(payload["presentations"]) == entry["credentials"]


def test_the_assessment_pages_and_the_report_show_the_charts(
    demo_out: Path, manifest: Manifest
) -> None:
    for entry in manifest["assessments"]:
        page = lxml_html.fromstring((demo_out / entry["html"]).read_text())
        assert page.xpath("//svg|//*[local-name()='svg']")
        assert entry["decision"] in page.text_content()
    report = lxml_html.fromstring((demo_out / manifest["report"]).read_text())
    text = report.text_content()
    assert f"{MUSTER} assesses {HAYABUSA}" in text
    assert len(report.xpath("//*[local-name()='svg']")) >= 2


# -- through the CLI, on the nodes served again ---------------------------------------------


@pytest.fixture(scope="module")
def served(demo_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with served_copy_of(demo_out, tmp_path_factory.mktemp("assess-copy")) as copy:
        yield copy


def test_package_and_assess_through_the_cli(
    served: Path, manifest: Manifest, tmp_path: Path
) -> None:
    muster = ("--home", str(served / "nodes" / "muster"))
    hayabusa = ("--home", str(served / "nodes" / "hayabusa"))
    audience = next(n["http_url"] for n in manifest["nodes"] if n["node"] == "muster")
    package = tmp_path / "hayabusa.package"
    run_cli(
        *hayabusa,
        "credential",
        "package",
        "--audience",
        audience,
        "--nonce",
        "cli-nonce-1",
        "--out",
        str(package),
        cwd=served,
        env=ENV,
    )
    policy = served / _entry(manifest, MUSTER)["policy"]
    out, page = tmp_path / "assessment.json", tmp_path / "assessment.html"

    def assess(policy: str, nonce: str, *extra: str, ok: bool = True) -> Any:
        return run_cli(
            *muster,
            "assess",
            "--policy",
            policy,
            "--presentation",
            str(package),
            "--nonce",
            nonce,
            "--audience",
            audience,
            *extra,
            cwd=served,
            env=ENV,
            ok=ok,
        )

    shown = assess(str(policy), "cli-nonce-1", "--out", str(out), "--html", str(page))
    assert "accept-with-conditions" in shown.stdout
    assert "reliability" in shown.stdout
    document = json.loads(out.read_text())
    assert document["decision"] == "accept-with-conditions"
    assert document["subject"]["organization"] == "NTRJP-3180001012345"
    assert "<svg" in page.read_text()
    # The caller can insist on an outright accept: exit 1, and the reasons are still shown.
    strict = assess(
        "safety-component-supplier-high", "cli-nonce-1", "--require", "accept", ok=False
    )
    assert strict.returncode == 1 and "accept-with-conditions" in strict.stdout
    replayed = assess(str(policy), "another-nonce", ok=False)
    assert replayed.returncode == 3
    assert "nonce is not ours" in replayed.stderr and "Traceback" not in replayed.stderr


def test_bad_input_to_assess_names_the_problem(
    served: Path, manifest: Manifest, tmp_path: Path
) -> None:
    muster = ("--home", str(served / "nodes" / "muster"))
    policy = tmp_path / "bad.yaml"
    policy.write_text(
        (served / _entry(manifest, MUSTER)["policy"])
        .read_text()
        .replace("accept: 80", "accept: 50")
    )
    package = tmp_path / "empty.package"
    package.write_text("not-a-package\n")
    common = ("--presentation", str(package), "--nonce", "n", "--audience", "a")
    bad_policy = run_cli(
        *muster, "assess", "--policy", str(policy), *common, cwd=served, env=ENV, ok=False
    )
    assert bad_policy.returncode == 2
    said = "".join(bad_policy.stderr.split())  # rich wraps long lines, even inside a path
    assert f"{policy.name}:$.thresholds(line13)" in said
    assert "mustbeabovetheaccept-with-conditionsthreshold" in said
    unknown = run_cli(
        *muster, "assess", "--policy", "no-such-policy", *common, cwd=served, env=ENV, ok=False
    )
    assert unknown.returncode == 2 and "ships no requirement" in unknown.stderr
    bad_package = run_cli(
        *muster,
        "assess",
        "--policy",
        "customer-test-data-medium",
        *common,
        cwd=served,
        env=ENV,
        ok=False,
    )
    assert bad_package.returncode == 3 and package.name in bad_package.stderr
    for result in (bad_policy, unknown, bad_package):
        assert "Traceback" not in result.stderr


def test_assess_a_partner_node_over_the_wire(
    served: Path, manifest: Manifest, tmp_path: Path
) -> None:
    muster = ("--home", str(served / "nodes" / "muster"))
    hayabusa_url = next(n["https_url"] for n in manifest["nodes"] if n["node"] == "hayabusa")
    page = tmp_path / "wire.html"
    result = run_cli(
        *muster,
        "assess",
        "--partner",
        hayabusa_url,
        "--policy",
        "safety-component-supplier-high",
        "--json",
        "--html",
        str(page),
        cwd=served,
        env=ENV,
    )
    document = json.loads(result.stdout)
    assert document["decision"] == "accept-with-conditions"
    assert document["subject"]["organization"] == "NTRJP-3180001012345"
    assert document["policy"]["id"] == "safety-component-supplier-high"
    assert document["route"] in {"bridge", "trust-list"}
    assert "<svg" in page.read_text()
    # The session is kept on both nodes, stopped after our assessment, ready to continue.
    sessions = json.loads(run_cli(*muster, "session", "list", "--json", cwd=served, env=ENV).stdout)
    ours = next(s for s in sessions if s["id"] == document["session"])
    assert ours["state"] == "assessed" and ours["steps"][-1] == "presentation"
    # The policy given on the command line decides, not the node's configured one.
    strict = strict_policy(tmp_path / "strict.yaml")
    refused = run_cli(
        *muster,
        "assess",
        "--partner",
        hayabusa_url,
        "--policy",
        str(strict),
        "--require",
        "accept-with-conditions",
        cwd=served,
        env=ENV,
        ok=False,
    )
    assert refused.returncode == 1, refused.stderr
    assert "reject" in refused.stdout and "safety-component-supplier-strict" in refused.stdout
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--partner", "https://127.0.0.1:9", "--presentation", "p"), "not both"),
        ((), "not both and not neither"),
        (("--partner", "https://127.0.0.1:9", "--nonce", "n"), "--nonce and --audience go"),
        (("--presentation", "p", "--nonce", "n"), "needs --policy and --audience"),
    ],
)
def test_assess_takes_a_package_or_a_partner(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    result = run_cli(
        "--home", str(tmp_path / "home"), "assess", *args, cwd=tmp_path, env=ENV, ok=False
    )
    assert result.returncode == 2, result.stdout
    assert said in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
