"""Steps 8 and 9 of the demonstrator: the sensors' lifecycles in the nodes' transparency logs,
checked from the output folder (checkpoints with the published keys, receipts, the chain of
statements), and on the nodes served again: the CLI verifies, a changed entry is found, an
out-of-order statement and a revoked signer's statement are refused."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.integration.conftest import served_copy_of
from tests.tools import run_cli
from trustbridge.demo.manifest import Manifest, read_manifest
from trustbridge.errors import InputError
from trustbridge.ledger.entries import EntryKind
from trustbridge.ledger.merkle import verify_consistency
from trustbridge.ledger.note import LogKey, open_checkpoint
from trustbridge.ledger.receipt import Receipt
from trustbridge.node.logclient import LogClient
from trustbridge.node.provenance import record_remote
from trustbridge.pki.keys import load_private_key_pem
from trustbridge.pki.signers import FileSigner
from trustbridge.provenance.statement import (
    LifecycleEvent,
    SignedStatement,
    build_statement,
    sign_statement,
)

LIFECYCLE = [
    "manufactured",
    "firmware-installed",
    "tested",
    "shipped",
    "received",
    "integrated",
    "firmware-updated",
]


@pytest.fixture(scope="module")
def manifest(demo_out: Path) -> Manifest:
    return read_manifest(demo_out)


def _keys(manifest: Manifest) -> dict[str, LogKey]:
    return {
        log["origin"]: LogKey.from_vkey(log["public_key"], source=log["node"])
        for log in manifest["logs"]
    }


def test_every_node_publishes_a_signed_checkpoint(demo_out: Path, manifest: Manifest) -> None:
    logs = {log["node"]: log for log in manifest["logs"]}
    assert set(logs) == {n["node"] for n in manifest["nodes"]}
    for name, log in logs.items():
        key = LogKey.from_vkey(log["public_key"], source=name)
        signed = open_checkpoint(
            (demo_out / log["checkpoint"]).read_bytes(), key, origin=log["origin"]
        )
        assert signed.checkpoint.size == log["size"] > 0, name
    # the CA nodes logged their certificates, the company nodes their contract and receipts
    assert logs["sakura"]["size"] > logs["jp-scheme"]["size"]


def test_each_sensor_has_its_whole_lifecycle_with_receipts(
    demo_out: Path, manifest: Manifest
) -> None:
    keys = _keys(manifest)
    sensors = [i for i in manifest["identities"] if i.get("batch")]
    records = {r["component"]: r for r in manifest["provenance"]}
    assert len(records) == len(sensors) == 5
    for serial, record in records.items():
        assert record["events"] == LIFECYCLE
        assert record["node"] == "muster" and record["valid"]
        previous = None
        for file, receipt_file in zip(record["statements"], record["receipts"], strict=True):
            statement = SignedStatement.from_json(
                json.loads((demo_out / file).read_text()), source=file
            )
            assert statement.statement.component.id == serial
            assert statement.statement.previous == previous  # an unbroken hash chain
            previous = statement.digest
            receipt = Receipt.from_json(json.loads((demo_out / receipt_file).read_text()))
            signed, entry = receipt.verify(keys[receipt.origin], source=receipt_file)
            assert entry.kind is EntryKind.PROVENANCE
            assert entry.body["digest"] == statement.digest
            assert signed.checkpoint.size > receipt.index
        verification = json.loads((demo_out / record["verification"]).read_text())
        assert verification["valid"] and not verification["failures"]
        assert [e["event"] for e in verification["timeline"]] == LIFECYCLE


def test_the_supplier_log_holds_the_first_four_events(manifest: Manifest, demo_out: Path) -> None:
    record = manifest["provenance"][0]
    origins = [json.loads((demo_out / f).read_text())["origin"] for f in record["receipts"]]
    hayabusa = next(log["origin"] for log in manifest["logs"] if log["node"] == "hayabusa")
    muster = next(log["origin"] for log in manifest["logs"] if log["node"] == "muster")
    assert origins == [hayabusa] * 4 + [muster] * 3


def test_the_revoked_sensor_statement_was_refused_by_both_nodes(manifest: Manifest) -> None:
    revoked = {r["certificate"] for r in manifest["revocations"]}
    victims = [
        i["certificate"]
        for i in manifest["identities"]
        if i.get("batch") and i["certificate"] in revoked
    ]
    assert len(victims) == 1
    refused = [r for p in manifest["provenance"] for r in p.get("refused", [])]
    assert {r["node"] for r in refused} == {"muster", "hayabusa"}
    for r in refused:
        assert "revoked" in r["reason"]


# -- on the nodes served again ------------------------------------------------------------------


@pytest.fixture(scope="module")
def copy(demo_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with served_copy_of(demo_out, tmp_path_factory.mktemp("provenance-copy")) as served:
        yield served


def _home(copy: Path, node: str) -> Path:
    return copy / "nodes" / node


def test_cli_verifies_a_sensor_and_audits_the_logs(copy: Path) -> None:
    env = dict(os.environ)
    result = run_cli(
        "--home",
        str(_home(copy, "muster")),
        "provenance",
        "verify",
        "HPS200-000003",
        cwd=copy,
        env=env,
    )
    assert "valid: 7 statements" in result.stdout
    for node in ("muster", "hayabusa", "sakura"):
        audit = run_cli("--home", str(_home(copy, node)), "log", "verify", cwd=copy, env=env)
        assert "consistent with the stored tree" in audit.stdout
    monitored = run_cli(
        "--home",
        str(_home(copy, "muster")),
        "log",
        "monitor",
        read_manifest(copy)["logs"][1]["url"],
        cwd=copy,
        env=env,
    )
    assert "consistent" in monitored.stdout


def test_checkpoints_in_receipts_are_consistent_with_the_published_ones(
    demo_out: Path, manifest: Manifest, copy: Path
) -> None:
    """An early receipt's checkpoint and the final checkpoint of the same log: the final tree
    extends the early one (checked on the nodes served again, which give the proof)."""
    record = manifest["provenance"][0]
    receipt = Receipt.from_json(json.loads((demo_out / record["receipts"][0]).read_text()))
    log = next(entry for entry in manifest["logs"] if entry["origin"] == receipt.origin)
    key = LogKey.from_vkey(log["public_key"])
    early = open_checkpoint(receipt.checkpoint, key).checkpoint
    final = open_checkpoint((demo_out / log["checkpoint"]).read_bytes(), key).checkpoint
    assert early.size < final.size
    with LogClient(log["url"]) as client:
        proof = client.consistency(early.size, final.size)
    verify_consistency(early.size, final.size, early.root, final.root, proof)
    assert httpx.get(f"{log['url']}/checkpoint", timeout=30).status_code == 200


def _line(copy: Path) -> tuple[FileSigner, list[x509.Certificate]]:
    manifest = read_manifest(copy)
    line = next(i for i in manifest["identities"] if i["holder"] == "HPS Line L1")
    key = load_private_key_pem((copy / line["key"]).read_bytes(), None, source=line["key"])
    chain = [
        x509.load_pem_x509_certificate((copy / line["certificate"]).read_bytes()),
        *x509.load_pem_x509_certificates((copy / line["chain_file"]).read_bytes()),
    ]
    return FileSigner(key), chain


def _hayabusa_tls(copy: Path) -> tuple[str, object]:
    import ssl

    manifest = read_manifest(copy)
    node = next(n for n in manifest["nodes"] if n["node"] == "hayabusa")
    root = next(s["root"] for s in manifest["schemes"] if s["code"] == "jp")
    return node["https_url"], ssl.create_default_context(cafile=str(copy / root))


def test_an_out_of_order_statement_is_refused(copy: Path) -> None:
    """The production line says sensor 4 was tested after it was shipped: the node refuses."""
    signer, chain = _line(copy)
    url, tls = _hayabusa_tls(copy)
    manifest = read_manifest(copy)
    record = next(r for r in manifest["provenance"] if r["component"] == "HPS200-000004")
    shipped = SignedStatement.from_json(
        json.loads((copy / record["statements"][3]).read_text()), source="shipped"
    )
    payload = build_statement(
        shipped.statement.component,
        LifecycleEvent.TESTED,
        details={"result": "pass"},
        previous=shipped,
        claimed_time=shipped.statement.claimed_time,
    )
    late = sign_statement(payload, signer, chain)
    with pytest.raises(InputError, match="tested cannot follow shipped"):
        record_remote(url, late, verify=tls, server_name="localhost")


def test_a_changed_log_entry_is_found(copy: Path) -> None:
    """Someone edits a statement's entry in the customer's database: the log audit names the
    entry, and the provenance check of that sensor fails (exit 3)."""
    env = dict(os.environ)
    home = _home(copy, "muster")
    with sqlite3.connect(home / "trustbridge.db") as db:
        idx, data = db.execute(
            "SELECT idx, data FROM log_entries WHERE kind = 'provenance.statement' "
            "AND subject = 'HPS200-000005' ORDER BY idx LIMIT 1"
        ).fetchone()
        changed = bytes(data).replace(b'"manufactured"', b'"Manufactured"', 1)
        assert changed != bytes(data)
        db.execute("UPDATE log_entries SET data = ? WHERE idx = ?", (changed, idx))
    audit = run_cli("--home", str(home), "log", "verify", cwd=copy, env=env, ok=False)
    assert audit.returncode != 0
    assert f"entry {idx}" in audit.stderr + audit.stdout
    check = run_cli(
        "--home", str(home), "provenance", "verify", "HPS200-000005", cwd=copy, env=env, ok=False
    )
    assert check.returncode == 3
    assert "NOT VALID" in check.stdout


def test_a_sensor_cannot_vouch_for_a_counterfeit(copy: Path) -> None:
    """A genuine sensor's key (of the manufacturer, trusted) signs that a counterfeit part was
    manufactured: the manufacturer's node refuses, only registered equipment may say so."""
    manifest = read_manifest(copy)
    sensor = next(i for i in manifest["identities"] if i.get("batch") and "000002" in i["holder"])
    key = load_private_key_pem((copy / sensor["key"]).read_bytes(), None, source="sensor")
    chain = [
        x509.load_pem_x509_certificate((copy / sensor["certificate"]).read_bytes()),
        *x509.load_pem_x509_certificates((copy / sensor["chain_file"]).read_bytes()),
    ]
    from trustbridge.provenance.statement import Component

    fake = Component(
        serial_number="HPS200-999999",
        model="HPS-200",
        manufacturer="Hayabusa Sensor Components K.K.",
    )
    payload = build_statement(
        fake,
        LifecycleEvent.MANUFACTURED,
        details={},
        previous=None,
        claimed_time=chain[0].not_valid_before_utc,
    )
    url, tls = _hayabusa_tls(copy)
    with pytest.raises(InputError, match="not registered here as production or test equipment"):
        record_remote(
            url,
            sign_statement(payload, FileSigner(key), chain),
            verify=tls,
            server_name="localhost",
        )
