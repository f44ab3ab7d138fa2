"""``trustbridge opcua``: a sensor test station's OPC UA server and a reader, each deciding on
the other with the home's trust resolver (bridge or trust lists, revocation required)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from trustbridge.cli._common import _home, _read, console, err, state
from trustbridge.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from trustbridge.home import Home
    from trustbridge.opcua import (
        ApplicationIdentity,
        PeerValidator,
        PeerVerdict,
        SecurityPolicy,
        SensorTestResult,
    )

__all__ = ["opcua_app"]

opcua_app = typer.Typer(
    help="OPC UA sessions secured by trustbridge identities: a test station's server (serve), "
    "a reader (read), the application identity of a home (install).",
    no_args_is_help=True,
)

CertOpt = Annotated[
    Path | None,
    typer.Option(
        "--cert",
        help="The application's certificate and chain (PEM, leaf first); default: "
        "the identity installed in the home.",
    ),
]
KeyOpt = Annotated[
    Path | None, typer.Option("--key", help="Its RSA private key (PEM); with --cert.")
]
PassEnvOpt = Annotated[
    str | None,
    typer.Option("--passphrase-env", help="Environment variable with the key's passphrase."),
]
PolicyHelp = "Basic256Sha256 or Aes256_Sha256_RsaPss (SignAndEncrypt)."
MinLevelOpt = Annotated[
    str | None,
    typer.Option("--min-level", help="The lowest reference level (itg-loa1..3) to accept."),
]


def _passphrase(env: str | None) -> bytes | None:
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise InputError(f"environment variable {env} is not set")
    return value.encode()


def _identity(
    cert: Path | None, key: Path | None, passphrase_env: str | None
) -> ApplicationIdentity:
    from trustbridge.opcua import ApplicationIdentity

    passphrase = _passphrase(passphrase_env)
    if cert is None and key is None:
        return ApplicationIdentity.from_home(state.home_path, passphrase=passphrase)
    if cert is None or key is None:
        raise InputError("give both --cert and --key, or neither (the home's identity)")
    return ApplicationIdentity.from_files(cert, key, passphrase=passphrase)


def _policy(text: str) -> SecurityPolicy:
    from trustbridge.opcua import SecurityPolicy

    return SecurityPolicy.parse(text)


def _verdict_line(verdict: PeerVerdict) -> str:
    when = verdict.at.strftime("%H:%M:%S")
    if verdict.accepted:
        return f"{when} accepted {verdict.role} {verdict.subject}: {verdict.reason}"
    return f"{when} refused {verdict.role} {verdict.subject} ({verdict.status}): {verdict.reason}"


@opcua_app.command("install")
def install(
    cert: Annotated[Path, typer.Option("--cert", help="Certificate and chain (PEM, leaf first).")],
    key: Annotated[Path, typer.Option("--key", help="Its RSA private key (PEM).")],
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Keep an OPC UA application identity in the home (HOME/opcua/, the key mode 600).

    The certificate must be an RSA machine or software identity with an application URI.
    """
    from trustbridge.opcua import ApplicationIdentity

    identity = ApplicationIdentity.install(
        state.home_path,
        _read(cert, "certificate chain"),
        _read(key, "key"),
        passphrase=_passphrase(passphrase_env),
    )
    console.print(
        f"installed {identity.subject} ({identity.application_uri}), "
        f"{len(identity.chain)} certificate(s)",
        highlight=False,
    )


