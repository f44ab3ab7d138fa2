"""``trustbridge opcua``: a sensor test station's OPC UA server and a reader, each deciding on
the other with the home's trust resolver (bridge or trust lists, revocation required)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
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
    from trustbridge.opcua.access import ReadDecision, StationAccess
    from trustbridge.opcua.identity import UserIdentity

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


def _decision_line(decision: ReadDecision) -> str:
    when = decision.at.strftime("%H:%M:%S")
    effect = "allowed" if decision.allowed else "denied"
    who = "user" if decision.person else "client"
    return (
        f"{when} {effect} reading sensor {decision.serial} to {who} {decision.user}: "
        f"{'; '.join(decision.reasons)}"
    )


def _user(cert: Path | None, key: Path | None, passphrase_env: str | None) -> UserIdentity | None:
    from trustbridge.opcua.identity import UserIdentity

    if cert is None and key is None:
        if passphrase_env is not None:
            raise InputError("--user-passphrase-env needs --user-cert and --user-key")
        return None
    if cert is None or key is None:
        raise InputError("give both --user-cert and --user-key (a person's RSA identity)")
    return UserIdentity.from_files(cert, key, passphrase=_passphrase(passphrase_env))


def _access(home: Home, contract: str | None, partner: str | None, purpose: str) -> StationAccess:
    from trustbridge.assessment.access import entity_from_data
    from trustbridge.opcua.access import StationAccess

    exchange = home.exchange
    policies = exchange.access_policies()
    on_decision = _print_decision
    if contract is None:
        if partner is not None:
            raise InputError("--partner names the other party of --contract")
        owner = entity_from_data(exchange.own_entity_data())
        return StationAccess(
            policies, owner=owner, clock=home.clock, purpose=purpose, on_decision=on_decision
        )
    owner, terms, other, scheme = exchange.contract_entities(contract, partner)
    return StationAccess(
        policies,
        owner=owner,
        contract=terms,
        organizations=[other],
        clock=home.clock,
        purpose=purpose,
        member_schemes={other.ref.id: scheme} if scheme is not None else None,
        on_decision=on_decision,
    )


def _print_decision(decision: ReadDecision) -> None:
    err.print(_decision_line(decision), highlight=False, soft_wrap=True)


def _print_verdict(verdict: PeerVerdict) -> None:
    err.print(_verdict_line(verdict), highlight=False, soft_wrap=True)


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
    user_tokens: Annotated[
        bool,
        typer.Option(
            "--user-tokens",
            help="Also take X.509 user identity tokens: people with RSA person identities, "
            "resolved with the home's trust like clients.",
        ),
    ] = False,
    people_only: Annotated[
        bool,
        typer.Option(
            "--people-only", help="Only sessions with a person's user token (no anonymous ones)."
        ),
    ] = False,
    decide_reads: Annotated[
        bool,
        typer.Option(
            "--decide-reads",
            help="Decide every read with the home's access policies (HOME/policies/*.cedar, "
            "or the shipped ones) for the session's person or client application.",
        ),
    ] = False,
    contract: Annotated[
        str | None,
        typer.Option(
            help="The concluded contract the results are shared under (implies --decide-reads)."
        ),
    ] = None,
    partner: Annotated[
        str | None,
        typer.Option(help="The contract's other party, where it was concluded with several."),
    ] = None,
    purpose: Annotated[
        str, typer.Option(help="The purpose reads are decided for.")
    ] = "quality-assurance",
    recheck_minutes: Annotated[
        float,
        typer.Option(
            help="How long a session's checks hold before its client must connect again "
            "(and is checked afresh: a revocation shows then)."
        ),
    ] = 15.0,
    cert: CertOpt = None,
    key: KeyOpt = None,
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Run a sensor test station's OPC UA server until interrupted.

    Each client's certificate is resolved with the home's trust (bridge or trust lists,
    revocation required, afresh for every session) and its application URI checked; with
    --user-tokens so is the person a session names. With --decide-reads or --contract, the
    access policies decide each sensor's reads. Every decision is printed, refusals with
    their reason.
    """
    import asyncio

    from trustbridge.opcua import PeerRole, PeerValidator, SecurityPolicy, read_results

    identity = _identity(cert, key, passphrase_env)
    station_results = read_results(_read(results, "results"), source=str(results))
    policies = [_policy(p) for p in policy] if policy else list(SecurityPolicy)
    user_tokens = user_tokens or people_only
    with _home() as home:
        # One HTTP client for the CRLs and bundles of every session (a fresh resolver each).
        fetcher = home.fetcher()

        def validator(role: PeerRole) -> PeerValidator:
            return PeerValidator(
                role=role,
                resolver=lambda: home.trust.resolver(fetcher=fetcher),
                clock=home.clock,
                min_level=min_level,
                on_verdict=_print_verdict,
            )

        access = _access(home, contract, partner, purpose) if decide_reads or contract else None
        if access is None and partner is not None:
            raise InputError("--partner names the other party of --contract")
        if not 0 < recheck_minutes <= 24 * 60:
            raise InputError(
                f"--recheck-minutes {recheck_minutes:g} is not between 0 and 1440 minutes"
            )
        options = _StationOptions(
            users=validator(PeerRole.USER) if user_tokens else None,
            anonymous=not people_only,
            access=access,
            recheck_after=timedelta(minutes=recheck_minutes),
        )
        asyncio.run(
            _serve(
                home,
                identity,
                validator(PeerRole.CLIENT),
                station_results,
                host,
                port,
                name,
                policies,
                options,
            )
        )


