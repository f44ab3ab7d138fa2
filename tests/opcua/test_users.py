"""People in OPC UA sessions: X.509 user identity tokens of trustbridge person identities,
resolved by the station like applications are, and every read of a sensor's results decided by
the access policies for the session's user (the person, or the client application alone)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies, uacrypto
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua import MessageSecurityMode
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError
from cryptography.hazmat.primitives.serialization import Encoding

from tests.opcua.conftest import RESULT, SERIAL, RunningStation, read, read_verdict, running
from tests.opcua.world import (
    HAYABUSA,
    HAYABUSA_ID,
    MUSTER,
    MUSTER_ID,
    SESSION_CLOCK,
    OpcUaWorld,
    issue,
    issue_person,
    person_subject,
)
from trustbridge.assessment.access import AccessPolicies, EntityType, entity_from_data
from trustbridge.clock import Clock
from trustbridge.errors import InputError, KeyStoreError, NotFoundError, TrustbridgeError
from trustbridge.opcua import (
    ApplicationIdentity,
    PeerRole,
    PeerValidator,
    PeerVerdict,
    SecurityPolicy,
)
from trustbridge.opcua._asyncua import (
    MAX_NODES_PER_REQUEST,
    MAX_PATH_ELEMENTS,
    MAX_USER_TOKENS,
    _session_user,
)
from trustbridge.opcua.access import ReadDecision, StationAccess
from trustbridge.opcua.certificates import PeerRefusedError, check_user_certificate
from trustbridge.opcua.client import SessionRefusedError, _Client
from trustbridge.opcua.identity import UserIdentity
from trustbridge.opcua.station import NAMESPACE, StationServer
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.profiles import PersonSubject, Role, SoftwareSubject
from trustbridge.pki.signers import FileSigner
from trustbridge.trust.resolver import Route


def _access(
    purposes: tuple[str, ...] = ("quality-assurance",),
    member_schemes: dict[str, str] | None = None,
    clock: Clock = SESSION_CLOCK,
) -> StationAccess:
    """The shipped policies, Hayabusa's results shared with Muster under contract C-OPC-1."""
    owner = entity_from_data(
        {"type": "Organization", "id": HAYABUSA_ID, "name": HAYABUSA, "country": "JP"}
    )
    contract = entity_from_data(
        {
            "id": "C-OPC-1",
            "parties": [MUSTER_ID, HAYABUSA_ID],
            "purposes": list(purposes),
            "retention_days": 365,
        },
        entity_type=EntityType.CONTRACT,
    )
    return StationAccess(
        AccessPolicies.default(),
        owner=owner,
        contract=contract,
        clock=clock,
        member_schemes=member_schemes,
    )


@contextmanager
def person_station(world: OpcUaWorld, **options: object) -> Iterator[RunningStation]:
    """The station taking X.509 user tokens, persons resolved by the bridge route."""
    with running(
        world,
        world.station,
        Route.BRIDGE,
        users=world.validator("jp", Route.BRIDGE, PeerRole.USER),
        **options,
    ) as running_station:
        yield running_station


@pytest.fixture(scope="module")
def station(world: OpcUaWorld) -> Iterator[RunningStation]:
    """The station taking X.509 user tokens (persons resolved by the bridge route) and deciding
    every read with the access policies."""
    with person_station(world, access=_access()) as running_station:
        yield running_station


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="trustbridge.opcua")
    return caplog


def logged(caplog: pytest.LogCaptureFixture, text: str, level: int = logging.WARNING) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "trustbridge.opcua" and r.levelno == level and text in r.getMessage()
    ]


def refused_read(
    world: OpcUaWorld,
    station: RunningStation,
    user: UserIdentity | None,
    *,
    status: str | None = None,
    match: str | None = None,
    identity: ApplicationIdentity | None = None,
) -> tuple[TrustbridgeError, list[ReadDecision]]:
    """``user`` (None: the client alone) tries to read at ``station`` and is refused: the
    session with ``status``, or (None) the sensor is not shown to it. Returns the refusal and
    the read decisions the station made meanwhile."""
    access = station.station.access
    assert access is not None
    before, denied_before = len(access.decisions), access.denied_total
    expected = NotFoundError if status is None else SessionRefusedError
    with pytest.raises(expected, match=match) as refused:
        read(world, station, user, identity=identity)
    if isinstance(refused.value, SessionRefusedError):
        assert refused.value.status == status
    made = access.decisions[before:]
    assert access.denied_total - denied_before == len([d for d in made if not d.allowed])
    return refused.value, made


