"""Browser tests of the web UI: a real node process, Debian's Chromium driven by Playwright.

The node is the one the node tests serve (``tests/node/conftest.py``: the reference home with a
registration officer and an operator). Screenshots go to ``tests/browser/artifacts/`` (or
``$TRUSTBRIDGE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.node.conftest import Node, node  # noqa: F401 - the served reference home, reused

CHROMIUM = Path("/usr/bin/chromium")
#: Chromium without anything that would reach beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Browser tests run only where the system browser is (scripts/setup.sh installs it).
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"the browser tests need Debian's Chromium at {CHROMIUM} "
    "(scripts/setup.sh installs it: apt-get install chromium)",
)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: ``$TRUSTBRIDGE_TEST_ARTIFACTS`` or ``tests/browser/artifacts``."""
    folder = Path(
        os.environ.get("TRUSTBRIDGE_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def chromium(node: Node) -> Iterator[Browser]:  # noqa: F811
    """The system Chromium, headless, under Playwright's sync API.

    Started after the node (whose set-up validates paths in an event loop of its own, which
    cannot run beside the one Playwright's sync API keeps running in this thread).
    """
    del node
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
