"""The trust resolver over both routes, on three linked homes and a LOTL with two lists."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from tests.homes import NOW
from tests.trust.linked import HomesFetcher, Linked, build_linked
from trustbridge.errors import ValidationError
from trustbridge.home import Home
from trustbridge.pki.profiles import SubjectKind
from trustbridge.trust.lists import (
    LevelEquivalence,
    Lotl,
    Operator,
    Pointer,
    Provider,
    Service,
    ServiceKind,
    ServiceStatus,
    StatusChange,
    TrustList,
)
from trustbridge.trust.reference import GERMANY, ITG, JAPAN
from trustbridge.trust.resolver import (
    InsufficientLevelError,
    Route,
    TrustConfig,
    TrustResolver,
    UntrustedError,
)
from trustbridge.trust.schemes import TrustScheme

SINCE = NOW - timedelta(days=30)


def national_list(
    home: Home, scheme: TrustScheme, *, status: ServiceStatus = ServiceStatus.GRANTED
) -> TrustList:
    root = home.chain_of("root")[-1]
    return TrustList(
        id=scheme.code,
        scheme=scheme,
        operator=Operator(f"{scheme.name} operator", scheme.code.upper()),
        sequence=1,
        issued_at=NOW - timedelta(days=1),
        next_update=NOW + timedelta(days=30),
        providers=(
            Provider(
                name=f"{home.config.node_name} TSP",
                country=scheme.code.upper(),
                organization_identifier=f"VAT{scheme.code.upper()}-123456",
                services=(
                    Service(
                        name=f"{home.config.node_name} root",
                        kind=ServiceKind.CA,
                        certificates=(root,),
                        status_history=(StatusChange(status, SINCE),),
                        subject_kinds=tuple(SubjectKind),
                        levels=scheme.levels,
                    ),
                ),
            ),
        ),
    )


def lotl(signer: x509.Certificate, *, drop: tuple[str, str] | None = None) -> Lotl:
    pairs = [
        (GERMANY, ("itg-loa1", "itg-loa2", "itg-loa3")),
        (JAPAN, ("itg-loa1", "itg-loa2", "itg-loa3")),
    ]
    equivalences = tuple(
        LevelEquivalence(scheme.code, level.oid, ITG.level(ref).oid)
        for scheme, refs in pairs
        for level, ref in zip(scheme.levels, refs, strict=True)
        if drop != (scheme.code, level.name)
    )
    return Lotl(
        group=ITG,
        operator=Operator("ITG group operator", "DE"),
        sequence=1,
        issued_at=NOW - timedelta(days=1),
        next_update=NOW + timedelta(days=60),
        pointers=tuple(
            Pointer(s.code, s.code.upper(), f"https://lists.example/{s.code}.jws", (signer,))
            for s, _ in pairs
        ),
        equivalences=equivalences,
    )


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linked]:
    world = build_linked(tmp_path_factory.mktemp("resolver"))
    yield world
    world.close()


def german_config(world: Linked, **changes: object) -> TrustConfig:
    config = TrustConfig(
        scheme=GERMANY,
        anchors=(world.root(world.de),),
        lotl=lotl(world.root(world.bridge)),
        trust_lists=(national_list(world.de, GERMANY), national_list(world.jp, JAPAN)),
        reference=ITG,
        known_schemes=(JAPAN,),
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def resolver(world: Linked, config: TrustConfig, **options: object) -> TrustResolver:
    return TrustResolver(config, fetcher=HomesFetcher(world.homes), **options)  # type: ignore[arg-type]


def test_a_japanese_identity_by_both_routes_at_the_same_reference_level(linked: Linked) -> None:
    result = resolver(linked, german_config(linked)).resolve(linked.jp_person, at=NOW)
    assert result.route is Route.BRIDGE
    assert str(result.holder_level) == "jp/jp-level3"
    assert str(result.own_level) == "de/de-high"
    assert str(result.reference_level) == "itg/itg-loa3"
    assert result.disagreement is None
    by_route = {o.route: o for o in result.routes}
    assert str(by_route[Route.TRUST_LIST].reference_level) == "itg/itg-loa3"
    assert "ITG Bridge CA" in result.path[1].subject.rfc4514_string()


def test_the_trust_list_route_alone(linked: Linked) -> None:
    config = german_config(linked, anchors=())
    result = resolver(linked, config).resolve(linked.jp_person, at=NOW)
    assert result.route is Route.TRUST_LIST
    assert (str(result.holder_level), str(result.own_level), str(result.reference_level)) == (
        "jp/jp-level3",
        "de/de-high",
        "itg/itg-loa3",
    )
    assert "granted in trust list jp" in " ".join(result.reasons)


def test_own_scheme_identities_resolve_without_mapping(linked: Linked) -> None:
    result = resolver(linked, german_config(linked)).resolve(linked.de_person, at=NOW)
    assert result.route is Route.OWN_SCHEME
    assert str(result.holder_level) == str(result.own_level) == "de/de-high"
    assert str(result.reference_level) == "itg/itg-loa3"


def test_without_the_bridge_mapping_only_the_trust_list_route_passes(tmp_path: Path) -> None:
    world = build_linked(tmp_path, jp_levels=("jp-level1", "jp-level2"))
    try:
        result = resolver(world, german_config(world)).resolve(world.jp_person, at=NOW)
        assert result.route is Route.TRUST_LIST
        bridge = next(o for o in result.routes if o.route is Route.BRIDGE)
        assert bridge.error is not None and "polic" in bridge.error
    finally:
        world.close()


def test_disagreeing_routes_are_reported_and_the_lower_level_wins(linked: Linked) -> None:
    table = lotl(linked.root(linked.bridge))
    lowered = replace(
        table,
        equivalences=tuple(
            replace(eq, reference=ITG.level("itg-loa2").oid)
            if eq.scheme == "jp" and eq.national == JAPAN.level("jp-level3").oid
            else eq
            for eq in table.equivalences
        ),
    )
    result = resolver(linked, german_config(linked, lotl=lowered)).resolve(linked.jp_person, at=NOW)
    assert result.disagreement is not None and "itg/itg-loa2" in result.disagreement
    assert str(result.reference_level) == "itg/itg-loa2"
    assert result.route is Route.TRUST_LIST


def test_minimum_level_and_untrusted_identities(linked: Linked) -> None:
    r = resolver(linked, german_config(linked))
    assert r.resolve(linked.jp_person, at=NOW, min_level="itg-loa3").reference_level is not None
    suspended = german_config(
        linked,
        anchors=(),
        trust_lists=(national_list(linked.jp, JAPAN, status=ServiceStatus.SUSPENDED),),
    )
    with pytest.raises(UntrustedError) as caught:
        resolver(linked, suspended).resolve(linked.jp_person, at=NOW)
    assert {o.route for o in caught.value.routes} == {Route.BRIDGE, Route.TRUST_LIST}
    with pytest.raises(ValidationError, match="not a reference level"):
        r.resolve(linked.jp_person, at=NOW, min_level="jp-level3")
    lowered = german_config(
        linked, lotl=lotl(linked.root(linked.bridge), drop=("jp", "jp-level3")), anchors=()
    )
    with pytest.raises(InsufficientLevelError, match="at no reference level"):
        resolver(linked, lowered).resolve(linked.jp_person, at=NOW, min_level="itg-loa1")


def test_insufficient_level(linked: Linked) -> None:
    table = lotl(linked.root(linked.bridge))
    lowered = replace(
        table,
        equivalences=tuple(
            replace(eq, reference=ITG.level("itg-loa1").oid) if eq.scheme == "jp" else eq
            for eq in table.equivalences
        ),
    )
    config = german_config(linked, lotl=lowered, anchors=())
    with pytest.raises(InsufficientLevelError, match="below the required itg/itg-loa2"):
        resolver(linked, config).resolve(linked.jp_person, at=NOW, min_level="itg-loa2")


def test_cached_answers_equal_fresh_ones_over_random_scenarios(linked: Linked) -> None:
    """Differential: a cached resolver and an uncached one agree on every query."""
    rng = random.Random(20261126)  # noqa: S311 - reproducible scenarios, not keys
    configs = [
        german_config(linked),
        german_config(linked, anchors=()),
        german_config(linked, trust_lists=()),
        german_config(linked, lotl=lotl(linked.root(linked.bridge), drop=("jp", "jp-level3"))),
    ]
    subjects = [linked.jp_person, linked.de_person, linked.root(linked.jp)]
    cached = {id(c): resolver(linked, c) for c in configs}
    for _ in range(60):
        config = rng.choice(configs)
        subject = rng.choice(subjects)
        at = NOW + timedelta(hours=rng.choice([0, 1, 5, 23, 25, 24 * 40, -24 * 400]))
        fresh = resolver(linked, config, cache=False)
        outcomes: list[object] = []
        for r in (cached[id(config)], fresh):
            try:
                res = r.resolve(subject, at=at)
                outcomes.append(
                    (
                        res.route,
                        res.path,
                        res.holder_level,
                        res.own_level,
                        res.reference_level,
                        res.disagreement,
                        res.routes,
                    )
                )
            except ValidationError as exc:
                outcomes.append(type(exc).__name__)
        assert outcomes[0] == outcomes[1], (config, subject.subject, at)
