"""OPC UA sessions on loopback between Hayabusa's test station (JP) and Muster's reader (DE),
each deciding on the other with the trust resolver: through the bridge, through the trust lists,
in both security policies; and the peers each side turns away, with the reason logged."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua import MessageSecurityMode
from asyncua.ua.uaerrors import UaError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from tests.opcua.conftest import OTHER, RESULT, SERIAL, RunningStation, running
from tests.opcua.world import STATION_URI, OpcUaWorld, revoke
from trustbridge.errors import NotFoundError
from trustbridge.opcua import ApplicationIdentity, PeerRefusedError, PeerRole, SecurityPolicy
from trustbridge.opcua.client import (
    ReadResult,
    SessionRefusedError,
    StationUnreachableError,
    read_test_result,
)
from trustbridge.trust.resolver import Route


def read(
    world: OpcUaWorld,
    station: RunningStation,
    *,
    route: Route = Route.BRIDGE,
    identity: ApplicationIdentity | None = None,
    policy: SecurityPolicy = SecurityPolicy.BASIC256SHA256,
    serial: str = SERIAL,
    application_uri: str | None = None,
    **checks: object,
) -> ReadResult:
    """Muster's reader (or ``identity``) reads ``serial``, deciding on the station by ``route``."""
    options: dict[str, object] = {"host": "127.0.0.1", **checks}
    validator = world.validator("de", route, PeerRole.SERVER, **options)
    return asyncio.run(
        read_test_result(
            station.endpoint,
            identity=identity or world.reader,
            validator=validator,
            serial=serial,
            policy=policy,
            timeout=20,
            application_uri=application_uri,
        )
    )


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="trustbridge.opcua")
    return caplog


def logged(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "trustbridge.opcua" and r.levelno >= logging.WARNING and text in r.getMessage()
    ]


# -- across the border -----------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(SecurityPolicy))
@pytest.mark.parametrize("route", [Route.BRIDGE, Route.TRUST_LIST])
def test_the_reader_reads_test_results_across_the_border_by_each_route(
    world: OpcUaWorld,
    bridge_station: RunningStation,
    list_station: RunningStation,
    route: Route,
    policy: SecurityPolicy,
) -> None:
    station = bridge_station if route is Route.BRIDGE else list_station
    before = len(station.station.verdicts)
    outcome = read(world, station, route=route, policy=policy)
    assert outcome.result == RESULT
    assert outcome.security_policy is policy
    # The reader resolved the Japanese station by the route, at its Japanese level.
    server = outcome.server
    assert server.accepted and server.resolution is not None
    assert server.resolution.route is route
    assert server.application_uri == STATION_URI
    assert str(server.resolution.holder_level) == "jp/jp-level2"
    assert str(server.resolution.reference_level) == "itg/itg-loa2"
    # ... and the station the German reader, by the same route.
    (client,) = station.station.verdicts[before:]
    assert client.accepted and client.resolution is not None
    assert client.resolution.route is route
    assert client.subject == world.reader.subject
    assert str(client.resolution.holder_level) == "de/de-substantial"


def test_a_station_whose_chain_is_rsa_signed_as_opc_ua_policies_name_it(
    world: OpcUaWorld, list_station: RunningStation
) -> None:
    certificate, issuer = world.rsa_station.chain[:2]
    assert certificate.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    issuer_key = issuer.public_key()
    assert isinstance(issuer_key, rsa.RSAPublicKey) and issuer_key.key_size == 3072
    outcome = read(world, list_station, route=Route.TRUST_LIST)
    assert outcome.server.fingerprint == certificate.fingerprint(hashes.SHA256()).hex()


def test_a_second_sensor_and_an_unknown_one(
    world: OpcUaWorld, bridge_station: RunningStation
) -> None:
    assert read(world, bridge_station, serial=OTHER.serial).result == OTHER
    with pytest.raises(NotFoundError, match="no test results for sensor 'HPS200-999999'"):
        read(world, bridge_station, serial="HPS200-999999")


