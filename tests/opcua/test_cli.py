"""`trustbridge opcua install|serve|read` between the Japanese and the German TSP homes, with
the homes served by `trustbridge serve` (CRLs and issuer bundles over HTTP, as the certificates
name them): the reader reads across the bridge; after the station's identity is revoked on the
Japanese node, the next read is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner, Result

from tests.homes import NOW
from tests.opcua.conftest import OTHER, RESULT, SERIAL
from tests.opcua.world import STATION_URI, OpcUaWorld, build_world
from tests.tools import TB, run_cli
from tests.trust import linked
from trustbridge.cli.main import app
from trustbridge.clock import FixedClock
from trustbridge.errors import InputError
from trustbridge.home import Home
from trustbridge.node.launcher import free_port, running, start_node
from trustbridge.opcua import ApplicationIdentity, PeerRefusedError
from trustbridge.opcua.client import SessionRefusedError, StationUnreachableError
from trustbridge.opcua.identity import UserIdentity
from trustbridge.pki.keys import private_key_pem
from trustbridge.pki.revocation import Reason
from trustbridge.trust.schemes import TrustScheme


def _home_on_free_ports(path: Path, name: str, port: int, schemes: Sequence[TrustScheme]) -> Home:
    """tests/trust/linked.py's homes, on ports free now (their nodes are served here)."""
    home = Home.init(
        path / name,
        node_name=name,
        clock=FixedClock(NOW),
        http_port=free_port(),
        https_port=free_port(),
    )
    for scheme in schemes:
        home.create_scheme(scheme)
    return home


@dataclass
class Served:
    work: Path
    de: Path
    jp: Path
    env: dict[str, str]
    station_serial: str
    #: --user-cert/--user-key of Muster's operator and of the one revoked.
    operator: tuple[str, str]
    revoked_operator: tuple[str, str]

    def cli(self, home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli("--home", str(home), *args, cwd=self.work, env=self.env, ok=ok)


def _files(work: Path, name: str, identity: ApplicationIdentity | UserIdentity) -> tuple[str, str]:
    chain, key = work / f"{name}.pem", work / f"{name}.key"
    chain.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in identity.chain))
    key.write_bytes(private_key_pem(identity.signer.key))
    return str(chain), str(key)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("opcua-cli")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linked, "_home", _home_on_free_ports)
        world: OpcUaWorld = build_world(work / "homes")
    homes = {home.config.node_name: home for home in world.linked.homes}
    urls = {name: (h.path, h.config.base_url) for name, h in homes.items()}
    station_files = _files(work, "station", world.station)
    reader_files = _files(work, "reader", world.reader)
    operator = _files(work, "operator", world.operator)
    revoked_operator = _files(work, "revoked-operator", world.revoked_operator)
    serial = format(world.station.certificate.serial_number, "x")
    world.close()
    (work / "results.json").write_text(json.dumps([RESULT.to_json(), OTHER.to_json()]))
    env = {**os.environ}
    with ExitStack() as stack:
        nodes = [
            start_node(
                path,
                name=name,
                http_url=url,
                https_url="",
                log=work / f"{name}.log",
                env=env,
                extra_args=("--https-port", str(free_port())),
            )
            for name, (path, url) in urls.items()
        ]
        for node in nodes:
            stack.enter_context(running(node))
        result = Served(
            work, urls["de-tsp"][0], urls["jp-tsp"][0], env, serial, operator, revoked_operator
        )
        chain, key = station_files
        installed = in_process(result.jp, "opcua", "install", "--cert", chain, "--key", key)
        assert "installed CN=HPS EOL Test Station EOL-3" in installed.output
        chain, key = reader_files
        ApplicationIdentity.install(result.de, Path(chain).read_bytes(), Path(key).read_bytes())
        yield result