# -- a person reads -------------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(SecurityPolicy))
def test_an_operator_of_a_contract_party_reads_through_the_client(
    world: OpcUaWorld,
    station: RunningStation,
    records: pytest.LogCaptureFixture,
    policy: SecurityPolicy,
) -> None:
    users = station.station.user_verdicts
    access = station.station.access
    assert access is not None
    before_users, before_decisions = len(users), len(access.decisions)
    allowed_before = access.allowed_total
    outcome = read(world, station, world.operator, policy=policy)
    assert outcome.result == RESULT
    # The station resolved the German person by the bridge, at the reference level.
    (person,) = users[before_users:]
    assert person.accepted and person.resolution is not None
    assert person.role is PeerRole.USER
    assert person.subject == world.operator.subject
    assert person.resolution.route is Route.BRIDGE
    assert str(person.resolution.holder_level) == "de/de-substantial"
    assert str(person.resolution.reference_level) == "itg/itg-loa2"
    # One decision for the session and sensor, allowed by the operator policy.
    (decision,) = access.decisions[before_decisions:]
    assert decision.allowed and decision.person
    assert decision.serial == SERIAL
    assert decision.policies == ("operator-reads-test-reports",)
    assert access.allowed_total == allowed_before + 1
    # ... acting through Muster's client application, which the policies saw too.
    assert decision.via == f'Trustbridge::System::"{world.reader.application_uri}"'
    assert decision.principal is not None and decision.principal.startswith("Trustbridge::Person")
    assert logged(records, f"allowed OPC UA read of sensor {SERIAL} by person", logging.INFO)


# -- reads the policies deny ---------------------------------------------------------------


def test_the_client_application_alone_may_not_read(
    world: OpcUaWorld, station: RunningStation, records: pytest.LogCaptureFixture
) -> None:
    _, (decision,) = refused_read(
        world, station, None, match="shows no test results for sensor .* to this client application"
    )
    assert not decision.allowed and not decision.person
    assert decision.principal is not None and decision.principal.startswith("Trustbridge::System")
    assert decision.policies == ()
    assert "no policy permits" in decision.reasons[0]
    assert logged(records, "denied OPC UA read of sensor")


def test_a_person_without_the_operator_role_may_not_read(
    world: OpcUaWorld, station: RunningStation
) -> None:
    _, (decision,) = refused_read(
        world,
        station,
        world.clerk,
        match=r"to the user .*Lena.*: it has none, or its access policies hide them",
    )
    assert decision.person and not decision.allowed
    # The person was accepted as a user; the policies denied the read.
    assert station.station.user_verdicts[-1].accepted


def test_a_purpose_the_contract_does_not_allow_is_forbidden(world: OpcUaWorld) -> None:
    with person_station(world, access=_access(purposes=("incoming-inspection",))) as other:
        _, (decision,) = refused_read(world, other, world.operator)
        assert decision.policies == ("purpose-not-in-contract",)


def test_a_station_that_decides_nothing_lets_every_accepted_session_read(
    world: OpcUaWorld, bridge_station: RunningStation
) -> None:
    # The station of the other tests: no access policies, no user tokens taken.
    assert read(world, bridge_station, None).result == RESULT


# -- users the station refuses ---------------------------------------------------------------


def test_a_revoked_person_is_refused_at_activation(
    world: OpcUaWorld, station: RunningStation, records: pytest.LogCaptureFixture
) -> None:
    # The client learns only that the token was refused; the station's log says why.
    _, decisions = refused_read(
        world,
        station,
        world.revoked_operator,
        status="BadIdentityTokenRejected",
        match=r"for the user .*Max",
    )
    verdict = station.station.user_verdicts[-1]
    assert not verdict.accepted
    assert verdict.status == "BadCertificateRevoked"
    assert logged(records, "refused OPC UA user")
    assert decisions == []  # nothing was read, nothing decided


