"""The demo's bridge, trust lists, LOTL and resolutions, checked with independent tools.

``openssl verify`` does RFC 5280 policy processing with mapping, so it checks the bridge
paths on its own; ``joserfc`` checks the lists' signatures.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID
from joserfc import jwk, jws

from tests.tools import openssl_verify_policy
from trustbridge import oids
from trustbridge.demo.manifest import Manifest, ResolutionEntry, read_manifest
from trustbridge.pki.cross import policy_mappings_of
from trustbridge.trust.reference import GERMANY, ITG, JAPAN

LEVELS = {lv.name: lv.oid.dotted_string for s in (GERMANY, JAPAN, ITG) for lv in s.levels}


@pytest.fixture(scope="module")
def manifest(demo_out: Path) -> Manifest:
    return read_manifest(demo_out)


def _certificate(out: Path, path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((out / path).read_bytes())


def _openssl_verify(
    out: Path, work: Path, entry: ResolutionEntry, *extra: str
) -> subprocess.CompletedProcess[str]:
    return openssl_verify_policy(
        anchor=out / entry["path"][0],
        untrusted=[out / p for p in entry["path"][1:-1]],
        leaf=out / entry["path"][-1],
        policy=LEVELS[entry["relying_level"]],
        work=work,
        extra=("-policy_print", *extra),
    )


def test_the_bridge_and_its_cross_certificates(demo_out: Path, manifest: Manifest) -> None:
    bridge = manifest["bridge"]
    ca = _certificate(demo_out, bridge["certificate"])
    assert ca.subject == ca.issuer and "DE-JP Industrial Bridge CA" in ca.subject.rfc4514_string()
    assert len(bridge["cross_certificates"]) == 4
    for path in bridge["cross_certificates"]:
        cross = _certificate(demo_out, path)
        assert cross.extensions.get_extension_for_oid(ExtensionOID.POLICY_MAPPINGS).critical
        mappings = {(m.issuer_domain.dotted_string, m.subject_domain.dotted_string)
                    for m in policy_mappings_of(cross)}  # fmt: skip
        if cross.issuer == ca.subject:  # the bridge certifies a root: itg-loaN -> national N
            assert (oids.ITG_LOA3.dotted_string, LEVELS["jp-level3"]) in mappings or (
                oids.ITG_LOA3.dotted_string,
                LEVELS["de-high"],
            ) in mappings
        else:  # a root certifies the bridge: national N -> itg-loaN
            assert cross.subject == ca.subject
            references = (oids.ITG_LOA1, oids.ITG_LOA2, oids.ITG_LOA3)
            assert {ref for _, ref in mappings} == {o.dotted_string for o in references}
        # openssl reads the mapping too.
        text = subprocess.run(
            ["openssl", "x509", "-noout", "-text", "-in", str(demo_out / path)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "Policy Mappings: critical" in text


def test_both_companies_resolve_each_other_by_both_routes(manifest: Manifest) -> None:
    seen = {(r["relying_party"], r["holder"], r["route"]) for r in manifest["resolutions"]}
    assert seen == {
        ("Muster Maschinenbau GmbH", "Hayabusa Sensor Components K.K.", "bridge"),
        ("Muster Maschinenbau GmbH", "Hayabusa Sensor Components K.K.", "trust-list"),
        ("Hayabusa Sensor Components K.K.", "Muster Maschinenbau GmbH", "bridge"),
        ("Hayabusa Sensor Components K.K.", "Muster Maschinenbau GmbH", "trust-list"),
    }
    for r in manifest["resolutions"]:
        # The same identity gets the same levels whichever route validated it.
        if r["holder"].startswith("Hayabusa"):
            assert (r["holder_level"], r["relying_level"]) == ("jp-level3", "de-high")
        else:
            assert (r["holder_level"], r["relying_level"]) == ("de-high", "jp-level3")
        assert r["reference_level"] == "itg-loa3"
        assert r["reasons"]


def test_openssl_validates_each_bridge_path_only_with_the_mapping(
    demo_out: Path, manifest: Manifest, tmp_path: Path
) -> None:
    bridged = [r for r in manifest["resolutions"] if r["route"] == "bridge"]
    for entry in bridged:
        assert len(entry["path"]) == 5
        names = [_certificate(demo_out, p).subject.rfc4514_string() for p in entry["path"]]
        assert "DE-JP Industrial Bridge CA" in names[1]
        result = _openssl_verify(demo_out, tmp_path, entry, "-partial_chain", "-no_check_time")
        assert result.returncode == 0, result.stdout + result.stderr
        assert ": OK" in result.stdout
        # Without policy mapping the relying party's level is not reached.
        refused = _openssl_verify(
            demo_out, tmp_path, entry, "-partial_chain", "-no_check_time", "-inhibit_map"
        )
        assert refused.returncode != 0, refused.stdout


def test_the_trust_list_paths_pass_a_listed_ca(demo_out: Path, manifest: Manifest) -> None:
    for entry in (r for r in manifest["resolutions"] if r["route"] == "trust-list"):
        code = "jp" if entry["holder"].startswith("Hayabusa") else "de"
        payload = _verified_payload(demo_out, f"artifacts/{code}/trust-list.jws",
                                    f"artifacts/{code}/trust-list-signer.pem")  # fmt: skip
        listed = {
            c for p in payload["providers"] for s in p["services"] if s["kind"] == "ca"
            for c in s["certificates"]
        }  # fmt: skip
        path = [_certificate(demo_out, p) for p in entry["path"]]
        ders = {base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in path}
        assert listed & ders, "the path passes no CA the trust list names"


def _verified_payload(out: Path, token_path: str, signer_path: str) -> dict[str, Any]:
    signer = _certificate(out, signer_path)
    pem = signer.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    key = jwk.import_key(pem, "EC")
    registry = jws.JWSRegistry(algorithms=["ES256"])
    registry.max_header_length = 16 * 1024
    verified = jws.deserialize_compact((out / token_path).read_bytes(), key, registry=registry)
    data: dict[str, Any] = json.loads(verified.payload)
    return data


def test_the_lotl_points_to_both_lists_and_maps_every_level(
    demo_out: Path, manifest: Manifest
) -> None:
    assert manifest["lotl"] == "artifacts/group/lotl.jws"
    lotl = _verified_payload(demo_out, manifest["lotl"], "artifacts/group/lotl-signer.pem")
    pointers = lotl["pointers"]
    assert isinstance(pointers, list)
    assert {p["scheme"] for p in pointers} == {"de", "jp"}
    assert all(p["location"].endswith("/trust/trust-list.jws") for p in pointers)
    equivalences = lotl["equivalences"]
    assert isinstance(equivalences, list) and len(equivalences) == 6
