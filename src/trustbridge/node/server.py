"""Run a node: two uvicorn listeners (HTTP for public artifacts, HTTPS for the API) in one
process, and a refresher that reissues CRLs and re-signs OCSP responses before they expire."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.serialization import Encoding
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from trustbridge.errors import ConfigError, TrustbridgeError
from trustbridge.home import Home
from trustbridge.home.delivery import write_private
from trustbridge.node.app import NodeState, api_app, public_app
from trustbridge.pki.ca import ServiceKind
from trustbridge.pki.keys import private_key_pem

__all__ = ["ServeOptions", "TlsFiles", "serve", "tls_files"]

log = logging.getLogger("trustbridge.node")


@dataclass(frozen=True)
class ServeOptions:
    host: str
    http_port: int
    https_port: int
    #: Seconds between refresh rounds (CRLs and OCSP responses that fall due).
    refresh_interval: float = 60.0
    tls_ca: str | None = None
    log_level: str = "warning"


def _tls_ca(home: Home, preferred: str | None) -> str:
    active = [c for c in home.cas() if c.state == "active"]
    if preferred:
        if preferred not in {c.slug for c in active}:
            raise ConfigError(f"--tls-ca {preferred}: no active CA of that name in this home")
        return preferred
    if not active:
        raise ConfigError(
            "this home has no active CA to certify the node's HTTPS listener",
            hint="create a root CA first: trustbridge ca create-root ...",
        )
    # An issuing CA rather than the root, where there is one.
    issuing = [c for c in active if not c.is_root]
    return (issuing or active)[0].slug


@dataclass(frozen=True)
class TlsFiles:
    chain: Path
    key: Path
    #: The key file's passphrase (the CA's secret: the key is never on disk in the clear).
    key_password: str
    anchor: Path
    #: Every anchor of this home: TLS client certificates must chain to one of them.
    client_anchors: Path


def tls_files(home: Home, host: str, preferred_ca: str | None = None) -> TlsFiles:
    """The node's TLS certificate chain, encrypted key and trust anchor in ``HOME/tls``.

    The certificate comes from one of the home's CAs (an issuing CA where there is one) and is
    renewed when it nears expiry or does not name ``host``.
    """
    ca = _tls_ca(home, preferred_ca)
    hosts = sorted({host, "localhost", "127.0.0.1"} - {"0.0.0.0", "::"})  # noqa: S104
    certificate, signer = home.status.service_certificate(ca, ServiceKind.TLS, hosts=hosts)
    chain = home.chain_of(ca)
    folder = home.path / "tls"
    folder.mkdir(mode=0o700, exist_ok=True)
    cert_file = folder / "node-chain.pem"
    key_file = folder / "node.key.pem"
    anchor_file = folder / "anchor.pem"
    cert_file.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (certificate, *chain)))
    password = home._secret(ca)
    write_private(key_file, private_key_pem(signer.private_key, password))
    anchor_file.write_bytes(chain[-1].public_bytes(Encoding.PEM))
    clients = folder / "client-anchors.pem"
    clients.write_bytes(b"".join(a.public_bytes(Encoding.PEM) for a in home.anchors()))
    return TlsFiles(cert_file, key_file, password.decode(), anchor_file, clients)


def exchange_tls_files(home: Home) -> TlsFiles:
    """A company node's TLS identity (set up with ``trustbridge exchange setup --tls-key``).

    Partners do not validate it with their TLS stack (it cannot follow bridges): they resolve it
    with their trust resolver and pin it, through the node's signed description.
    """
    files = home.exchange.tls()
    assert files is not None
    chain, key, password = files
    clients = home.path / "tls" / "client-anchors.pem"
    clients.parent.mkdir(mode=0o700, exist_ok=True)
    anchors = list(home.anchors()) + list(home.trust.pinned_anchors())
    clients.write_bytes(b"".join(a.public_bytes(Encoding.PEM) for a in anchors))
    return TlsFiles(chain, key, password, clients, clients)


class _PeerCertificateProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, putting the TLS client's DER certificate into the ASGI scope.

    uvicorn does not pass client certificates to the application (DESIGN.md 5); EST
    re-enrolment needs the one the caller proved possession of in the handshake. The
    application re-validates it: the TLS layer only checked that it chains to an anchor.
    """

    def on_message_begin(self) -> None:
        super().on_message_begin()
        ssl_object = self.transport.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if peer:
            self.scope["extensions"] = {"tls": {"client_cert_der": peer}}


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to the node (which runs two of them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _refresher(state: NodeState, interval: float) -> None:
    while True:
        try:
            done = await asyncio.to_thread(state.home.status.refresh)
            state.last_refresh = state.home.now()
            state.refresh_error = None
            if done["crls"] or done["ocsp_responses"]:
                log.info("refresh: %s", done)
        except TrustbridgeError as exc:
            state.refresh_error = exc.message
            log.error("refresh failed: %s", exc.diagnostics())
        await asyncio.sleep(interval)


def serve(home: Home, options: ServeOptions, *, on_ready: Callable[[], None] | None = None) -> None:
    """Run the node until SIGINT/SIGTERM."""
    # Handlers hand work to threads (path validation runs its own event loop); with the default
    # 5 ms switch interval the event loop waits up to that long for the GIL after each hand-over.
    sys.setswitchinterval(0.0005)
    state = NodeState(home)
    # Everything a client may ask for first exists before the listeners open.
    home.status.refresh()
    # The fetch proxy's password (if one is asked for) is read now, where the operator sees a
    # problem and a prompt can be answered; never while a partner's request waits for it.
    home.fetcher()
    # A home without a CA of its own (a company, a conformity assessment body) publishes its
    # artifacts (status lists, published lists) over HTTP; its HTTPS API needs a TLS identity.
    has_ca = any(c.state == "active" for c in home.cas())
    tls = tls_files(home, options.host, options.tls_ca) if has_ca or options.tls_ca else None
    if tls is None and home.exchange.tls() is not None:
        tls = exchange_tls_files(home)
    if tls is None:
        log.warning("no CA in this home: serving the public HTTP listener only")
    state.ready = True

    def listener(app: Any, port: int, **settings: Any) -> _Listener:
        config = uvicorn.Config(
            app,
            host=options.host,
            port=port,
            log_level=options.log_level,
            access_log=False,
            lifespan="off",
            **settings,
        )
        return _Listener(config)

    http = listener(public_app(state), options.http_port)
    servers = [http]
    if tls is not None:
        servers.append(
            listener(
                api_app(state),
                options.https_port,
                ssl_certfile=str(tls.chain),
                ssl_keyfile=str(tls.key),
                ssl_keyfile_password=tls.key_password,
                # A client certificate is optional (EST re-enrolment presents one); the TLS
                # layer accepts those that chain to an anchor of this home, the app decides.
                ssl_cert_reqs=ssl.CERT_OPTIONAL,
                ssl_ca_certs=str(tls.client_anchors),
                http=_PeerCertificateProtocol,
                ssl_version=ssl.PROTOCOL_TLS_SERVER,
            )
        )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        refresher = asyncio.create_task(_refresher(state, options.refresh_interval))
        while not all(server.started for server in servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.02)
        if all(server.started for server in servers) and on_ready is not None:
            on_ready()
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for server in servers:
            server.should_exit = True
        refresher.cancel()
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed or not all(server.started for server in servers):
            raise ConfigError(
                f"the node could not listen on {options.host}:{options.http_port} (HTTP) and "
                f"{options.host}:{options.https_port} (HTTPS)",
                hint="another process may hold the port; pass --http-port/--https-port",
            )

    asyncio.run(main())