class _Station:
    """`trustbridge opcua serve` as a process of its own (stopped with SIGTERM)."""

    def __init__(self, served: Served, *options: str) -> None:
        tag = "-users" if options else ""
        self.out, self.err = served.work / f"serve{tag}.out", served.work / f"serve{tag}.err"
        results = ["--results", str(served.work / "results.json"), "--port", "0", *options]
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [*TB, "--home", str(served.jp), "opcua", "serve", *results],
                cwd=served.work,
                env=served.env,
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        self.endpoint = self._endpoint()

    def _endpoint(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for word in self.out.read_text().split():
                if word.startswith("opc.tcp://"):
                    return word
            if self.process.poll() is not None:
                raise AssertionError(f"opcua serve exited: {self.err.read_text()}")
            time.sleep(0.1)
        raise AssertionError("opcua serve did not say where it listens")

    def stop(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.err.read_text()


def test_a_person_reads_through_the_reader_with_a_user_token(served: Served) -> None:
    # Before the test that revokes the station (they share the module's served nodes).
    station = _Station(served, "--user-tokens", "--people-only")
    try:
        assert "people only; every accepted session reads" in station.out.read_text()
        read = ["opcua", "read", station.endpoint, "--serial", SERIAL]
        cert, key = served.operator
        table = in_process(served.de, *read, "--user-cert", cert, "--user-key", key)
        assert table.exit_code == 0, table.output
        assert "acting for CN=Jonas Weber" in table.output
        assert "742.5 MOhm" in table.output
        # No person: the station takes no anonymous session.
        alone = in_process(served.de, *read).exception
        assert isinstance(alone, SessionRefusedError) and alone.exit_code == 3
        assert alone.status == "BadIdentityTokenRejected"
        # A revoked person: refused at activation, the reason in the station's log only.
        cert, key = served.revoked_operator
        revoked = in_process(served.de, *read, "--user-cert", cert, "--user-key", key).exception
        assert isinstance(revoked, SessionRefusedError) and revoked.exit_code == 3
        assert "refused the session for the user CN=Max Braun" in revoked.message
        assert revoked.status == "BadIdentityTokenRejected"
    finally:
        log = station.stop()
    assert "accepted user CN=Jonas Weber" in log
    assert "refused user CN=Max Braun" in log and "(BadCertificateRevoked)" in log
    assert "3 user(s)" not in station.out.read_text()
    assert "2 user(s), 1 refused" in station.out.read_text()


def test_read_across_the_bridge_through_served_nodes_then_revoke_the_station(
    served: Served,
) -> None:
    station = _Station(served)
    try:
        assert f"({STATION_URI}) listening at opc.tcp://127.0.0.1:" in station.out.read_text()
        read = ["opcua", "read", station.endpoint, "--serial", SERIAL, "--json"]
        first = served.cli(served.de, *read, "--policy", "aes256-sha256-rsapss")
        answer = json.loads(first.stdout)
        assert answer["security_policy"] == "Aes256_Sha256_RsaPss"
        assert answer["result"] == RESULT.to_json()
        assert answer["server"]["route"] == "bridge"
        assert answer["server"]["application_uri"] == STATION_URI
        assert answer["server"]["reference_level"] == "itg/itg-loa2"
        table = in_process(served.de, *read[:-1], "--server-uri", STATION_URI)
        assert table.exit_code == 0, table.output
        assert "trusted by the bridge route at jp/jp-level2 (itg/itg-loa2)" in table.output
        assert "InsulationResistance" in table.output and "742.5 MOhm" in table.output
        # The station's identity is revoked on the Japanese node: the next read is refused.
        home = Home.open(served.jp)
        try:
            home.status.revoke(served.station_serial, reason=Reason.KEY_COMPROMISE)
        finally:
            home.close()
        refused = in_process(served.de, *read).exception
        assert isinstance(refused, PeerRefusedError) and refused.exit_code == 3
        assert refused.message.startswith("this client refused the station CN=HPS EOL")
        assert refused.status == "BadCertificateRevoked"
    finally:
        log = station.stop()
    assert "accepted client CN=Muster Quality Gateway OPC UA Client" in log
    assert "by the bridge route at de/de-substantial" in log
    assert "station stopped: 3 session(s), 0 refused" in station.out.read_text()
    # The third session: the station accepted the reader, the reader refused the station.


def test_the_command_says_what_is_missing(served: Served) -> None:
    nowhere = f"opc.tcp://127.0.0.1:{free_port()}/trustbridge/station"
    unreachable = in_process(served.de, "opcua", "read", nowhere, "--serial", SERIAL).exception
    assert isinstance(unreachable, StationUnreachableError) and unreachable.exit_code == 6
    assert "does not answer" in unreachable.message
    results, missing = str(served.work / "results.json"), str(served.work / "missing.key")
    for home, args, message in (
        (served.de, ("read", "http://x", "--serial", "1"), "is not an OPC UA endpoint URL"),
        (served.de, ("read", nowhere, "--serial", "1", "--policy", "x"), "unknown security"),
        (served.work, ("serve", "--results", results), "has no OPC UA identity"),
        (served.de, ("install", "--cert", results, "--key", missing), "cannot read key"),
        (
            served.de,
            ("read", nowhere, "--serial", "1", "--user-cert", results),
            "give both --user-cert and --user-key",
        ),
        (
            served.jp,
            ("serve", "--results", results, "--partner", "VATDE-123456789"),
            "--partner names the other party of --contract",
        ),
    ):
        result = in_process(home, "opcua", *args)
        assert isinstance(result.exception, InputError), result.output
        assert message in result.exception.message


def in_process(home: Path, *args: str) -> Result:
    """`trustbridge --home HOME ARGS` in this process (no interpreter to start)."""
    return CliRunner().invoke(app, ["--home", str(home), *args])