@opcua_app.command("serve")
def serve(
    results: Annotated[
        Path, typer.Option(help="The station's test results (JSON list, see docs/opcua.md).")
    ],
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The TCP port (0: any free one).")] = 4840,
    policy: Annotated[list[str] | None, typer.Option(help=PolicyHelp + " Repeatable.")] = None,
    name: Annotated[str | None, typer.Option(help="The server's name.")] = None,
    min_level: MinLevelOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Run a sensor test station's OPC UA server until interrupted.

    Each client's certificate is resolved with the home's trust (bridge or trust lists,
    revocation required, afresh for every session) and its application URI checked; every
    decision is printed, refusals with their reason.
    """
    import asyncio

    from trustbridge.opcua import PeerRole, PeerValidator, SecurityPolicy, read_results

    identity = _identity(cert, key, passphrase_env)
    station_results = read_results(_read(results, "results"), source=str(results))
    policies = [_policy(p) for p in policy] if policy else list(SecurityPolicy)
    with _home() as home:
        # One HTTP client for the CRLs and bundles of every session (a fresh resolver each).
        fetcher = home.fetcher()
        validator = PeerValidator(
            role=PeerRole.CLIENT,
            resolver=lambda: home.trust.resolver(fetcher=fetcher),
            clock=home.clock,
            min_level=min_level,
            on_verdict=lambda v: err.print(_verdict_line(v), highlight=False, soft_wrap=True),
        )
        asyncio.run(_serve(home, identity, validator, station_results, host, port, name, policies))


async def _serve(
    home: Home,
    identity: ApplicationIdentity,
    validator: PeerValidator,
    results: Sequence[SensorTestResult],
    host: str,
    port: int,
    name: str | None,
    policies: list[SecurityPolicy],
) -> None:
    import asyncio
    import signal

    from trustbridge.opcua.station import StationServer

    station = StationServer(
        identity=identity,
        validator=validator,
        results=results,
        host=host,
        port=port,
        name=name,
        policies=policies,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with station:
        console.print(
            f"station {identity.subject} ({station.application_uri}) listening "
            f"at {station.endpoint} ({', '.join(p.value for p in station.policies)}, "
            f"SignAndEncrypt); {len(station.results)} sensor(s); clients resolved with the trust "
            f"of {home.path!s}",
            highlight=False,
            soft_wrap=True,
        )
        console.file.flush()
        await stop.wait()
    console.print(
        f"station stopped: {len(station.verdicts)} session(s), {len(station.refusals)} refused",
        highlight=False,
    )


@opcua_app.command("read")
def read(
    endpoint: Annotated[str, typer.Argument(help="The station: opc.tcp://HOST:PORT/PATH.")],
    serial: Annotated[str, typer.Option(help="The sensor's serial number.")],
    policy: Annotated[str, typer.Option(help=PolicyHelp)] = "Basic256Sha256",
    server_uri: Annotated[
        str | None, typer.Option(help="The station's application URI to insist on.")
    ] = None,
    min_level: MinLevelOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    cert: CertOpt = None,
    key: KeyOpt = None,
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Read a sensor's test results from a station.

    The station is resolved with the home's trust (bridge or trust lists, revocation
    required); its application URI must be in its certificate, and its certificate must name
    the endpoint's host.
    """
    import asyncio

    from trustbridge.opcua import PeerRole, PeerValidator
    from trustbridge.opcua.client import endpoint_host, read_test_result

    host = endpoint_host(endpoint)
    chosen = _policy(policy)
    identity = _identity(cert, key, passphrase_env)
    with _home() as home:
        validator = PeerValidator(
            role=PeerRole.SERVER,
            resolver=home.trust.resolver,
            clock=home.clock,
            min_level=min_level,
            expected_uri=server_uri,
            host=host,
        )
        outcome = asyncio.run(
            read_test_result(
                endpoint,
                identity=identity,
                validator=validator,
                serial=serial,
                policy=chosen,
                timeout=timeout,
            )
        )
    if as_json:
        console.print_json(json.dumps(outcome.to_json(), ensure_ascii=False))
        return
    result, server = outcome.result, outcome.server
    console.print(
        f"station {server.subject} ({server.application_uri}): "
        f"{server.reason}; {chosen.value} SignAndEncrypt",
        highlight=False,
        soft_wrap=True,
    )
    table = Table(title=f"sensor {result.serial}", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("verdict", result.verdict)
    table.add_row("tested at", result.tested_at.isoformat())
    table.add_row("report sha256", result.report_sha256)
    for measurement in result.measurements:
        table.add_row(measurement.name, f"{measurement.value:g} {measurement.unit}")
    console.print(table)