def test_a_station_that_takes_no_user_tokens_refuses_one(
    world: OpcUaWorld, bridge_station: RunningStation, records: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SessionRefusedError) as e:
        read(world, bridge_station, world.operator)
    assert e.value.status == "BadIdentityTokenRejected"
    assert logged(records, "an X.509 user token (this station takes none)")


def test_a_station_for_people_only_refuses_anonymous_sessions(world: OpcUaWorld) -> None:
    with person_station(world, anonymous=False) as people_only:
        with pytest.raises(SessionRefusedError) as e:
            read(world, people_only, None)
        assert e.value.status == "BadIdentityTokenRejected"
        # Without access policies an accepted person reads everything.
        assert read(world, people_only, world.operator).result == RESULT


class _TokenClient(Client):
    """Signs its X.509 user token as told: with another algorithm, or with another key."""

    algorithm: str | None = None
    signing_key: object = None

    def _add_certificate_auth(self, params, certificate, challenge, certificate_chain=None):  # type: ignore[no-untyped-def]
        super()._add_certificate_auth(params, certificate, challenge, certificate_chain)
        if self.signing_key is not None:
            policy = self.server_policy(ua.UserTokenType.Certificate)
            signature, _ = security_policies.sign_asymmetric(  # type: ignore[no-untyped-call]
                self.signing_key, challenge, policy.SecurityPolicyUri
            )
            params.UserTokenSignature.Signature = signature
        if self.algorithm is not None:
            params.UserTokenSignature.Algorithm = self.algorithm
            params.UserTokenSignature.Signature = uacrypto.sign_sha1(  # type: ignore[no-untyped-call]
                self.user_private_key, challenge
            )


def _token_attempt(
    world: OpcUaWorld, station: RunningStation, *, algorithm: str | None, signing_key: object
) -> None:
    async def attempt() -> None:
        client = _TokenClient(station.endpoint, timeout=20)
        client.application_uri = world.reader.application_uri
        client.algorithm = algorithm
        client.signing_key = signing_key
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            world.reader.certificate_der(),
            world.reader.private_key_der(),
            mode=MessageSecurityMode.SignAndEncrypt,
        )
        client.user_certificate = world.operator.certificate
        client.user_private_key = world.operator.private_key
        await client.connect()
        await client.disconnect()

    asyncio.run(attempt())


@pytest.mark.parametrize(
    ("algorithm", "foreign_key", "refusal"),
    [
        ("http://www.w3.org/2000/09/xmldsig#rsa-sha1", False, "signed with 'http://www.w3.org"),
        (None, True, "whose signature does not verify"),
    ],
    ids=["rsa-sha1", "someone-elses-certificate"],
)
def test_a_user_token_must_be_signed_by_its_holder_with_the_channels_algorithm(
    world: OpcUaWorld,
    station: RunningStation,
    records: pytest.LogCaptureFixture,
    algorithm: str | None,
    foreign_key: bool,
    refusal: str,
) -> None:
    # asyncua itself would accept RSA-SHA1; and a person's certificate is public, so a token
    # naming it without the key must fail before the station spends a resolution on it.
    before = len(station.station.user_verdicts)
    key = generate_private_key(KeyType.RSA2048) if foreign_key else None
    with pytest.raises(UaError, match="BadUserSignatureInvalid"):
        _token_attempt(world, station, algorithm=algorithm, signing_key=key)
    assert len(station.station.user_verdicts) == before  # the person was never resolved
    assert logged(records, refusal)


# -- what a user's certificate must be ---------------------------------------------------------


def test_only_a_persons_rsa_identity_is_a_user(world: OpcUaWorld) -> None:
    check_user_certificate(world.operator.certificate)
    with pytest.raises(PeerRefusedError, match="machine identity is not a person's") as e:
        check_user_certificate(world.station.certificate)
    assert e.value.status == "BadCertificateUseNotAllowed"
    with pytest.raises(PeerRefusedError, match="not RSA") as e:
        check_user_certificate(world.linked.de_person)
    assert e.value.status == "BadCertificateInvalid"
    with pytest.raises(PeerRefusedError, match="a CA certificate is not a user's identity"):
        check_user_certificate(world.rsa_station.chain[1])  # an RSA CA


