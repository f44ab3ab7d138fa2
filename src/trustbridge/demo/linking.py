"""The demo's linking of the two schemes: the bridge, the trust lists, the LOTL, resolutions.

Step 1 adds the group operator's node (reference levels, the LOTL signer) and the bridge node
("DE-JP Industrial Bridge CA"), which cross-certifies both national roots both ways with
policy mappings onto ``itg-loa1..3``. Step 2 has each scheme operator sign a trust list of its
TSP's services and the group sign the LOTL that points to both lists and maps both schemes'
levels. Step 5 lets each company resolve the other's organization identity over the nodes'
real HTTP interfaces, once through the bridge and once through the trust lists.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rich.markup import escape

from trustbridge.demo.manifest import BridgeEntry, ResolutionEntry
from trustbridge.errors import ReleaseError
from trustbridge.home.home import Home
from trustbridge.pki.ca import self_signed_certificate
from trustbridge.pki.cross import CrossCertificateSpec
from trustbridge.pki.keys import KeyType, generate_private_key
from trustbridge.pki.profiles import SubjectKind
from trustbridge.pki.signers import FileSigner
from trustbridge.trust import reference
from trustbridge.trust.lists import (
    LevelEquivalence,
    Lotl,
    MemoryListState,
    Operator,
    Pointer,
    Provider,
    Service,
    ServiceKind,
    ServiceStatus,
    StatusChange,
    TrustList,
    read_lotl,
    read_trust_list,
    sign_lotl,
    sign_trust_list,
)
from trustbridge.trust.resolver import Resolution, TrustConfig, TrustResolver

if TYPE_CHECKING:
    from trustbridge.demo.scenario import _Country, _Node, _Run

__all__ = ["bridge_schemes", "publish_lists", "resolve_partners"]

#: The schemes' levels, lowest first, mapped one to one onto itg-loa1..3.
_REFERENCE = reference.ITG


def _pem(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def _root_slug(home: Home) -> str:
    return next(c.slug for c in home.cas() if c.is_root)


# -- step 1: the group and the bridge ------------------------------------------------------------


def bridge_schemes(
    run: _Run,
    countries: tuple[_Country, ...],
    stack: ExitStack,
    *,
    group_node: _Node,
    bridge_node: _Node,
) -> None:
    """The group operator's node, and the bridge CA cross-certifying both roots both ways."""
    GROUP, BRIDGE = group_node, bridge_node  # noqa: N806
    group = run.node(GROUP, stack)
    group.create_scheme(_REFERENCE)
    group.create_root_ca(
        scheme=_REFERENCE.code,
        name="Industrial Trust Group CA",
        country="DE",
        organization=GROUP.organization,
        key=run.ca_key(KeyType.P256),
        path_length=0,
    )
    run.say(
        "group [bold]Industrial Trust Group[/]: reference levels "
        + " < ".join(lv.name for lv in _REFERENCE.levels)
    )
    home = run.node(BRIDGE, stack)
    for scheme in (_REFERENCE, *(c.scheme for c in countries)):
        home.create_scheme(scheme)
    bridge = home.create_root_ca(
        scheme=_REFERENCE.code,
        name="DE-JP Industrial Bridge CA",
        country="DE",
        organization=BRIDGE.organization,
        key=run.ca_key(KeyType.P384),
        path_length=None,
    )
    assert bridge.certificate is not None
    bridge_file = run.write(
        run.out / "artifacts" / "bridge" / "bridge-ca.pem", _pem([bridge.certificate])
    )
    crossed: list[str] = []
    for c in countries:
        operator = run.homes[c.operator.name]
        operator.create_scheme(_REFERENCE)
        root = operator.chain_of(_root_slug(operator))[-1]
        national = [lv.name for lv in c.scheme.levels]
        ref = [lv.name for lv in _REFERENCE.levels]
        # The bridge maps itg-loaN onto the scheme's level N; the root maps its level N onto
        # itg-loaN: the two directions of RFC 5280 policy mapping.
        down = home.bridge.cross_certify(
            bridge.slug,
            root,
            CrossCertificateSpec(
                mappings=home.bridge.parse_mappings(
                    [f"{a}={b}" for a, b in zip(ref, national, strict=True)]
                ),
                # The bridge vouches for the scheme only at its levels: no anyPolicy below it.
                inhibit_any_policy=0,
                subject_repository_url=f"{operator.config.base_url}/pki/"
                f"{_root_slug(operator)}/issued.p7c",
            ),
        )
        operator.bridge.import_cross_certificate(down.certificate)
        up = operator.bridge.cross_certify(
            _root_slug(operator),
            bridge.certificate,
            CrossCertificateSpec(
                mappings=operator.bridge.parse_mappings(
                    [f"{a}={b}" for a, b in zip(national, ref, strict=True)]
                ),
                inhibit_any_policy=0,
                subject_repository_url=f"{home.config.base_url}/pki/{bridge.slug}/issued.p7c",
            ),
        )
        home.bridge.import_cross_certificate(up.certificate)
        folder = run.out / "artifacts" / "bridge" / "cross"
        crossed.append(run.write(folder / f"bridge-to-{c.code}-root.pem", _pem([down.certificate])))
        crossed.append(run.write(folder / f"{c.code}-root-to-bridge.pem", _pem([up.certificate])))
        pairs = ", ".join(f"{a}->{b}" for a, b in down.mappings)
        run.say(
            f"bridge certifies [bold]{c.root_name}[/] ({pairs}); the root certifies the bridge back"
        )
    run.bridge_entry = BridgeEntry(
        node=BRIDGE.name, certificate=bridge_file, cross_certificates=crossed
    )
    run.say(
        f"[bold]DE-JP Industrial Bridge CA[/] (P-384) -> {bridge_file}; "
        f"{len(crossed)} cross-certificates"
    )