# -- clients the station turns away ------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "reason"),
    [
        ("self_signed", "BadCertificateUntrusted", "is not trusted"),
        ("outsider", "BadCertificateUntrusted", "is not trusted"),
        ("revoked_reader", "BadCertificateRevoked", "revoked"),
    ],
)
def test_the_station_refuses_a_client_it_cannot_trust(
    world: OpcUaWorld,
    bridge_station: RunningStation,
    warnings: pytest.LogCaptureFixture,
    who: str,
    status: str,
    reason: str,
) -> None:
    identity: ApplicationIdentity = getattr(world, who)
    with pytest.raises(SessionRefusedError, match=f"refused the session: {status}") as refused:
        read(world, bridge_station, identity=identity, policy=SecurityPolicy.AES256_SHA256_RSAPSS)
    assert refused.value.status == status
    verdict = bridge_station.station.refusals[-1]
    assert verdict.subject == identity.subject
    assert verdict.status == status
    assert reason in verdict.reason
    assert logged(warnings, identity.subject) == [
        f"refused OPC UA client {identity.subject} ({status}): {verdict.reason}"
    ]


def test_the_station_refuses_a_client_whose_application_uri_is_not_in_its_certificate(
    world: OpcUaWorld, bridge_station: RunningStation, warnings: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SessionRefusedError, match="BadCertificateUriInvalid"):
        read(world, bridge_station, application_uri="urn:muster:someone-else")
    verdict = bridge_station.station.refusals[-1]
    assert "application URI 'urn:muster:someone-else'" in verdict.reason
    assert world.reader.application_uri in verdict.reason
    assert logged(warnings, "urn:muster:someone-else")


def test_a_revoked_reader_is_refused_by_both_routes(
    world: OpcUaWorld, list_station: RunningStation
) -> None:
    with pytest.raises(SessionRefusedError, match="BadCertificateRevoked"):
        read(world, list_station, route=Route.TRUST_LIST, identity=world.revoked_reader)
    assert "revoked" in list_station.station.refusals[-1].reason


class _SwappingClient(Client):
    """Opens the secure channel with its own key and certificate, then names another (trusted)
    certificate in CreateSession."""

    borrowed: bytes = b""

    async def create_session(self):  # type: ignore[no-untyped-def]
        self.security_policy.host_certificate = self.borrowed
        return await super().create_session()


def test_a_client_naming_another_certificate_in_create_session_is_refused(
    world: OpcUaWorld, bridge_station: RunningStation, warnings: pytest.LogCaptureFixture
) -> None:
    impostor = world.self_signed

    async def attempt() -> None:
        client = _SwappingClient(bridge_station.endpoint, timeout=20)
        client.application_uri = world.reader.application_uri
        client.borrowed = world.reader.certificate_der()
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            impostor.certificate_der(),
            impostor.private_key_der(),
            mode=MessageSecurityMode.SignAndEncrypt,
        )
        await client.connect()

    with pytest.raises(UaError):
        asyncio.run(attempt())
    verdict = bridge_station.station.refusals[-1]
    assert verdict.status == "BadSecurityChecksFailed"
    assert "not the one the secure channel was opened with" in verdict.reason
    assert logged(warnings, "not the one the secure channel was opened with")


class _UncheckedClient(Client):
    """Names no certificate in CreateSession (asyncua's server then skips its validator) and
    does not check the answer: what a hostile client may do."""

    async def create_session(self) -> ua.CreateSessionResult:
        description = ua.ApplicationDescription()
        description.ApplicationUri = "urn:nobody:client"
        description.ApplicationType = ua.ApplicationType.Client
        params = ua.CreateSessionParameters()
        params.ClientDescription = description
        params.ClientNonce = os.urandom(32)
        params.EndpointUrl = self.server_url.geturl()
        params.SessionName = "unchecked"
        params.RequestedSessionTimeout = 60_000
        response = await self.uaclient.create_session(params)
        self._server_nonce = response.ServerNonce
        self._policy_ids = response.ServerEndpoints[0].UserIdentityTokens
        return response