def test_a_user_identity_needs_the_persons_rsa_key(world: OpcUaWorld) -> None:
    other = generate_private_key(KeyType.RSA2048)
    with pytest.raises(KeyStoreError, match="does not belong to the certificate"):
        UserIdentity(FileSigner(other, "other.key"), world.operator.chain)
    with pytest.raises(KeyStoreError, match="not RSA"):
        UserIdentity(
            FileSigner(generate_private_key(KeyType.P256), "p256.key"), world.operator.chain
        )
    with pytest.raises(InputError, match="cannot be a session's user"):
        UserIdentity(world.station.signer, world.station.chain)


def test_a_person_of_another_level_is_resolved_at_it(world: OpcUaWorld) -> None:
    # A person at de-basic maps to itg-loa1: accepted as a user, but the reference policies
    # forbid reads below itg-loa2.
    basic = issue_person(
        world.linked.de,
        world.linked.de_officer,
        person_subject("Paul", "Lang", Role.OPERATOR),
        level="de-basic",
    )
    with person_station(world, access=_access()) as other:
        _, (decision,) = refused_read(world, other, basic)
        assert decision.policies == ("identity-below-loa2",)


# -- organizations are believed from the scheme that vouches for them ---------------------------


def test_a_partners_ca_cannot_make_someone_a_member_of_the_stations_organization(
    world: OpcUaWorld,
) -> None:
    # The German staff CA issues a person who claims Hayabusa's organization identifier.
    mallory = issue_person(
        world.linked.de,
        world.linked.de_officer,
        PersonSubject(
            given_name="Mallory",
            surname="Muster",
            country="DE",
            organization=HAYABUSA,
            organization_identifier=HAYABUSA_ID,
            roles=frozenset({Role.OPERATOR}),
        ),
    )
    with person_station(world, access=_access()) as other:
        _, (decision,) = refused_read(world, other, mallory)
        assert not decision.allowed and decision.policies == ()
        assert "claims to belong to this station's organization" in decision.reasons[0]
        assert "resolved by the bridge route" in decision.reasons[0]


def test_a_partners_people_must_come_from_the_partners_scheme(world: OpcUaWorld) -> None:
    # As if Muster's own identity were from the Japanese scheme: a German person claiming
    # Muster is not believed.
    with person_station(world, access=_access(member_schemes={MUSTER_ID: "jp"})) as other:
        _, (decision,) = refused_read(world, other, world.operator)
        assert (
            "whose identity is from scheme jp, but its own is from scheme de"
            in (decision.reasons[0])
        )


