"""Steps 5 to 7 of the demonstrator between the two company nodes, checked from the output folder
with independent tools (poppler's pdfsig, openssl ts, an NSS database), and the failure paths on
the nodes served again: kill -9 between every pair of steps, replay, reordering, an expired
challenge, a revoked partner, insufficient evidence, an altered contract, a signatory without
authority, a sender that is no party to the contract."""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import cms
from cryptography import x509
from pyhanko.pdf_utils.reader import PdfFileReader

from tests.integration.conftest import served_copy_of, strict_policy
from tests.tools import openssl, run_cli
from trustbridge.clock import SystemClock
from trustbridge.demo.manifest import Manifest, read_manifest
from trustbridge.demo.scenario import start_entry
from trustbridge.errors import TrustbridgeError
from trustbridge.exchange.contract import (
    ContractSignatureError,
    ContractTerms,
    render_contract,
    sign_contract,
)
from trustbridge.exchange.messages import seal_message, verify_receipt
from trustbridge.exchange.protocol import Challenge, ExchangeError, Step, StepOrderError
from trustbridge.home import Home
from trustbridge.home.exchange import ExchangeSettings
from trustbridge.node.client import SignedClient
from trustbridge.node.httpsig import sign_request
from trustbridge.node.launcher import NodeProcess, stop_node, wait_ready
from trustbridge.node.onboard import PartnerClient, RefusedError, http_timestamper, onboard
from trustbridge.node.partner import MESSAGES, SESSIONS
from trustbridge.pki.keys import load_private_key_pem
from trustbridge.pki.signers import FileSigner

MUSTER = "Muster Maschinenbau GmbH"
HAYABUSA = "Hayabusa Sensor Components K.K."
MUSTER_ID = "VATDE-123456789"
HAYABUSA_ID = "NTRJP-3180001012345"


@pytest.fixture(scope="module")
def manifest(demo_out: Path) -> Manifest:
    return read_manifest(demo_out)


# -- what the demo left behind ---------------------------------------------------------------


def test_the_session_ran_every_step_over_the_wire(manifest: Manifest) -> None:
    (session,) = manifest["sessions"]
    assert (session["initiator"], session["responder"]) == (MUSTER, HAYABUSA)
    assert session["steps"] == ["discover", "hello", "presentation", "profile"]
    assert session["formats"]["credentials"] == "dc+sd-jwt"
    statuses = {s["step"]: s["status"] for s in manifest["steps"]}
    assert statuses[5] == statuses[6] == statuses[7] == "done"
    assert manifest["contract"]["session"] == session["id"]


def _nss(tmp: Path, manifest: Manifest, out: Path) -> Path:
    if shutil.which("certutil") is None or shutil.which("pdfsig") is None:
        pytest.skip("pdfsig or certutil is missing (setup installs them)")
    db = tmp / "nss"
    db.mkdir()
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{db}"], check=True)
    for scheme in manifest["schemes"]:
        subprocess.run(
            [
                "certutil",
                "-A",
                "-n",
                scheme["code"],
                "-t",
                "CT,C,C",
                "-d",
                f"sql:{db}",
                "-i",
                str(out / scheme["root"]),
            ],
            check=True,
        )
    return db


