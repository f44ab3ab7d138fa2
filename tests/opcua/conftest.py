"""The OPC UA test world (one per test process: RSA keys and OPC UA servers are slow to make)
and stations running on loopback in a thread of their own, shared by the tests that read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from asyncua.client.client import Client

from tests.homes import NOW
from tests.opcua.world import OpcUaWorld, build_world
from trustbridge.opcua import (
    ApplicationIdentity,
    Measurement,
    PeerRole,
    SecurityPolicy,
    SensorTestResult,
)
from trustbridge.opcua.client import ReadResult, read_test_result
from trustbridge.opcua.identity import UserIdentity
from trustbridge.opcua.station import NAMESPACE, StationServer
from trustbridge.trust.resolver import Route

SERIAL = "HPS200-000002"
RESULT = SensorTestResult(
    serial=SERIAL,
    verdict="pass",
    tested_at=NOW - timedelta(hours=2),
    report_sha256="3f" * 32,
    measurements=(
        Measurement("ZeroOffset", 0.012, "kPa"),
        Measurement("SpanError", 0.041, "%FS"),
        Measurement("InsulationResistance", 742.5, "MOhm"),
    ),
)
OTHER = SensorTestResult(
    serial="HPS200-000003", verdict="fail", tested_at=NOW, report_sha256="0a" * 32
)


class RunningStation:
    """A :class:`StationServer` serving from its own event loop in a thread, so that tests
    (and the clients they run with ``asyncio.run``) can come and go."""

    def __init__(self, station: StationServer) -> None:
        self.station = station
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.endpoint = asyncio.run_coroutine_threadsafe(station.start(), self.loop).result(60)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.station.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


async def read_verdict(client: Client, serial: str = SERIAL) -> object:
    """A sensor's ``Verdict`` through an open asyncua session."""
    ns = await client.get_namespace_index(NAMESPACE)
    sensor = await client.nodes.objects.get_child([f"{ns}:SensorTests", f"{ns}:{serial}"])
    return await (await sensor.get_child(f"{ns}:Verdict")).read_value()


def read(
    world: OpcUaWorld,
    station: RunningStation,
    user: UserIdentity | None = None,
    *,
    route: Route = Route.BRIDGE,
    identity: ApplicationIdentity | None = None,
    policy: SecurityPolicy = SecurityPolicy.BASIC256SHA256,
    serial: str = SERIAL,
    application_uri: str | None = None,
    endpoint: str | None = None,
    **checks: object,
) -> ReadResult:
    """Muster's reader (or ``identity``) reads ``serial``, for ``user`` (None: the client
    alone), deciding on the station by ``route`` (``checks``: more validator options)."""
    options: dict[str, object] = {"host": "127.0.0.1", **checks}
    validator = world.validator("de", route, PeerRole.SERVER, **options)
    return asyncio.run(
        read_test_result(
            endpoint or station.endpoint,
            identity=identity or world.reader,
            validator=validator,
            serial=serial,
            policy=policy,
            timeout=20,
            user=user,
            application_uri=application_uri,
        )
    )


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpcUaWorld]:
    built = build_world(tmp_path_factory.mktemp("opcua"))
    yield built
    built.close()


@contextmanager
def running(
    world: OpcUaWorld,
    identity: ApplicationIdentity,
    route: Route,
    **options: object,
) -> Iterator[RunningStation]:
    station = StationServer(
        identity=identity,
        validator=world.validator("jp", route, PeerRole.CLIENT),
        results=(RESULT, OTHER),
        **options,  # type: ignore[arg-type]
    )
    runner = RunningStation(station)
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def bridge_station(world: OpcUaWorld) -> Iterator[RunningStation]:
    """The test station (a P-256 device CA above its RSA key), deciding by the bridge route."""
    with running(world, world.station, Route.BRIDGE) as station:
        yield station


@pytest.fixture(scope="session")
def list_station(world: OpcUaWorld) -> Iterator[RunningStation]:
    """The station's identity from the RSA OPC UA CA, deciding by the trust-list route."""
    with running(world, world.rsa_station, Route.TRUST_LIST) as station:
        yield station