def test_a_deciding_station_bounds_what_one_request_may_ask(
    world: OpcUaWorld, station: RunningStation
) -> None:
    async def ask() -> None:
        client = await _person_session(world, station.endpoint, world.operator)
        try:
            ns = await client.get_namespace_index(NAMESPACE)
            # A path longer than MAX_PATH_ELEMENTS is not walked.
            path = ua.BrowsePath()
            path.StartingNode = client.nodes.objects.nodeid
            path.RelativePath = ua.RelativePath(
                Elements=_path_up_through(ns, SERIAL) * (MAX_PATH_ELEMENTS // 3 + 1)
            )
            (found,) = await client.uaclient.translate_browsepaths_to_nodeids([path])
            assert found.StatusCode.value == StatusCodes.BadTooManyOperations
            # Nor are more nodes than MAX_NODES_PER_REQUEST read or browsed at once.
            too_many = [client.nodes.objects] * (MAX_NODES_PER_REQUEST + 1)
            with pytest.raises(UaError, match="BadTooManyOperations"):
                await client.read_values(too_many)
            browse = ua.BrowseParameters()
            description = ua.BrowseDescription()
            description.NodeId = client.nodes.objects.nodeid
            browse.NodesToBrowse = [description] * (MAX_NODES_PER_REQUEST + 1)
            with pytest.raises(UaError, match="BadTooManyOperations"):
                await client.uaclient.browse(browse)
            # The same requests within the bounds are answered.
            within = too_many[:MAX_NODES_PER_REQUEST]
            assert len(await client.read_values(within)) == MAX_NODES_PER_REQUEST
            path.RelativePath = ua.RelativePath(Elements=_path_up_through(ns, SERIAL))
            (found,) = await client.uaclient.translate_browsepaths_to_nodeids([path])
            assert found.StatusCode.value == StatusCodes.Good
        finally:
            await client.disconnect()

    asyncio.run(ask())


def _software(
    world: OpcUaWorld, side: str, organization: str, identifier: str
) -> ApplicationIdentity:
    """A client application of ``organization``, issued by ``side``'s device CA."""
    home = world.linked.de if side == "de" else world.linked.jp
    subject = SoftwareSubject(
        name=f"{organization} OPC UA Console",
        version="2.0.0",
        organization=organization,
        organization_identifier=identifier,
        country=side.upper(),
        dns_names=("localhost",),
    )
    return issue(home, "devices", subject, "de-substantial" if side == "de" else "jp-level2")


def test_a_person_acts_only_through_a_client_application_of_their_own_organization(
    world: OpcUaWorld, station: RunningStation
) -> None:
    # Muster's operator, through another German company's console (itg-loa2, like Muster's
    # reader): the session is accepted (both identities resolve), the policies deny the read.
    console = _software(world, "de", "Elbe Antriebe GmbH", "VATDE-987654321")
    _, (decision,) = refused_read(world, station, world.operator, identity=console)
    assert decision.person and not decision.allowed
    assert decision.via == f'Trustbridge::System::"{console.application_uri}"'
    assert decision.policies == ("client-of-another-organization",)


def test_a_client_application_claiming_the_persons_organization_must_come_from_its_scheme(
    world: OpcUaWorld,
) -> None:
    # A Japanese CA's software identity claiming to be Muster's: not believed, so the person
    # cannot act through it as through Muster's own software.
    forged = _software(world, "jp", MUSTER, MUSTER_ID)
    with person_station(world, access=_access(member_schemes={MUSTER_ID: "de"})) as other:
        _, (decision,) = refused_read(world, other, world.operator, identity=forged)
        assert decision.policies == ()
        assert decision.reasons[0].startswith(
            f"its client application: it claims to belong to {MUSTER_ID}, whose identity is "
            "from scheme de, but its own is from scheme jp"
        )
    # The same person through Muster's own reader reads.
    with person_station(world, access=_access(member_schemes={MUSTER_ID: "de"})) as other:
        assert read(world, other, world.operator).result == RESULT


# -- a session's checks do not last for ever -----------------------------------------------


@dataclass
class MovableClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


async def _person_session(world: OpcUaWorld, endpoint: str, user: UserIdentity | None) -> Client:
    """An asyncua session of the reader's client application, for ``user`` (None: alone)."""
    client = Client(endpoint, timeout=20)
    client.application_uri = world.reader.application_uri
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        world.reader.certificate_der(),
        world.reader.private_key_der(),
        mode=MessageSecurityMode.SignAndEncrypt,
    )
    if user is not None:
        client.user_certificate = user.certificate
        client.user_private_key = user.private_key
    await client.connect()
    return client


def _step(ns: int, name: str, *, inverse: bool = False) -> ua.RelativePathElement:
    """One element of a browse path: to the child (or with ``inverse`` the parent) ``name``."""
    element = ua.RelativePathElement()
    element.ReferenceTypeId = ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences))
    element.IncludeSubtypes = True  # type: ignore[assignment]  # asyncua's Boolean is bool
    element.IsInverse = inverse  # type: ignore[assignment]
    element.TargetName = ua.QualifiedName(name, ns)
    return element


def _path_up_through(ns: int, serial: str) -> list[ua.RelativePathElement]:
    """Objects -> SensorTests -> the sensor -> back up to SensorTests: a path whose target
    any session may see, but which only matches through the sensor."""
    return [_step(ns, "SensorTests"), _step(ns, serial), _step(ns, "SensorTests", inverse=True)]