def test_both_signatures_validate_with_pdfsig(
    demo_out: Path, manifest: Manifest, tmp_path: Path
) -> None:
    contract = manifest["contract"]
    db = _nss(tmp_path, manifest, demo_out)
    result = subprocess.run(
        ["pdfsig", "-no-ocsp", "-nssdir", f"sql:{db}", str(demo_out / contract["pdf"])],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout
    # Two signatures and the document timestamp; the signatures valid and their signers trusted.
    assert output.count("Signature is Valid.") >= 2, output
    assert "Klaus Weber" in output and "Yuki Tanaka" in output, output
    assert output.count("Certificate is Trusted.") >= 2, output
    assert "Signature is Invalid" not in output


def test_every_timestamp_token_verifies_with_openssl(
    demo_out: Path, manifest: Manifest, tmp_path: Path
) -> None:
    """Each signature timestamp over its signature value, each document timestamp over the
    document's signed byte ranges, checked by openssl against the national roots."""
    contract = manifest["contract"]
    roots = tmp_path / "roots.pem"
    roots.write_bytes(b"".join((demo_out / s["root"]).read_bytes() for s in manifest["schemes"]))
    reader = PdfFileReader(BytesIO((demo_out / contract["pdf"]).read_bytes()), strict=False)
    checked = 0
    for index, signature in enumerate(reader.embedded_signatures):
        token = tmp_path / f"token-{index}.tsr"
        binding: tuple[str, str | Path]
        if signature.sig_object.get("/Type") == "/DocTimeStamp":
            token.write_bytes(cms.ContentInfo.load(bytes(signature.sig_object["/Contents"])).dump())
            binding = ("-digest", signature.compute_digest("sha256").hex())
        else:
            (info,) = signature.signed_data["signer_infos"]
            (attribute,) = [
                a
                for a in info["unsigned_attrs"]
                if a["type"].native == "signature_time_stamp_token"
            ]
            token.write_bytes(attribute["values"][0].dump())
            data = tmp_path / f"signature-{index}.bin"
            data.write_bytes(info["signature"].native)
            binding = ("-data", data)
        result = openssl("ts", "-verify", "-token_in", "-in", token, *binding, "-CAfile", roots)
        assert "Verification: OK" in result.stdout, (index, result.stdout + result.stderr)
        checked += 1
    # Two signature timestamps and at least one document timestamp.
    assert checked >= 3
    assert len(contract["timestamps"]) == checked


def test_pyhanko_reports_only_allowed_modifications(demo_out: Path, manifest: Manifest) -> None:
    report = json.loads((demo_out / manifest["contract"]["report"]).read_text())
    assert report["complete"] and report["archived"] and report["valid"]
    by_field = {s["field"]: s for s in report["signatures"]}
    assert set(by_field) == {"customer", "supplier"}
    # After the customer signed: the supplier's signature (form filling) and validation data;
    # after the supplier signed: validation data and the document timestamp only.
    assert by_field["customer"]["modification_level"] == "form-filling"
    assert by_field["supplier"]["modification_level"] == "lta-updates"
    assert all(s["authorized"] and s["bottom_line"] for s in report["signatures"])
    assert all(s["timestamp_valid"] for s in report["signatures"])


def test_messages_and_receipts(demo_out: Path, manifest: Manifest) -> None:
    messages = manifest["messages"]
    accepted = [m for m in messages if m["accepted"]]
    refused = [m for m in messages if not m["accepted"]]
    assert {m["element"] for m in accepted} == {"test-report", "firmware-bom"}
    (brochure,) = refused
    assert brochure["purpose"] == "marketing"
    assert "does not allow test-report for the purpose 'marketing'" in str(brochure["reason"])
    for message in messages:
        receipt = verify_receipt(
            (demo_out / str(message["receipt"])).read_text().strip(), at=SystemClock().now()
        )
        assert receipt.accepted is message["accepted"]
        assert receipt.message_id == message["id"]
        assert receipt.receiver == MUSTER_ID
    reads = {a["element"]: a for a in manifest["access"]}
    assert reads["test-report"]["allowed"] is True
    assert reads["firmware-bom"]["allowed"] is False


# -- on the nodes, served again --------------------------------------------------------------


class _Cast:
    """The served copy: its homes (opened in this process), and its two company nodes."""

    def __init__(self, copy: Path) -> None:
        self.copy = copy
        self.manifest = read_manifest(copy)
        self.nodes = {n["node"]: n for n in self.manifest["nodes"]}
        self.homes: dict[str, Home] = {}
        self.processes: dict[str, NodeProcess] = {}

    def home(self, name: str) -> Home:
        if name not in self.homes:
            self.homes[name] = Home.open(self.copy / "nodes" / name)
        return self.homes[name]

    def url(self, name: str) -> str:
        return str(self.nodes[name]["https_url"])

    def identity(self, holder: str, purpose: str = "identity") -> tuple[FileSigner, list[Any]]:
        entry = next(
            i
            for i in self.manifest["identities"]
            if i["holder"] == holder and i.get("purpose", "identity") == purpose
        )
        key = load_private_key_pem((self.copy / entry["key"]).read_bytes(), None, source=holder)
        chain = [x509.load_pem_x509_certificate((self.copy / entry["certificate"]).read_bytes())]
        chain += x509.load_pem_x509_certificates((self.copy / entry["chain_file"]).read_bytes())
        return FileSigner(key), chain

    def close(self) -> None:
        for process in self.processes.values():
            stop_node(process)
        for home in self.homes.values():
            home.close()


@pytest.fixture(scope="module")
def cast(demo_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Cast]:
    with served_copy_of(demo_out, tmp_path_factory.mktemp("exchange-copy")) as copy:
        cast = _Cast(copy)
        try:
            yield cast
        finally:
            cast.close()


def _terms(cast: _Cast, contract_id: str) -> ContractTerms:
    data = json.loads((cast.copy / cast.manifest["contract"]["terms"]).read_text())
    data["id"] = contract_id
    return ContractTerms.parse(data, source=f"terms {contract_id}")


def _kill_and_restart(cast: _Cast, name: str) -> None:
    """kill -9 the node serving ``name`` (whichever process it is), then serve it again."""
    node = cast.nodes[name]
    pid = _pid_on(node["http_url"])
    os.kill(pid, signal.SIGKILL)
    process = start_entry(cast.copy, node, log_suffix="restarted")
    cast.processes[name] = process
    wait_ready(process, timeout=60)


def _pid_on(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(
        ["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split("pid=")[1].split(",")[0])


def test_kill_9_between_every_pair_of_steps(cast: _Cast) -> None:
    muster, hayabusa = cast.home("muster"), cast.home("hayabusa")
    signer, chain = cast.identity("Klaus Weber")
    terms = _terms(cast, "MM-HSC-KILL-9")
    result = onboard(muster, partner_url=cast.url("hayabusa"), until=Step.DISCOVER)
    session = result.session.id
    steps = [Step.HELLO, Step.PRESENTATION, Step.PROFILE, Step.PROPOSE, Step.COUNTERSIGN]
    for step in steps:
        _kill_and_restart(cast, "hayabusa")
        _kill_and_restart(cast, "muster")
        if step is Step.COUNTERSIGN:
            tanaka, tanaka_chain = cast.identity("Yuki Tanaka")
            tsa = hayabusa.exchange.settings().tsa
            assert tsa is not None
            hayabusa.exchange.countersign(
                session, signer=tanaka, chain=tanaka_chain, timestamp=http_timestamper(tsa)
            )
        result = onboard(
            muster, session_id=session, terms=terms, signatory=(signer, chain), until=step
        )
        assert step.value in result.session.steps, (step, result.waiting, result.session)
    _kill_and_restart(cast, "hayabusa")
    result = onboard(muster, session_id=session)
    assert result.session.state == "concluded"
    assert hayabusa.exchange.session(session).state == "concluded"
    assert muster.exchange.contract(session) == hayabusa.exchange.contract(session)


def test_a_retry_gets_the_same_answer_a_replay_and_a_reordered_step_are_refused(
    cast: _Cast,
) -> None:
    muster = cast.home("muster")
    result = onboard(muster, partner_url=cast.url("hayabusa"), until=Step.HELLO)
    session = result.session.id
    signer, chain = muster.exchange.identity()
    # The same signed request twice: the second is a replay (its nonce was seen).
    url = cast.url("hayabusa") + f"{SESSIONS}/{session}/presentation"

    body = json.dumps({"challenge": Challenge.issue(MUSTER_ID, muster.now()).to_json()}).encode()
    headers = sign_request(
        method="POST", url=url, body=body, signer=signer, chain=chain, at=muster.now()
    )
    with httpx.Client(verify=False) as http:  # noqa: S501 - TLS is not what this checks
        first = http.post(url, content=body, headers=headers)
        second = http.post(url, content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert second.status_code == 401 and "replayed" in second.json()["error"]
    # A step out of order: the contract before the profile.
    with PartnerClient(cast.url("hayabusa"), home=muster, signer=signer, chain=chain) as client:
        client.discover()
        with pytest.raises(StepOrderError, match="came before step profile"):
            client.call("POST", f"{SESSIONS}/{session}/contract", {"pdf": "JVBERi0="})


def test_an_expired_challenge_is_refused(cast: _Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    muster = cast.home("muster")
    result = onboard(muster, partner_url=cast.url("hayabusa"), until=Step.PRESENTATION)
    session = result.session.id
    # Eleven minutes later on both nodes: the challenge of the hello (ten minutes) has expired.
    monkeypatch.setenv("TRUSTBRIDGE_CLOCK_OFFSET", "660")
    _kill_and_restart(cast, "hayabusa")
    later = Home.open(cast.copy / "nodes" / "muster")
    try:
        with pytest.raises(ExchangeError, match="expired"):
            onboard(later, session_id=session)
    finally:
        later.close()
        monkeypatch.delenv("TRUSTBRIDGE_CLOCK_OFFSET")
        _kill_and_restart(cast, "hayabusa")


def test_insufficient_evidence_ends_the_session_rejected(cast: _Cast, tmp_path: Path) -> None:
    muster = cast.home("muster")
    strict = strict_policy(tmp_path / "strict.yaml")
    settings = muster.exchange.settings()
    muster.exchange.configure(
        ExchangeSettings(policy=str(strict), min_level="itg-loa2", tsa=settings.tsa)
    )
    try:
        result = onboard(muster, partner_url=cast.url("hayabusa"))
    finally:
        muster.exchange.configure(settings)
    assert result.session.state == "rejected"
    reason = result.session.reason or ""
    assert "our assessment rejected Hayabusa" in reason
    # The decision's own words (the score below the threshold), not a reason record.
    assert "95" in reason and "'kind'" not in reason, reason
    assert "presentation" in result.session.steps and "profile" not in result.session.steps


def test_an_altered_contract_and_a_signatory_without_authority_are_refused(cast: _Cast) -> None:
    muster = cast.home("muster")
    result = onboard(muster, partner_url=cast.url("hayabusa"), until=Step.PROFILE)
    session = result.session.id
    terms = _terms(cast, "MM-HSC-ALTERED")
    # The software identity is no authorized signatory: refused before anything is signed.
    software, software_chain = cast.identity("Muster Quality Gateway 1.0.0")
    with pytest.raises(ContractSignatureError, match="not a person identity"):
        onboard(muster, session_id=session, terms=terms, signatory=(software, software_chain))
    # A proposal altered after the first signature: the partner refuses it.
    signer, chain = cast.identity("Klaus Weber")
    tsa = muster.exchange.settings().tsa
    assert tsa is not None
    signed = sign_contract(
        render_contract(terms), signer=signer, chain=chain, timestamp=http_timestamper(tsa)
    )
    # One byte of the signed revision changed (inside the signed byte range, before the
    # signature's /Contents): the signature no longer covers what the document says.
    position = signed.index(b"/Contents <") // 2
    altered = signed[:position] + bytes([signed[position] ^ 0x01]) + signed[position + 1 :]
    org, org_chain = muster.exchange.identity()
    with PartnerClient(cast.url("hayabusa"), home=muster, signer=org, chain=org_chain) as client:
        client.discover()
        with pytest.raises(TrustbridgeError):
            client.call(
                "POST",
                f"{SESSIONS}/{session}/contract",
                {"pdf": base64.b64encode(altered).decode()},
            )
    assert cast.home("hayabusa").exchange.session(session).state == "assessed"


def _refused_test_report(
    cast: _Cast, *, sender: str, via: str, to: str, audience: str, match: str
) -> RefusedError:
    """Send a test report under the demo's contract as ``sender`` (an identity of the demo),
    resolving with the home ``via``, to the node ``to``; it must be refused with ``match``."""
    home = cast.home(via)
    signer, chain = cast.identity(sender)
    with PartnerClient(cast.url(to), home=home, signer=signer, chain=chain) as client:
        token = seal_message(
            b'{"verdict": "pass"}',
            media_type="application/json",
            name="a test report",
            element="test-report",
            purpose="quality-assurance",
            contract=cast.manifest["contract"]["id"],
            sender=signer,
            sender_chain=chain,
            recipient=client.discover().agreement[0],
            audience=audience,
            at=home.now(),
        )
        with pytest.raises(RefusedError, match=match) as refused:
            client.call("POST", MESSAGES, raw=token.encode(), content_type="application/jose")
    return refused.value


def test_a_message_from_a_non_party_is_refused_with_a_receipt(cast: _Cast) -> None:
    # Nordsee's organization identity is real and trusted, but no party to the contract.
    refused = _refused_test_report(
        cast,
        sender="Nordsee Certification GmbH",
        via="hayabusa",
        to="muster",
        audience=MUSTER_ID,
        match="no concluded contract",
    )
    assert refused.receipt is not None
    receipt = verify_receipt(refused.receipt, at=cast.home("hayabusa").now())
    assert receipt.accepted is False


def test_data_from_the_wrong_party_is_refused(cast: _Cast) -> None:
    """Test reports come from the supplier under the contract: the customer cannot inject one."""
    _refused_test_report(
        cast,
        sender="Muster Quality Gateway 1.0.0",
        via="muster",
        to="hayabusa",
        audience=HAYABUSA_ID,
        match="comes from the supplier",
    )


def test_a_revoked_partner_is_refused_in_the_middle_of_the_session(cast: _Cast) -> None:
    muster = cast.home("muster")
    result = onboard(muster, partner_url=cast.url("hayabusa"), until=Step.HELLO)
    session = result.session.id
    # Sakura's registration officer revokes Hayabusa's organization identity.
    entry = next(
        i
        for i in cast.manifest["identities"]
        if i["holder"] == HAYABUSA and i.get("purpose", "identity") == "identity"
    )
    officer, officer_chain = cast.identity("Haruto Sato")
    sakura = cast.home("sakura")
    with SignedClient(
        cast.url("sakura"),
        signer=officer,
        chain=officer_chain[:1],
        trust=sakura.path / "tls" / "anchor.pem",
    ) as client:
        client.request(
            "POST",
            f"/api/v1/certificates/{entry['serial']}/revoke",
            body={"reason": "key-compromise"},
            params={"ca": entry["ca"]},
        )
    with pytest.raises(ExchangeError, match="not trusted"):
        onboard(muster, session_id=session)
    assert muster.exchange.session(session).state == "opened"


def test_sessions_contracts_and_messages_through_the_cli(cast: _Cast, tmp_path: Path) -> None:
    home = str(cast.copy / "nodes" / "muster")
    env = dict(os.environ)

    def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli("--home", home, *args, cwd=tmp_path, env=env, ok=ok)

    sessions = json.loads(cli("session", "list", "--json").stdout)
    assert any(s["state"] == "concluded" for s in sessions)
    messages = json.loads(cli("message", "list", "--json").stdout)
    assert sum(1 for m in messages if m["accepted"]) >= 2
    pdf = str(cast.copy / cast.manifest["contract"]["pdf"])
    assert json.loads(cli("contract", "verify", pdf, "--json").stdout)["complete"] is True
    bad = cli("contract", "verify", str(tmp_path / "missing.pdf"), ok=False)
    assert bad.returncode == 2 and "missing.pdf" in bad.stderr


# -- the company node's web UI ------------------------------------------------------------


def _ui_client(cast: _Cast, holder: str, work: Path) -> httpx.Client:
    """An HTTPS client to Muster's node presenting ``holder``'s person identity (and chain)."""
    entry = next(i for i in cast.manifest["identities"] if i["holder"] == holder)
    bundle = work / f"{holder.replace(' ', '-')}.pem"
    bundle.write_bytes(
        (cast.copy / entry["certificate"]).read_bytes()
        + (cast.copy / entry["chain_file"]).read_bytes()
    )
    context = ssl.create_default_context()
    context.check_hostname = False  # the company node's TLS identity is resolved, not named
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(bundle, cast.copy / entry["key"])
    return httpx.Client(base_url=cast.url("muster"), verify=context, timeout=60)


def test_people_of_the_company_see_its_business_pages_others_do_not(
    cast: _Cast, tmp_path: Path
) -> None:
    """On a company node (no CA of its own) a person of its own organization logs in to the web
    UI by client certificate and sees partners and contracts; people of other organizations
    do not."""
    with _ui_client(cast, "Klaus Weber", tmp_path) as klaus:
        page = klaus.get("/ui/partners")
        assert page.status_code == 200, page.text
        assert HAYABUSA in page.text
        assert "Klaus Weber" in page.text
        contracts = klaus.get("/ui/contracts")
        assert contracts.status_code == 200
        assert cast.manifest["contract"]["id"] in contracts.text
        # A member reads the business pages, not the staff pages of a trust service provider.
        assert klaus.get("/ui/requests").status_code == 403
    # A German person of another organization: resolved, but not one of Muster's people.
    with _ui_client(cast, "Anna Schmidt", tmp_path) as anna:
        refused = anna.get("/ui/partners")
        assert refused.status_code == 401
        assert f"not to this node's organization {MUSTER_ID}" in html.unescape(refused.text)
    # The partner's signatory: the node's TLS layer does not even accept the certificate (it
    # accepts client certificates under the node's own anchors only).
    with _ui_client(cast, "Yuki Tanaka", tmp_path) as yuki, pytest.raises(httpx.TransportError):
        yuki.get("/ui/partners")
    with httpx.Client(base_url=cast.url("muster"), verify=False, timeout=60) as anonymous:  # noqa: S501
        assert anonymous.get("/ui/partners").status_code == 401