@dataclass(frozen=True)
class _StationOptions:
    users: PeerValidator | None
    anonymous: bool
    access: StationAccess | None
    recheck_after: timedelta

    def describe(self) -> str:
        users = (
            ("people only" if not self.anonymous else "people or anonymous")
            if self.users is not None
            else "anonymous sessions"
        )
        if self.access is None:
            return f"{users}; every accepted session reads"
        shared = (
            f"shared under contract {self.access.contract.ref.id}"
            if self.access.contract is not None
            else "not shared under a contract"
        )
        purpose = self.access.purpose
        return f"{users}; reads decided by the access policies ({shared}, purpose {purpose})"


async def _serve(
    home: Home,
    identity: ApplicationIdentity,
    validator: PeerValidator,
    results: Sequence[SensorTestResult],
    host: str,
    port: int,
    name: str | None,
    policies: list[SecurityPolicy],
    options: _StationOptions,
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
        users=options.users,
        anonymous=options.anonymous,
        access=options.access,
        recheck_after=options.recheck_after,
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
            f"of {home.path!s}; {options.describe()}",
            highlight=False,
            soft_wrap=True,
        )
        console.file.flush()
        await stop.wait()
    clients = station.validator
    stopped = (
        f"station stopped: {clients.accepted_total + clients.refused_total} session(s), "
        f"{clients.refused_total} refused"
    )
    if options.users is not None:
        users = options.users
        stopped += (
            f"; {users.accepted_total + users.refused_total} user(s), {users.refused_total} refused"
        )
    if options.access is not None:
        stopped += f"; {options.access.denied_total} read(s) denied"
    console.print(stopped, highlight=False)


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
    user_cert: Annotated[
        Path | None,
        typer.Option(
            "--user-cert",
            help="Act for a person: their RSA person identity (PEM, leaf first), sent as an "
            "X.509 user identity token.",
        ),
    ] = None,
    user_key: Annotated[
        Path | None, typer.Option("--user-key", help="The person's RSA private key (PEM).")
    ] = None,
    user_passphrase_env: Annotated[
        str | None,
        typer.Option(
            "--user-passphrase-env", help="Environment variable with the person's key passphrase."
        ),
    ] = None,
) -> None:
    """Read a sensor's test results from a station.

    The station is resolved with the home's trust (bridge or trust lists, revocation
    required); its application URI must be in its certificate, and its certificate must name
    the endpoint's host. With --user-cert/--user-key the session acts for that person.
    """
    import asyncio

    from trustbridge.opcua import PeerRole, PeerValidator
    from trustbridge.opcua.client import endpoint_host, read_test_result

    host = endpoint_host(endpoint)
    chosen = _policy(policy)
    identity = _identity(cert, key, passphrase_env)
    user = _user(user_cert, user_key, user_passphrase_env)
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
                user=user,
            )
        )
    if as_json:
        console.print_json(json.dumps(outcome.to_json(), ensure_ascii=False))
        return
    result, server = outcome.result, outcome.server
    acting = f"; acting for {user.subject}" if user is not None else ""
    console.print(
        f"station {server.subject} ({server.application_uri}): "
        f"{server.reason}; {chosen.value} SignAndEncrypt{acting}",
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