def test_a_session_sees_only_the_sensors_it_may_read(
    world: OpcUaWorld, station: RunningStation
) -> None:
    async def look(user: UserIdentity | None) -> tuple[list[str], int, ua.NodeId | None]:
        client = await _person_session(world, station.endpoint, user)
        try:
            ns = await client.get_namespace_index(NAMESPACE)
            folder = await client.nodes.objects.get_child(f"{ns}:SensorTests")
            shown = [str((await n.read_browse_name()).Name) for n in await folder.get_children()]
            path = ua.BrowsePath()
            path.StartingNode = client.nodes.objects.nodeid
            path.RelativePath = ua.RelativePath(Elements=_path_up_through(ns, SERIAL))
            (found,) = await client.uaclient.translate_browsepaths_to_nodeids([path])
            sensor = None
            if user is not None:
                sensor = (await folder.get_child(f"{ns}:{SERIAL}")).nodeid
            return shown, int(found.StatusCode.value), sensor
        finally:
            await client.disconnect()

    async def by_id(sensor: ua.NodeId) -> None:
        # Named by its id, the hidden sensor answers exactly as a node that is not there.
        client = await _person_session(world, station.endpoint, None)
        missing = ua.NodeId(ua.Int32(999_999), sensor.NamespaceIndex)
        try:
            for node_id in (sensor, missing):
                node = client.get_node(node_id)
                with pytest.raises(UaError, match="BadNodeIdUnknown"):
                    await node.read_browse_name()
                assert await node.get_children() == []
                browse = ua.BrowseParameters()
                description = ua.BrowseDescription()
                description.NodeId = node_id
                browse.NodesToBrowse = [description]
                (result,) = await client.uaclient.browse(browse)
                assert result.StatusCode.value == StatusCodes.BadNodeIdInvalid
                assert result.References == []
                path = ua.BrowsePath()
                path.StartingNode = node_id
                path.RelativePath = ua.RelativePath(
                    Elements=[_step(sensor.NamespaceIndex, "Verdict")]
                )
                (found,) = await client.uaclient.translate_browsepaths_to_nodeids([path])
                assert found.StatusCode.value == StatusCodes.BadNodeIdInvalid
        finally:
            await client.disconnect()

    shown, status, sensor = asyncio.run(look(world.operator))
    assert sorted(shown) == sorted(r.serial for r in station.station.results)
    assert SERIAL in shown and status == StatusCodes.Good and sensor is not None
    # The client application alone may not read the sensor: its session does not see it in
    # the folder, nor through a path that only passes it, nor by its node's id.
    hidden, status, _ = asyncio.run(look(None))
    assert hidden == [] and status == StatusCodes.BadNoMatch
    asyncio.run(by_id(sensor))


def test_a_session_ends_when_its_checks_grow_old(
    world: OpcUaWorld, records: pytest.LogCaptureFixture
) -> None:
    clock = MovableClock(SESSION_CLOCK.now())
    station = StationServer(
        identity=world.station,
        validator=PeerValidator(
            role=PeerRole.CLIENT, resolver=world.resolvers("jp", Route.BRIDGE), clock=clock
        ),
        results=(RESULT,),
        users=PeerValidator(
            role=PeerRole.USER, resolver=world.resolvers("jp", Route.BRIDGE), clock=clock
        ),
        access=_access(clock=clock),
        recheck_after=timedelta(minutes=10),
    )
    runner = RunningStation(station)

    async def session() -> None:
        client = await _person_session(world, runner.endpoint, world.operator)
        try:
            assert await read_verdict(client) == "pass"
            clock.at += timedelta(minutes=9)
            assert await read_verdict(client) == "pass"
            clock.at += timedelta(minutes=2)  # past the ten minutes the checks hold
            with pytest.raises(UaError, match="BadUserAccessDenied"):
                await read_verdict(client)
        finally:
            await client.disconnect()
        # A new session is checked afresh, and reads again.
        again = await _person_session(world, runner.endpoint, world.operator)
        try:
            assert await read_verdict(again) == "pass"
        finally:
            await again.disconnect()

    try:
        asyncio.run(session())
    finally:
        runner.stop()
    assert logged(records, "ended OPC UA session of CN=Jonas Weber")