# -- step 2: trust lists and the LOTL -------------------------------------------------------------


def _list_signer(run: _Run, home: Home, name: str) -> tuple[FileSigner, x509.Certificate]:
    """A list-signing key and its self-signed certificate (pinned by relying parties)."""
    signer = FileSigner(generate_private_key(KeyType.P256), f"{home.config.node_name} list signer")
    now = home.now()
    subject = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, name),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, name.rsplit(" ", 2)[0]),
        ]
    )
    certificate = self_signed_certificate(
        signer,
        subject,
        not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=3 * 365),
    )
    return signer, certificate


def _services(run: _Run, c: _Country, tsp: Home, since: object) -> tuple[Service, ...]:
    services: list[Service] = []
    for spec in (c.identity_ca, c.device_ca):
        info = tsp.ca(spec.slug)
        assert info.certificate is not None
        services.append(
            Service(
                name=spec.name,
                kind=ServiceKind.CA,
                certificates=(info.certificate,),
                status_history=(StatusChange(ServiceStatus.GRANTED, since),),  # type: ignore[arg-type]
                subject_kinds=tuple(SubjectKind(k) for k in info.kinds),
                levels=tuple(c.scheme.level(lv) for lv in info.levels),
            )
        )
    tsa = tsp.status.tsa(tsp.status.default_tsa_ca())
    services.append(
        Service(
            name=f"{c.tsp.organization} time-stamping",
            kind=ServiceKind.TSA,
            certificates=(tsa.certificate,),
            status_history=(StatusChange(ServiceStatus.GRANTED, since),),  # type: ignore[arg-type]
        )
    )
    return tuple(services)


def _body(run: _Run, c: _Country, since: datetime) -> Provider:
    """The scheme's conformity assessment body, accredited for the criteria of its scope."""
    certificate = run.bodies[c.code].certificate
    return Provider(
        name=c.body.organization,
        country=c.country,
        organization_identifier=c.body_subject.identifier,
        services=tuple(
            Service(
                name=f"{c.body.organization} ({kind.value})",
                kind=kind,
                certificates=(certificate,),
                status_history=(StatusChange(ServiceStatus.GRANTED, since),),
                scope=scope,
            )
            for kind, scope in c.body_services
        ),
    )


def publish_lists(run: _Run, countries: tuple[_Country, ...], *, group_node: _Node) -> None:
    """Each scheme operator signs a trust list of its TSP and its accredited conformity
    assessment body; the group signs the LOTL."""
    GROUP = group_node  # noqa: N806
    group = run.homes[GROUP.name]
    now = group.now().replace(microsecond=0)
    pointers: list[Pointer] = []
    equivalences: list[LevelEquivalence] = []
    for c in countries:
        operator = run.homes[c.operator.name]
        tsp = run.homes[c.tsp.name]
        signer, certificate = _list_signer(run, operator, f"{c.operator.organization} list signer")
        trust_list = TrustList(
            id=c.code,
            scheme=c.scheme,
            operator=Operator(c.operator.organization, c.country),
            sequence=1,
            issued_at=now,
            next_update=now + timedelta(days=30),
            providers=(
                Provider(
                    name=c.tsp.organization,
                    country=c.country,
                    organization_identifier=c.officer.organization_identifier or "",
                    services=_services(run, c, tsp, now - timedelta(minutes=1)),
                ),
                _body(run, c, now - timedelta(minutes=1)),
            ),
        )
        jws = sign_trust_list(trust_list, signer, chain=[certificate])
        operator.trust.publish("trust-list.jws", jws)
        file = run.write(run.artifact(c.code, "trust-list.jws"), jws)
        run.write(run.artifact(c.code, "trust-list-signer.pem"), _pem([certificate]))
        entry = next(s for s in run.schemes if s["code"] == c.code)
        entry["trust_list"] = file
        location = f"{operator.config.base_url}/trust/trust-list.jws"
        pointers.append(Pointer(c.code, c.country, location, (certificate,)))
        equivalences += LevelEquivalence.by_rank(c.scheme, _REFERENCE)
        accredited = "; ".join(f"{k.value} for {', '.join(scope)}" for k, scope in c.body_services)
        run.say(
            f"trust list [bold]{c.code}[/]: {c.tsp.organization} "
            f"({len(trust_list.providers[0].services)} services, granted), "
            f"{c.body.organization} ({accredited}); signed by "
            f"{c.operator.organization} -> {file}; served at {location}"
        )
    signer, certificate = _list_signer(run, group, "Industrial Trust Group LOTL signer")
    lotl = Lotl(
        group=_REFERENCE,
        operator=Operator(GROUP.organization, "DE"),
        sequence=1,
        issued_at=now,
        next_update=now + timedelta(days=30),
        pointers=tuple(pointers),
        equivalences=tuple(equivalences),
    )
    jws = sign_lotl(lotl, signer, chain=[certificate])
    group.trust.publish("lotl.jws", jws)
    run.lotl_file = run.write(run.out / "artifacts" / "group" / "lotl.jws", jws)
    run.lotl_signer = certificate
    run.write(run.out / "artifacts" / "group" / "lotl-signer.pem", _pem([certificate]))
    table = ", ".join(
        f"{run_level(c, eq)}->{_REFERENCE.level_by_oid(eq.reference).name}"  # type: ignore[union-attr]
        for c in countries
        for eq in equivalences
        if eq.scheme == c.code
    )
    run.say(f"LOTL of the [bold]Industrial Trust Group[/] -> {run.lotl_file}; equivalences {table}")


