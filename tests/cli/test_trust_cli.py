"""`trustbridge verify`, `bridge`, `trustlist` and `lotl` on three linked homes."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from tests.homes import NOW
from tests.tools import run_cli
from tests.trust.linked import Linked, build_linked
from tests.trust.test_resolver import lotl, national_list
from trustbridge.pki.ca import self_signed_certificate
from trustbridge.pki.keys import private_key_pem
from trustbridge.pki.signers import FileSigner
from trustbridge.trust.lists import lotl_to_json, trust_list_to_json
from trustbridge.trust.reference import JAPAN

AT = (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Linked, Path]:
    work = tmp_path_factory.mktemp("trust-cli")
    linked = build_linked(work / "homes")
    # What the nodes publish, gathered in one folder: bundles and CRLs.
    published = work / "published"
    published.mkdir()
    for home in linked.homes:
        for info in home.cas():
            bundle = home.bridge.issuers_bundle(info.slug) + home.bridge.issued_bundle(info.slug)
            name = f"{home.config.node_name}-{info.slug}"
            (published / f"{name}.p7c").write_bytes(
                pkcs7.serialize_certificates(bundle, Encoding.DER)
            )
            (published / f"{name}.crl").write_bytes(home.status.latest_crl(info.slug).der)
    (work / "jp-person.pem").write_bytes(linked.jp_person.public_bytes(Encoding.PEM))
    (work / "jp-root.pem").write_bytes(linked.root(linked.jp).public_bytes(Encoding.PEM))
    (work / "de-root.pem").write_bytes(linked.root(linked.de).public_bytes(Encoding.PEM))
    linked.close()
    return linked, work


def cli(work: Path, home: str, *args: str, ok: bool = True) -> str:
    result = run_cli("--home", str(work / "homes" / home), *args, cwd=work, env=os.environ, ok=ok)
    return result.stdout + result.stderr


def test_verify_through_the_bridge_from_a_folder_of_published_objects(
    world: tuple[Linked, Path],
) -> None:
    _, work = world
    out = cli(
        work, "de-tsp", "verify", "jp-person.pem", "--untrusted", "published",
        "--offline", "--at", AT, "--json",
    )  # fmt: skip
    data = json.loads(out)
    assert data["route"] == "bridge"
    assert (data["holder_level"], data["own_level"], data["reference_level"]) == (
        "jp/jp-level3", "de/de-high", "itg/itg-loa3",
    )  # fmt: skip
    assert "ITG Bridge CA" in data["path"][1]
    assert data["revocation"].startswith("checked against")
    # Below the minimum level, or without the bridge objects: exit code 3, a reason, no trace.
    refused = cli(work, "de-tsp", "verify", "jp-person.pem", "--offline", "--at", AT, ok=False)
    assert "is not trusted" in refused and "bridge:" in refused


def test_verify_with_an_explicit_anchor(world: tuple[Linked, Path]) -> None:
    _, work = world
    out = cli(
        work, "de-tsp", "verify", "jp-person.pem", "--anchor", "jp-root.pem",
        "--untrusted", "published", "--offline", "--at", AT,
    )  # fmt: skip
    assert "valid" in out and "jp/jp-level3" in out
    wrong = cli(
        work, "de-tsp", "verify", "jp-person.pem", "--anchor", "jp-root.pem",
        "--offline", "--at", "2001-01-01T00:00:00Z", "--untrusted", "published", ok=False,
    )  # fmt: skip
    assert "error" in wrong


def _signer(work: Path, name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = self_signed_certificate(
        FileSigner(key),
        subject,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
    )
    (work / f"{name}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (work / f"{name}.key").write_bytes(private_key_pem(key))
    return cert


def test_publish_pin_accept_lists_and_resolve_by_the_trust_list(world: tuple[Linked, Path]) -> None:
    linked, work = world
    now = datetime.now(UTC).replace(microsecond=0)
    _signer(work, "lotl-signer")
    jp_signer = _signer(work, "jp-list-signer")
    table = lotl(jp_signer)
    table = replace(table, issued_at=now - timedelta(hours=1), next_update=now + timedelta(days=7))
    (work / "lotl.json").write_bytes(lotl_to_json(table))
    jp_list = national_list(linked.jp, JAPAN)
    jp_list = replace(
        jp_list, issued_at=now - timedelta(hours=1), next_update=now + timedelta(days=7)
    )
    (work / "jp-list.json").write_bytes(trust_list_to_json(jp_list))
    assert "signed LOTL itg" in cli(
        work, "bridge", "lotl", "publish", "lotl.json", "--cert", "lotl-signer.pem",
        "--key", "lotl-signer.key", "--out", "lotl.jws",
    )  # fmt: skip
    cli(
        work, "bridge", "trustlist", "publish", "jp-list.json", "--cert", "jp-list-signer.pem",
        "--key", "jp-list-signer.key", "--out", "jp-list.jws",
    )  # fmt: skip
    assert json.loads(cli(work, "de-tsp", "lotl", "show", "lotl.jws"))["sequence"] == 1
    # Nothing is accepted before the group operator's signer is pinned.
    assert "no LOTL signer is pinned" in cli(work, "de-tsp", "lotl", "accept", "lotl.jws", ok=False)
    cli(work, "de-tsp", "lotl", "pin", "lotl-signer.pem")
    assert "accepted LOTL itg, sequence 1" in cli(work, "de-tsp", "lotl", "accept", "lotl.jws")
    # A list signed by someone the LOTL does not name is refused.
    cli(
        work, "bridge", "trustlist", "publish", "jp-list.json", "--cert", "lotl-signer.pem",
        "--key", "lotl-signer.key", "--out", "forged.jws",
    )  # fmt: skip
    assert "signer" in cli(work, "de-tsp", "trustlist", "accept", "forged.jws", ok=False)
    assert "accepted trust list jp" in cli(work, "de-tsp", "trustlist", "accept", "jp-list.jws")
    data = json.loads(
        cli(
            work,
            "de-tsp",
            "verify",
            "jp-person.pem",
            "--untrusted",
            "published",
            "--offline",
            "--json",
            "--level",
            "itg-loa3",
            # Now (the lists' time) is past the test CRLs' next update.
            "--revocation",
            "none",
        )
    )
    routes = {r["route"]: r for r in data["routes"]}
    assert routes["trust-list"]["reference_level"] == "itg/itg-loa3"
    # A rollback to an older LOTL is refused, also by a fresh process.
    bumped = replace(table, sequence=2)
    (work / "lotl2.json").write_bytes(lotl_to_json(bumped))
    cli(
        work, "bridge", "lotl", "publish", "lotl2.json", "--cert", "lotl-signer.pem",
        "--key", "lotl-signer.key", "--out", "lotl2.jws",
    )  # fmt: skip
    cli(work, "de-tsp", "lotl", "accept", "lotl2.jws")
    assert "is older than sequence 2" in cli(work, "de-tsp", "lotl", "accept", "lotl.jws", ok=False)


def test_text_that_looks_like_console_markup_prints_as_written(
    world: tuple[Linked, Path],
) -> None:
    # A stranger's certificate whose name is rich console markup: the refusal names it as it
    # is written (it used to crash the error printer with a MarkupError traceback).
    _, work = world
    name = "Werk [/x] [bold red]Vertrauenswuerdig[/]"
    stranger = self_signed_certificate(
        FileSigner(ec.generate_private_key(ec.SECP256R1())),
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]),
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=30),
    )
    (work / "stranger-markup.pem").write_bytes(stranger.public_bytes(Encoding.PEM))
    out = cli(work, "de-tsp", "verify", "stranger-markup.pem", "--offline", "--at", AT, ok=False)
    assert "is not trusted" in out and name in out, out