def test_a_refused_reactivation_leaves_the_session_without_a_user(
    world: OpcUaWorld, station: RunningStation
) -> None:
    async def session() -> None:
        client = await _person_session(world, station.endpoint, world.operator)
        try:
            assert await read_verdict(client) == "pass"
            client.user_private_key = world.revoked_operator.private_key
            with pytest.raises(UaError, match="BadIdentityTokenRejected"):
                await client.activate_session(certificate=world.revoked_operator.certificate)
            # Not the operator any more, and not the revoked person either.
            with pytest.raises(UaError, match="BadUserAccessDenied"):
                await read_verdict(client)
        finally:
            client.disconnect_socket()

    asyncio.run(session())


def test_a_connection_presents_a_user_token_only_a_few_times(
    world: OpcUaWorld, station: RunningStation, records: pytest.LogCaptureFixture
) -> None:
    async def session() -> None:
        client = await _person_session(world, station.endpoint, world.operator)
        try:
            for _ in range(MAX_USER_TOKENS - 1):
                await client.activate_session(certificate=world.operator.certificate)
            with pytest.raises(UaError, match="BadTooManyOperations"):
                await client.activate_session(certificate=world.operator.certificate)
        finally:
            client.disconnect_socket()

    before = len(station.station.user_verdicts)
    asyncio.run(session())
    # Each token the station took cost one resolution; the one beyond the limit none.
    assert len(station.station.user_verdicts) == before + MAX_USER_TOKENS
    assert logged(records, "a user token beyond the 4 one connection may present")


def test_the_reader_signs_a_user_token_only_under_the_channels_policy() -> None:
    client = _Client("opc.tcp://127.0.0.1:1/trustbridge/station")
    client.security_policy = SimpleNamespace(URI=SecurityPolicyBasic256Sha256.URI)  # type: ignore[assignment]
    client._policy_ids = [
        ua.UserTokenPolicy(
            PolicyId="certificate",
            TokenType=ua.UserTokenType.Certificate,
            SecurityPolicyUri=security_policies.SecurityPolicyBasic256.URI,
        )
    ]
    with pytest.raises(UaError, match="not under the channel's"):
        client.server_policy(ua.UserTokenType.Certificate)
    client._policy_ids[0].SecurityPolicyUri = SecurityPolicyBasic256Sha256.URI
    assert client.server_policy(ua.UserTokenType.Certificate).PolicyId == "certificate"


def test_a_persons_session_holds_only_as_long_as_both_identities_checks(
    world: OpcUaWorld,
) -> None:
    world_now = SESSION_CLOCK.now()

    def verdict(
        subject: str, valid_for: timedelta | None, checked_ago: timedelta = timedelta(0)
    ) -> PeerVerdict:
        resolution = (
            SimpleNamespace(valid_until=world_now + valid_for) if valid_for is not None else None
        )
        return PeerVerdict(
            role=PeerRole.USER,
            subject=subject,
            fingerprint="00",
            application_uri="",
            accepted=True,
            status="Good",
            reason="",
            at=world_now - checked_ago,
            resolution=resolution,  # type: ignore[arg-type]  # only valid_until is read
        )

    station = SimpleNamespace(clock=SESSION_CLOCK, recheck_after=timedelta(minutes=15))
    person_der = world.operator.certificate.public_bytes(Encoding.DER)
    client_der = world.reader.certificate_der()
    # The person's checks hold 15 minutes; the client application's resolution ends sooner.
    user = _session_user(
        station,
        person_der,
        verdict("CN=P", timedelta(hours=1)),
        via=(client_der, verdict("CN=C", timedelta(minutes=5))),
    )
    assert user.person and user.via_verdict is not None and user.via_certificate is not None
    assert user.expires == world_now + timedelta(minutes=5)
    # A re-activation checks the person again, not the application: the application's own
    # check still ages (checked 12 minutes ago: 3 minutes left of the 15).
    again = _session_user(
        station,
        person_der,
        verdict("CN=P", timedelta(hours=1)),
        via=(client_der, verdict("CN=C", timedelta(hours=1), checked_ago=timedelta(minutes=12))),
    )
    assert again.expires == world_now + timedelta(minutes=3)
    # Alone, the application's session holds until the station's age limit.
    alone = _session_user(station, client_der, verdict("CN=C", timedelta(hours=1)))
    assert not alone.person and alone.via_certificate is None
    assert alone.expires == world_now + timedelta(minutes=15)
