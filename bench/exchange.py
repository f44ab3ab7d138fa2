"""First contact to a signed contract between two nodes, and secure messages into one node.

Setup: the joint demonstrator runs once into a temporary folder, then all ten nodes are served
again as separate processes on loopback (as ``make demo`` leaves them).

Protocol half (``protocol_records``): Muster's node starts a new session with Hayabusa's node
over HTTPS and drives it to a concluded contract: discovery, hello, both presentations and
assessments, the proposal signed by Muster's signatory, the countersignature by Hayabusa's
signatory (on Hayabusa's side, as ``trustbridge contract sign`` does), the archive (B-LTA) and
the conclusion. Each step is timed. Baseline, same run, same homes and keys: the same
cryptographic work in one process without node-to-node HTTP (no TLS, no RFC 9421 signatures,
no envelopes, no session records): both organization identities resolved, both packages made,
opened and assessed, the contract rendered, signed, verified, countersigned, verified,
archived and verified; revocation data, status lists and timestamps come over HTTP from the
trust service nodes in both. Goal (issue 7): the protocol takes at most 3 times as long.

Message half (``message_records``): Hayabusa's test data service sends test reports to Muster's
node under the concluded contract from two senders at once (``--senders``), each one message
after the other over its own pinned HTTPS connection; the rate is the sum of theirs. Each
is sealed (JWS in JWE), sent with an RFC 9421 signature, authenticated, decrypted, checked
against the contract and the Cedar policy, stored with a signed receipt, and the receipt comes
back in a signed envelope. Baseline, same run: ``seal_message`` + ``open_message`` + the same
database write (``ExchangeService.record_message`` into a fresh home), in one process. Goal
(issue 7): at least 0.25 times the baseline's rate.

``python -m bench.exchange [--messages N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from rich.console import Console

from bench._common import (
    Record,
    machine_summary,
    print_table,
    rate_record,
    time_record,
    write_results,
)
from trustbridge.demo.manifest import read_manifest
from trustbridge.demo.scenario import run_demo, serve_again
from trustbridge.exchange.contract import (
    ContractTerms,
    archive_contract,
    render_contract,
    sign_contract,
)
from trustbridge.exchange.messages import open_message, seal_message
from trustbridge.exchange.protocol import Challenge, Step
from trustbridge.home import Home
from trustbridge.home.exchange import fetch_crls, pdf_certificates, signer_chains
from trustbridge.node.onboard import PartnerClient, http_timestamper, onboard
from trustbridge.node.partner import JOSE, MESSAGES
from trustbridge.pki.keys import load_private_key_pem
from trustbridge.pki.signers import FileSigner
from trustbridge.trust.paths import HttpFetcher

PROTOCOL_GOAL = 1 / 3
MESSAGE_GOAL = 0.25
PORT_BASE = 47000


@contextmanager
def cast(folder: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The demo's output with all its nodes served again."""
    out = folder / "demo-out"
    run_demo(out, console=Console(file=io.StringIO()), port_base=PORT_BASE)
    manifest = read_manifest(out)
    with serve_again(out, log_suffix="bench"):
        yield out, dict(manifest)


def _identity(out: Path, manifest: dict[str, Any], holder: str) -> tuple[FileSigner, list[Any]]:
    entry = next(
        i
        for i in manifest["identities"]
        if i["holder"] == holder and i.get("purpose", "identity") == "identity"
    )
    key = load_private_key_pem((out / entry["key"]).read_bytes(), None, source=holder)
    chain = [x509.load_pem_x509_certificate((out / entry["certificate"]).read_bytes())]
    chain += x509.load_pem_x509_certificates((out / entry["chain_file"]).read_bytes())
    return FileSigner(key), chain


def _terms(out: Path, manifest: dict[str, Any], contract_id: str) -> ContractTerms:
    data = json.loads((out / manifest["contract"]["terms"]).read_text())
    data["id"] = contract_id
    return ContractTerms.parse(data, source=contract_id)


