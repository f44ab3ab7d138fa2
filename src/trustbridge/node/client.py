"""A client for a node's signed API: every request signed with the caller's identity.

TLS authenticates the node (its API certificate must chain to one of the anchors the caller
names); the RFC 9421 signature authenticates the caller (:mod:`trustbridge.node.httpsig`).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509

from trustbridge.clock import Clock, SystemClock
from trustbridge.errors import (
    AccessDeniedError,
    AuthenticationError,
    InputError,
    NotFoundError,
    TrustbridgeError,
)
from trustbridge.node.httpsig import sign_request
from trustbridge.pki.signers import Signer

__all__ = ["NodeError", "SignedClient"]


class NodeError(TrustbridgeError):
    """The node refused a request or could not be reached."""

    exit_code = 6


class SignedClient:
    """Sends signed requests to one node's HTTPS API and returns the JSON answers."""

    def __init__(
        self,
        base_url: str,
        *,
        signer: Signer,
        chain: Sequence[x509.Certificate],
        trust: Path | None = None,
        clock: Clock | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not base_url.startswith("https://"):
            raise InputError(
                f"the node URL {base_url!r} must be https://HOST:PORT",
                hint="administrative requests go to the node's HTTPS listener",
            )
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.chain = tuple(chain)
        self.clock = clock or SystemClock()
        context = ssl.create_default_context()
        if trust is not None:
            try:
                context = ssl.create_default_context(cafile=str(trust))
            except (OSError, ssl.SSLError) as exc:
                raise InputError(f"cannot use {trust} as TLS trust anchors: {exc}") from None
        self._http = httpx.Client(verify=context, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SignedClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str | int] | None = None,
    ) -> Any:
        """Sign and send one request; return the decoded JSON or raise with the node's reason."""
        url = httpx.URL(self.base_url + path, params=params or {})
        content = b"" if body is None else json.dumps(body).encode()
        headers = sign_request(
            method=method,
            url=str(url),
            body=content,
            signer=self.signer,
            chain=self.chain,
            at=self.clock.now(),
        )
        try:
            response = self._http.request(method, url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise NodeError(
                f"cannot reach {self.base_url}: {exc}",
                hint="is the node running (trustbridge serve), and is --trust its root?",
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        try:
            return response.json()
        except ValueError:
            raise NodeError(
                f"{method} {path} answered {response.status_code} without JSON"
            ) from None


def _error(response: httpx.Response) -> TrustbridgeError:
    try:
        data = response.json()
        message = str(data.get("error") or data.get("detail") or data)
        hint = data.get("hint")
    except ValueError:
        message, hint = response.text[:300] or response.reason_phrase, None
    where = f"{response.request.method} {response.request.url.path}"
    text = f"{where}: {message}"
    if response.status_code == 401:
        return AuthenticationError(text, hint=hint)
    if response.status_code == 403:
        return AccessDeniedError(text, hint=hint)
    if response.status_code == 404:
        return NotFoundError(text, hint=hint)
    if response.status_code < 500:
        return InputError(text, hint=hint)
    return NodeError(f"{text} (HTTP {response.status_code})", hint=hint)
