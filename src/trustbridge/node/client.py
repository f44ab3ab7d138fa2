"""A client for a node's signed API: every request signed with the caller's identity.

TLS authenticates the node (its API certificate must chain to one of the anchors the caller
names); the RFC 9421 signature authenticates the caller (:mod:`trustbridge.node.httpsig`).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

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

__all__ = ["ClosingClient", "NodeError", "SignedClient", "error_from_response"]


class NodeError(TrustbridgeError):
    """The node refused a request or could not be reached."""

    exit_code = 6


class ClosingClient:
    """An HTTP client holder usable as a context manager (``with ... as client``)."""

    _http: httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class SignedClient(ClosingClient):
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
            raise error_from_response(response)
        try:
            return response.json()
        except ValueError:
            raise NodeError(
                f"{method} {path} answered {response.status_code} without JSON"
            ) from None


def error_from_response(
    response: httpx.Response,
    *,
    prefix: str = "",
    errors: Mapping[int, type[TrustbridgeError]] | None = None,
    client_error: type[TrustbridgeError] = InputError,
) -> TrustbridgeError:
    """The error a node's refusal stands for, with its reason and hint: 401 authentication,
    403 access denied, 404 not found (``errors`` adds or overrides codes), other 4xx
    ``client_error``, 5xx :class:`NodeError`."""
    try:
        data = response.json()
        message = str(data.get("error") or data.get("detail") or data)
        hint = data.get("hint")
    except (ValueError, AttributeError):
        message, hint = response.text[:300] or response.reason_phrase, None
    text = f"{prefix}{response.request.method} {response.request.url.path}: {message}"
    kinds: dict[int, type[TrustbridgeError]] = {
        401: AuthenticationError,
        403: AccessDeniedError,
        404: NotFoundError,
        **(errors or {}),
    }
    code = response.status_code
    if code in kinds:
        return kinds[code](text, hint=hint)
    if code < 500:
        return client_error(text, hint=hint)
    return NodeError(f"{text} (HTTP {code})", hint=hint)