def protocol_once(
    out: Path, manifest: dict[str, Any], muster: Home, hayabusa: Home
) -> dict[str, float]:
    """One session from discovery to the concluded contract; seconds per step."""
    url = next(n for n in manifest["nodes"] if n["node"] == "hayabusa")["https_url"]
    terms = _terms(out, manifest, f"BENCH-{secrets.token_hex(4)}")
    signatory = _identity(out, manifest, "Klaus Weber")
    tanaka = _identity(out, manifest, "Yuki Tanaka")
    times: dict[str, float] = {}
    started = time.perf_counter()
    result = onboard(muster, partner_url=url, until=Step.DISCOVER)
    times["discover"] = time.perf_counter() - started
    session = result.session.id
    for step in (Step.HELLO, Step.PRESENTATION, Step.PROFILE, Step.PROPOSE):
        started = time.perf_counter()
        onboard(muster, session_id=session, terms=terms, signatory=signatory, until=step)
        times[step.value] = time.perf_counter() - started
    started = time.perf_counter()
    tsa = hayabusa.exchange.settings().tsa
    assert tsa is not None
    hayabusa.exchange.countersign(
        session, signer=tanaka[0], chain=tanaka[1], timestamp=http_timestamper(tsa)
    )
    onboard(muster, session_id=session, until=Step.COUNTERSIGN)
    times["countersign"] = time.perf_counter() - started
    started = time.perf_counter()
    final = onboard(muster, session_id=session)
    times["conclude"] = time.perf_counter() - started
    if final.session.state != "concluded":
        raise SystemExit(f"the session ended {final.session.state}: {final.waiting}")
    return times


def in_process_once(out: Path, manifest: dict[str, Any], muster: Home, hayabusa: Home) -> float:
    """The same cryptographic work in one process, without node-to-node HTTP."""
    terms = _terms(out, manifest, f"BENCH-{secrets.token_hex(4)}")
    signatory = _identity(out, manifest, "Klaus Weber")
    tanaka = _identity(out, manifest, "Yuki Tanaka")
    m_tsa, h_tsa = muster.exchange.settings().tsa, hayabusa.exchange.settings().tsa
    assert m_tsa is not None and h_tsa is not None
    started = time.perf_counter()
    m_signer, m_chain = muster.exchange.identity()
    h_signer, h_chain = hayabusa.exchange.identity()
    muster_sees, _ = muster.exchange.resolve_party(h_chain)
    hayabusa_sees, _ = hayabusa.exchange.resolve_party(m_chain)
    ours = Challenge.issue(muster.exchange.organization(), muster.now())
    theirs = Challenge.issue(hayabusa.exchange.organization(), hayabusa.now())
    package = hayabusa.credentials.package(audience=ours.audience, nonce=ours.nonce)
    muster.exchange.assess(package, challenge=ours, partner=muster_sees, source="bench")
    package = muster.credentials.package(audience=theirs.audience, nonce=theirs.nonce)
    hayabusa.exchange.assess(package, challenge=theirs, partner=hayabusa_sees, source="bench")
    pdf = sign_contract(
        render_contract(terms),
        signer=signatory[0],
        chain=signatory[1],
        timestamp=http_timestamper(m_tsa),
    )
    hayabusa.exchange.verify_contract(pdf)
    pdf = sign_contract(pdf, signer=tanaka[0], chain=tanaka[1], timestamp=http_timestamper(h_tsa))
    hayabusa.exchange.verify_contract(pdf)
    muster.exchange.verify_contract(pdf)
    _, others, _ = muster.exchange.contract_trust(pdf)
    certificates = [c for chain in signer_chains(pdf) for c in chain] + others
    certificates += [c for c in pdf_certificates(pdf) if c not in certificates]
    archived = archive_contract(
        pdf,
        timestamp=http_timestamper(m_tsa),
        certificates=certificates,
        crls=fetch_crls(certificates, HttpFetcher()),
    )
    muster.exchange.verify_contract(archived)
    hayabusa.exchange.verify_contract(archived)
    _ = (m_signer, h_signer)
    return time.perf_counter() - started