def run_level(c: _Country, eq: LevelEquivalence) -> str:
    level = c.scheme.level_by_oid(eq.national)
    return level.name if level is not None else eq.national.dotted_string


# -- step 5: resolving the partner -----------------------------------------------------------------


def _fetch(url: str) -> bytes:
    response = httpx.get(url, timeout=30)
    response.raise_for_status()
    return response.content


def _config(run: _Run, c: _Country, *, bridge: bool, lists: bool, group_node: _Node) -> TrustConfig:
    """A company's trust as a relying party: its scheme's root; the LOTL fetched and verified."""
    operator = run.homes[c.operator.name]
    anchors = (operator.chain_of(_root_slug(operator))[-1],) if bridge else ()
    lotl = None
    trust_lists: list[TrustList] = []
    if lists:
        group = run.served[group_node.name]
        state = MemoryListState()
        at = operator.now()
        assert run.lotl_signer is not None, "the LOTL is published in step 2"
        lotl = read_lotl(
            _fetch(f"{group.http_url}/trust/lotl.jws"),
            trusted_signers=[run.lotl_signer],
            at=at,
            state=state,
            source=f"{group.http_url}/trust/lotl.jws",
        )
        for pointer in lotl.pointers:
            trust_lists.append(
                read_trust_list(
                    _fetch(pointer.location), lotl=lotl, at=at, state=state, source=pointer.location
                )
            )
    others = tuple(x.scheme for x in run.countries if x.code != c.code)  # partners' schemes
    return TrustConfig(
        scheme=c.scheme,
        anchors=anchors,
        lotl=lotl,
        trust_lists=tuple(trust_lists),
        reference=_REFERENCE,
        known_schemes=others,
    )


def resolve_partners(run: _Run, countries: tuple[_Country, ...], *, group_node: _Node) -> None:
    """Each company resolves the other's organization identity, through each route alone."""
    for relying in countries:
        for holder in countries:
            if holder is relying:
                continue
            entry = next(
                i
                for i in run.identities
                if i["holder"] == holder.company.name
                and i["kind"] == "organization"
                and i["purpose"] == "identity"
            )
            certificate = x509.load_pem_x509_certificate(
                (run.out / entry["certificate"]).read_bytes()
            )
            for route, bridge, lists in (("bridge", True, False), ("trust-list", False, True)):
                resolver = TrustResolver(
                    _config(run, relying, bridge=bridge, lists=lists, group_node=group_node),
                    fetcher=run.homes[relying.operator.name].fetcher(),
                )
                result = resolver.resolve(certificate, at=run.homes[relying.operator.name].now())
                if result.route.value != route:
                    raise ReleaseError(f"expected the {route} route, got {result.route}")
                _record(run, relying, holder, result)


def _record(run: _Run, relying: _Country, holder: _Country, result: Resolution) -> None:
    folder = (
        run.out
        / "artifacts"
        / "resolutions"
        / f"{relying.code}-resolves-{holder.code}-{result.route.value}"
    )
    files = [
        run.write(folder / f"{index}.pem", _pem([certificate]))
        for index, certificate in enumerate(result.path)
    ]
    if result.reference_level is None or result.own_level is None:
        raise ReleaseError(f"{result.holder} resolved without a reference or own level")
    run.resolutions.append(
        ResolutionEntry(
            holder=holder.company.name,
            relying_party=relying.company.name,
            route=result.route.value,
            path=files,
            holder_level=result.holder_level.name,
            relying_level=result.own_level.name,
            reference_level=result.reference_level.name,
            reasons=list(result.reasons),
        )
    )
    run.say(
        f"{escape(relying.company.name)} resolves [bold]{escape(holder.company.name)}[/] by the "
        f"[bold]{result.route}[/] route: {result.holder_level.name} = "
        f"{result.reference_level.name} = {result.own_level.name} "
        f"({len(result.path)} certificates, {result.revocation})"
    )
