"""What a node answers when a request fails: a reason for the caller's own mistakes, and
nothing about the node's configuration, secrets or keys (those go to the node's log)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI

from trustbridge.errors import (
    ConfigError,
    InputError,
    PassphraseError,
    TokenUnavailableError,
    TrustbridgeError,
)
from trustbridge.node.app import _error_handlers


def _answer(error: Exception) -> httpx.Response:
    """What a node's API answers to a request that raised ``error``."""
    app = FastAPI()

    @app.get("/fails")
    def fails() -> None:
        raise error

    _error_handlers(app)

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            return await client.get("/fails")

    return asyncio.run(ask())


@pytest.mark.parametrize(
    "error",
    [
        PassphraseError(
            "no password for fetch proxy user 'werk-pki'",
            hint="set TRUSTBRIDGE_PASSPHRASE_FETCH_PROXY, name a protected file",
        ),
        ConfigError("password file /srv/werk/secrets/fetch-proxy is readable by others"),
        TokenUnavailableError("PKCS#11 token 'werk-ca' is not reachable"),
    ],
)
def test_the_nodes_own_problems_stay_in_its_log(
    error: TrustbridgeError, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="trustbridge.node"):
        answer = _answer(error)
    assert answer.status_code == 503
    body = answer.json()
    assert body["error"].startswith("this node cannot answer")
    text = answer.text
    assert error.message not in text and "werk" not in text and "TRUSTBRIDGE_" not in text
    assert error.message in caplog.text  # the operator learns the reason


def test_a_callers_mistake_is_explained_to_the_caller() -> None:
    answer = _answer(InputError("serial 'xyz' is not hex", hint="give it in hex"))
    assert answer.status_code == 400
    assert answer.json() == {"error": "serial 'xyz' is not hex", "hint": "give it in hex"}