def protocol_records(out: Path, manifest: dict[str, Any], rounds: int) -> list[Record]:
    muster = Home.open(out / "nodes" / "muster")
    hayabusa = Home.open(out / "nodes" / "hayabusa")
    try:
        ours_runs: list[dict[str, float]] = []
        base_runs: list[float] = []
        for _ in range(rounds):  # taking turns
            ours_runs.append(protocol_once(out, manifest, muster, hayabusa))
            base_runs.append(in_process_once(out, manifest, muster, hayabusa))
    finally:
        muster.close()
        hayabusa.close()
    totals = sorted(sum(r.values()) for r in ours_runs)
    ours = totals[len(totals) // 2]
    base = sorted(base_runs)[len(base_runs) // 2]
    print("protocol steps (median seconds):")
    for step in ours_runs[0]:
        values = sorted(r[step] for r in ours_runs)
        print(f"  {step:14} {values[len(values) // 2]:.3f}")
    return [
        time_record(
            "first contact to concluded contract",
            unit="s",
            ours=ours,
            baseline=base,
            baseline_name="the same calls in one process without node-to-node HTTP: "
            "resolve_party x2, credentials.package + ExchangeService.assess x2, render_contract, "
            "sign_contract x2, verify_contract x5, archive_contract",
            goal=PROTOCOL_GOAL,
        )
    ]


def message_records(
    out: Path, manifest: dict[str, Any], count: int, folder: Path, senders: int = 2
) -> list[Record]:
    hayabusa = Home.open(out / "nodes" / "hayabusa")
    muster_url = next(n for n in manifest["nodes"] if n["node"] == "muster")["https_url"]
    contract = manifest["contract"]["id"]
    sender, sender_chain = _identity(out, manifest, "Hayabusa Test Data Service 1.0.0")
    content = json.dumps({"type": "end-of-line-test-report", "verdict": "pass"}).encode()
    muster_id = "VATDE-123456789"

    def seal(recipient: x509.Certificate, at: datetime) -> str:
        """One test report, the same for ours and the baseline."""
        return seal_message(
            content,
            media_type="application/json",
            name="test report",
            element="test-report",
            purpose="quality-assurance",
            contract=contract,
            sender=sender,
            sender_chain=sender_chain,
            recipient=recipient,
            audience=muster_id,
            at=at,
        )

    def sender_loop(count: int, ready: threading.Barrier, rates: list[float]) -> None:
        with PartnerClient(
            muster_url, home=hayabusa, signer=sender, chain=sender_chain, partner=muster_id
        ) as client:
            recipient = client.discover().agreement[0]

            def send() -> None:
                token = seal(recipient, hayabusa.now())
                answer = client.call("POST", MESSAGES, raw=token.encode(), content_type=JOSE)
                if not answer.body.get("accepted"):
                    raise SystemExit(f"a message was refused: {answer.body}")

            send()  # warm: the receiver's resolver cache, the connection
            ready.wait()
            rates.append(_rate(send, count))

    try:
        # Two senders, each on its own connection, as a supplier's test stations would send.
        rates: list[float] = []
        ready = threading.Barrier(senders)
        threads = [
            threading.Thread(target=sender_loop, args=(count // senders, ready, rates))
            for _ in range(senders)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(rates) != senders:
            raise SystemExit("a sender failed")
        ours = sum(rates)
    finally:
        hayabusa.close()
    # Baseline: the same sealing, opening and database write, in one process.
    muster = Home.open(out / "nodes" / "muster")
    key, agreement = muster.exchange.agreement()
    muster.close()
    scratch = Home.init(
        folder / "scratch", node_name="scratch", host="127.0.0.1", http_port=1, https_port=2
    )
    at = scratch.now()

    def raw() -> None:
        token = seal(agreement[0], at)
        message = open_message(
            token, recipient_key=key, recipient_certificate=agreement[0], audience=muster_id, at=at
        )
        scratch.exchange.record_message(
            message_id=message.id,
            direction="in",
            receiver_org=muster_id,
            accepted=True,
            reason="accepted",
            token=token,
            token_digest=message.token_digest,
            message=message,
            receipt=token,
        )

    raw()
    baseline = _rate(raw, count)
    scratch.close()
    return [
        rate_record(
            "accepted messages per second, one receiving node",
            unit="messages/s",
            ours=ours,
            baseline=baseline,
            baseline_name="seal_message + open_message + ExchangeService.record_message "
            "(SQLite), one process, one loop",
            goal=MESSAGE_GOAL,
        )
    ]


def _rate(fn: Callable[[], None], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        fn()
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", type=int, default=2)
    args = parser.parse_args(argv)
    print(machine_summary())
    with tempfile.TemporaryDirectory() as tmp, cast(Path(tmp)) as (out, manifest):
        records = protocol_records(out, manifest, args.rounds)
        records += message_records(out, manifest, args.messages, Path(tmp), args.senders)
    print_table(records, title="exchange: first contact and secure messages")
    path = write_results("exchange", records)
    print(f"results -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