@pytest.mark.parametrize("secure", [True, False], ids=["encrypted-channel", "no-security"])
def test_a_session_whose_client_certificate_was_never_checked_is_not_activated(
    world: OpcUaWorld,
    bridge_station: RunningStation,
    warnings: pytest.LogCaptureFixture,
    secure: bool,
) -> None:
    async def attempt() -> None:
        client = _UncheckedClient(bridge_station.endpoint, timeout=20)
        if secure:
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                world.self_signed.certificate_der(),
                world.self_signed.private_key_der(),
                mode=MessageSecurityMode.SignAndEncrypt,
            )
        await client.connect()
        await client.disconnect()

    before = len(bridge_station.station.verdicts)
    with pytest.raises(UaError, match=r"BadUserAccessDenied|access denied"):
        asyncio.run(attempt())
    assert len(bridge_station.station.verdicts) == before  # asyncua skipped the validator
    assert logged(warnings, "refused OPC UA session activation")


# -- stations the reader turns away -------------------------------------------------------------


@pytest.fixture
def doomed_station(world: OpcUaWorld) -> Iterator[RunningStation]:
    with running(world, world.doomed_station, Route.BRIDGE) as station:
        yield station


def test_revoking_the_station_makes_the_next_connection_fail(
    world: OpcUaWorld, doomed_station: RunningStation, warnings: pytest.LogCaptureFixture
) -> None:
    assert read(world, doomed_station).result == RESULT
    revoke(world.linked.jp, world.doomed_station)
    with pytest.raises(PeerRefusedError, match="this client refused the station") as refused:
        read(world, doomed_station, policy=SecurityPolicy.AES256_SHA256_RSAPSS)
    assert refused.value.status == "BadCertificateRevoked"
    assert "revoked" in refused.value.message
    assert logged(warnings, f"refused OPC UA server {world.doomed_station.subject}")


def test_the_reader_refuses_a_station_that_claims_another_application_uri(
    world: OpcUaWorld, warnings: pytest.LogCaptureFixture
) -> None:
    claimed = "urn:hayabusa:eol-test-station:EOL-4"
    with (
        running(world, world.station, Route.BRIDGE, application_uri=claimed) as station,
        pytest.raises(PeerRefusedError) as refused,
    ):
        read(world, station)
    assert refused.value.status == "BadCertificateUriInvalid"
    assert f"the application URI '{claimed}' it describes itself with is not in its" in (
        refused.value.message
    )
    assert logged(warnings, f"refused OPC UA server {world.station.subject}")


def test_the_reader_insists_on_the_station_it_expects_and_its_host(
    world: OpcUaWorld, bridge_station: RunningStation
) -> None:
    with pytest.raises(PeerRefusedError, match="is not the expected 'urn:hayabusa:other'"):
        read(world, bridge_station, expected_uri="urn:hayabusa:other")
    with pytest.raises(PeerRefusedError, match=r"host 192\.0\.2\.7 is not among") as refused:
        read(world, bridge_station, host="192.0.2.7")
    assert refused.value.status == "BadCertificateHostNameInvalid"
    # The station's own name for itself passes.
    assert read(world, bridge_station, expected_uri=STATION_URI).result == RESULT


def test_nothing_listening_is_unreachable(world: OpcUaWorld) -> None:
    from trustbridge.node.launcher import free_port

    validator = world.validator("de", Route.BRIDGE, PeerRole.SERVER)
    with pytest.raises(StationUnreachableError, match="does not answer"):
        asyncio.run(
            read_test_result(
                f"opc.tcp://127.0.0.1:{free_port()}/trustbridge/station",
                identity=world.reader,
                validator=validator,
                serial=SERIAL,
                timeout=5,
            )
        )
