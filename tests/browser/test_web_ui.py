"""The web UI in headless Chromium: log in with a client certificate, approve, reject, roles, log.

A real node process serves the reference home; the browser presents the officer's (or the
operator's) person identity as TLS client certificate (Playwright's ``client_certificates``) and
the officer's key file is picked with ``set_input_files``: the page signs the decision with
WebCrypto. Screenshots are written to the artifacts folder; ``docs/img/ui-requests.png`` and
``docs/img/ui-log.png`` (the README's) are written where missing, and rewritten with
``TRUSTBRIDGE_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from playwright.sync_api import Browser, Page, expect

from tests.homes import MUSTER, PASSPHRASE_ENV, Holder, new_holder
from tests.node.conftest import Node
from trustbridge.home import Home
from trustbridge.home.config import SecretSource
from trustbridge.home.records import RequestInfo
from trustbridge.pki.ca import certificate_fingerprint
from trustbridge.pki.keys import private_key_pem

from .conftest import needs_chromium

pytestmark = needs_chromium

T = TypeVar("T")
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
KEY_PASSPHRASE = "officer key passphrase"
VIEWPORT = {"width": 1280, "height": 860}


@dataclass(frozen=True)
class Credentials:
    """A person's TLS client certificate (followed by its issuing CA's) and key files."""

    chain: Path
    key: Path
    encrypted_key: Path


def with_home(node: Node, work: Callable[[Home], T]) -> T:
    """``work`` on the served home, opened beside the running node (both on its database).

    In a thread of its own: Playwright's sync API keeps an event loop running in this one, and
    the home's path validation runs one of its own.
    """

    def run() -> T:
        home = Home.open(node.home_path)
        try:
            return work(home)
        finally:
            home.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def credentials(node: Node, name: str, holder: Holder) -> Credentials:
    folder = node.work / "browser"
    folder.mkdir(exist_ok=True)
    certificate = holder.certificate
    assert certificate is not None
    issuing = with_home(
        node,
        lambda home: home.chain_of(
            home.certificate_by_fingerprint(certificate_fingerprint(certificate)).ca
        )[0],
    )
    files = Credentials(folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.enc.key")
    # The TLS layer of the node knows only the roots: the client sends its issuing CA too.
    files.chain.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (certificate, issuing)))
    files.key.write_bytes(private_key_pem(holder.key))
    files.encrypted_key.write_bytes(private_key_pem(holder.key, KEY_PASSPHRASE.encode()))
    return files


@pytest.fixture(scope="module")
def officer(node: Node) -> Credentials:
    return credentials(node, "officer", node.officer)


@pytest.fixture(scope="module")
def operator(node: Node) -> Credentials:
    return credentials(node, "operator", node.operator)


def pending(node: Node, name: str) -> str:
    """A pending organization request in the served home."""
    result = with_home(
        node,
        lambda home: home.submit_request(
            ca="ids",
            subject=replace(MUSTER, name=name),
            level="de-high",
            csr_data=new_holder().csr(),
        ),
    )
    assert isinstance(result, RequestInfo)
    return result.id


def state_of(node: Node, request_id: str) -> str:
    return with_home(node, lambda home: home.request(request_id).state)


@contextmanager
def browsing(
    chromium: Browser, node: Node, person: Credentials | None, seen: list[str]
) -> Iterator[Page]:
    """A page of a fresh browser context, presenting ``person``'s certificate (or none);
    every URL the page loads is appended to ``seen``."""
    certificates = (
        [{"origin": node.https, "certPath": str(person.chain), "keyPath": str(person.key)}]
        if person is not None
        else []
    )
    context = chromium.new_context(
        ignore_https_errors=True,
        viewport=VIEWPORT,  # type: ignore[arg-type]
        client_certificates=certificates,  # type: ignore[arg-type]
    )
    try:
        page = context.new_page()
        page.on("request", lambda request: seen.append(request.url))
        yield page
    finally:
        context.close()


def shoot(page: Page, artifacts: Path, name: str, *, docs: str | None = None) -> None:
    """A full-page screenshot as test artifact; with ``docs``, also one for the README."""
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    if docs is None:
        return
    target = DOCS_IMAGES / docs
    if target.exists() and os.environ.get("TRUSTBRIDGE_UPDATE_SCREENSHOTS") != "1":
        return
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)


def only_the_node(seen: list[str], node: Node) -> None:
    """The pages loaded nothing from anywhere but the node (no external resource)."""
    foreign = [url for url in seen if not url.startswith((node.https, "data:"))]
    assert not foreign, foreign


def decide(
    page: Page,
    node: Node,
    request_id: str,
    *,
    choice: str,
    reason: str,
    key: Path,
    passphrase: str = "",
) -> None:
    """Open the request, fill the decision panel, prepare the statement, sign and send."""
    page.goto(f"{node.https}/ui/requests/{request_id}")
    page.check(f"#decide input[value={choice}]")
    page.fill("#reason", reason)
    page.set_input_files("#key-file", str(key))
    if passphrase:
        page.fill("#key-passphrase", passphrase)
    page.click("#prepare")
    expect(page.locator("#statement-text")).to_contain_text(request_id)
    expect(page.locator("#statement-text")).to_contain_text(f'"decision": "{choice}"')


def test_an_officer_logs_in_with_a_client_certificate_and_approves_a_request(
    chromium: Browser, node: Node, officer: Credentials, operator: Credentials, artifacts: Path
) -> None:
    approve = pending(node, "Browser Approve GmbH")
    reject = pending(node, "Browser Reject GmbH")
    untouched = pending(node, "Browser Wrong Key GmbH")
    seen: list[str] = []

    # Without a certificate: public pages, and a page that says how to log in.
    with browsing(chromium, node, None, seen) as page:
        answer = page.goto(f"{node.https}/ui/requests")
        assert answer is not None and answer.status == 401
        expect(page.locator("#problem")).to_contain_text(
            "log in with the TLS client certificate of your person identity"
        )
        expect(page.locator("#who")).to_contain_text("not logged in")
        shoot(page, artifacts, "login")

    with browsing(chromium, node, officer, seen) as page:
        page.goto(f"{node.https}/ui")  # the redirect to /ui/
        expect(page.locator("#who")).to_contain_text("Anna Schmidt")
        expect(page.locator("#who")).to_contain_text("registration-officer")
        page.goto(f"{node.https}/ui/requests?state=pending")
        page.click(f'a[href="/ui/requests/{approve}"]')
        expect(page.locator("#request-state")).to_have_text("pending")

        # Approve: the statement is prepared by the node, signed here with the key file.
        decide(
            page,
            node,
            approve,
            choice="approve",
            reason="register extract checked",
            key=officer.key,
        )
        shoot(page, artifacts, "request-prepared", docs="ui-requests.png")
        page.click("#sign")
        page.wait_for_url(f"**/ui/requests/{approve}?decided=approve")
        expect(page.locator("#request-state")).to_have_text("issued")
        serial = page.locator("#issued code.serial").first.inner_text()
        shoot(page, artifacts, "request-approved")
        (issued,) = with_home(node, lambda home: home.certificates(holder="Browser Approve GmbH"))
        assert issued.serial == serial and issued.request_id == approve
        reason = with_home(node, lambda home: home.request(approve).decision_reason)
        assert reason == "register extract checked"
        page.click(f'a[href="/ui/identities/ids/{serial}"]')
        expect(page.locator("#certificate")).to_contain_text("Browser Approve GmbH")
        expect(page.locator("#certificate")).to_contain_text("good")

        # Reject, signing with the passphrase-protected copy of the key (PBES2 in WebCrypto).
        decide(
            page, node, reject, choice="reject", reason="no register extract",
            key=officer.encrypted_key, passphrase=KEY_PASSPHRASE,
        )  # fmt: skip
        page.click("#sign")
        page.wait_for_url(f"**/ui/requests/{reject}?decided=reject")
        expect(page.locator("#request-state")).to_have_text("rejected")
        assert state_of(node, reject) == "rejected"

        # Another person's key is refused in the browser before anything is sent.
        decide(page, node, untouched, choice="approve", reason="", key=operator.key)
        page.click("#sign")
        expect(page.locator("#decide-status")).to_contain_text(
            "this key does not belong to the certificate you are logged in with"
        )
        # A wrong passphrase does not open the key.
        page.fill("#key-passphrase", "not the passphrase")
        page.set_input_files("#key-file", str(officer.encrypted_key))
        page.click("#sign")
        expect(page.locator("#decide-status")).to_contain_text("the passphrase does not open")
        shoot(page, artifacts, "request-wrong-key")
        assert state_of(node, untouched) == "pending"
    only_the_node(seen, node)


def test_roles_in_the_browser_and_the_log_page(
    chromium: Browser, node: Node, officer: Credentials, operator: Credentials, artifacts: Path
) -> None:
    request_id = pending(node, "Browser Roles GmbH")

    def checkpoint(home: Home) -> int:
        if not home.log.has_key:
            home.log.create_key(secret=SecretSource(env=PASSPHRASE_ENV))
        return home.log.checkpoint().checkpoint.size

    size = with_home(node, checkpoint)
    seen: list[str] = []
    with browsing(chromium, node, operator, seen) as page:
        page.goto(f"{node.https}/ui/requests/{request_id}")
        expect(page.locator("#who")).to_contain_text("operator")
        expect(page.locator("#request-state")).to_have_text("pending")
        assert page.locator("#decide").count() == 0  # no decision for an operator
        answer = page.goto(f"{node.https}/ui/partners")
        assert answer is not None and answer.status == 200
    with browsing(chromium, node, officer, seen) as page:
        answer = page.goto(f"{node.https}/ui/partners")
        assert answer is not None and answer.status == 403
        expect(page.locator("h1")).to_have_text("Not allowed")
        expect(page.locator("#problem")).to_contain_text("needs the operator role")
        shoot(page, artifacts, "forbidden")
    with browsing(chromium, node, None, seen) as page:
        page.goto(f"{node.https}/ui/log")
        expect(page.locator("#checkpoint-note")).to_contain_text(f"\n{size}\n")
        expect(page.locator("#entries")).to_contain_text("certificate.issued")
        shoot(page, artifacts, "log", docs="ui-log.png")
        page.goto(f"{node.https}/ui/cas")
        expect(page.locator("#ca-ids")).to_contain_text("pre-signed answer")
        shoot(page, artifacts, "cas")
    only_the_node(seen, node)
