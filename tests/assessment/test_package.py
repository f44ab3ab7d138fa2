"""Presentation packages, verified for real (bridge, trust lists, status lists), then assessed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.assessment.partner import (
    AUDIENCE,
    NONCE,
    hayabusa_tokens,
    package,
)
from tests.credentials.world import MUSTER_ID, World, build_world, isms_certificate
from tests.homes import NOW
from trustbridge._canonical import canonical_json
from trustbridge.assessment import PartnerEvidence, RequirementPolicy, assess, shipped_policy
from trustbridge.credentials._jose import sign_jws
from trustbridge.credentials.errors import (
    MalformedCredentialError,
    ReplayedPresentationError,
    TamperedCredentialError,
    UntrustedIssuerError,
    WrongTypeError,
)
from trustbridge.credentials.formats import present, unverified_payload
from trustbridge.credentials.package import OpenedPackage, make_package, open_package
from trustbridge.trust.resolver import TrustResolver

SAFETY = RequirementPolicy.load(shipped_policy("safety-component-supplier-high"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("assessment"))
    yield built
    built.close()


@pytest.fixture(scope="module")
def tokens(world: World) -> list[str]:
    return hayabusa_tokens(world)


def opened(world: World, token: str | dict[str, Any], **options: Any) -> OpenedPackage:
    """Muster opens ``token`` with its own trust (the German root, bridge, trust lists)."""
    return open_package(
        token,
        verifier=world.verifier(),
        resolver=TrustResolver(world.config(), fetcher=world.fetcher),
        at=NOW,
        audience=options.pop("audience", AUDIENCE),
        nonce=options.pop("nonce", NONCE),
        **options,
    )


def test_muster_opens_hayabusas_package_and_assesses_it(world: World, tokens: list[str]) -> None:
    result = opened(world, package(world, tokens))
    assert (result.organization, result.route, result.reference_level) == (
        "NTRJP-3180001012345",
        "bridge",
        "itg/itg-loa3",
    )
    assert result.name == "Hayabusa Sensor Components K.K."
    assert len(result.verdicts) == 6 and result.refused == ()
    assert sorted(result.sources.values())[0] == "package: presentation 1"
    assessment = assess(
        SAFETY, PartnerEvidence.from_package(result), at=NOW, assessor="Muster"
    ).to_json()
    # As in the demo: everything but an ISO 9001 certificate; reliability is too thin.
    assert assessment["decision"] == "accept-with-conditions"
    assert assessment["score"] == 80.0
    assert assessment["subject"]["route"] == "bridge"
    met = {
        r["criterion"]: r["status"]
        for c in assessment["characteristics"]
        for r in c["requirements"]
    }
    assert met["iec-62443-3-3"] == "met" and met["iso-9001"] == "missing"


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"nonce": "another"}, ReplayedPresentationError, "nonce is not ours"),
        ({"audience": "urn:someone-else"}, ReplayedPresentationError, "is for audience"),
    ],
)
def test_a_package_for_another_challenge_is_refused(
    world: World, tokens: list[str], options: dict[str, str], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        opened(world, package(world, tokens[:1]), **options)


def test_a_tampered_package_is_refused(world: World, tokens: list[str]) -> None:
    document = json.loads(package(world, tokens[:2]))
    head, body, signature = document["proof"].split(".")
    # flip a character in the middle: the last one carries padding bits that must stay zero
    middle = len(signature) // 2
    flipped = (
        signature[:middle] + ("B" if signature[middle] != "B" else "C") + signature[middle + 1 :]
    )
    with pytest.raises(TamperedCredentialError):
        opened(world, {**document, "proof": f"{head}.{body}.{flipped}"})
    swapped = {**document, "presentations": document["presentations"][::-1]}
    with pytest.raises(TamperedCredentialError, match="not the ones the proof signs"):
        opened(world, swapped)
    dropped = {**document, "presentations": document["presentations"][:1]}
    with pytest.raises(TamperedCredentialError, match="not the ones the proof signs"):
        opened(world, dropped)
    with pytest.raises(WrongTypeError, match="not a presentation package"):
        opened(world, json.dumps({**document, "type": "something-else"}))
    with pytest.raises(MalformedCredentialError, match="not a presentation package"):
        opened(world, tokens[0])
    with pytest.raises(MalformedCredentialError, match="exactly the members"):
        opened(world, {**document, "extra": 1})


def test_a_package_naming_another_issuer_is_refused(world: World) -> None:
    holder = world.hayabusa
    header = {"typ": "tb-presentations+jwt", "x5c": _x5c(holder.chain)}
    # A proof without digests, naming Muster: signed by Hayabusa all the same.
    payload = {
        "iss": f"urn:trustbridge:org:{MUSTER_ID}",
        "aud": AUDIENCE,
        "nonce": NONCE,
        "iat": int(NOW.timestamp()),
        "presentations": [],
    }
    proof = sign_jws(header, canonical_json(payload), holder.holder.signer)
    document = {"type": "tb-presentations", "proof": proof, "presentations": [], "suppliers": []}
    with pytest.raises(UntrustedIssuerError, match="names the issuer"):
        opened(world, document)


def test_presentations_that_fail_do_not_count_and_are_reported(
    world: World, tokens: list[str]
) -> None:
    holder = world.hayabusa.holder.signer
    stale = present(tokens[0], holder=holder, audience=AUDIENCE, nonce="old", issued_at=NOW)
    # Muster's own credential, presented with Muster's key, slipped into Hayabusa's package.
    foreign_token = world.issue(world.fuji, isms_certificate(), holder=world.muster)
    foreign = present(
        foreign_token,
        holder=world.muster.holder.signer,
        audience=AUDIENCE,
        nonce=NONCE,
        issued_at=NOW,
    )
    token = make_package(
        [stale, foreign],
        signer=holder,
        chain=world.hayabusa.chain,
        audience=AUDIENCE,
        nonce=NONCE,
        issued_at=NOW,
    )
    result = opened(world, token)
    assert result.verdicts == ()
    assert [(r.source, r.reason) for r in result.refused] == [
        ("package: presentation 1", "the presentation's nonce is not ours"),
        (
            "package: presentation 2",
            "the credential is bound to another key than the partner's organization identity",
        ),
    ]


def test_a_revoked_credential_never_counts(world: World) -> None:
    token = world.issue(world.fuji, isms_certificate())
    credential_id = unverified_payload(token)["jti"]
    home = world.fuji.home
    assert home is not None
    home.credentials.change_status(credential_id, "revoke", reason="certificate withdrawn")
    result = opened(world, package(world, [token]))
    assert result.verdicts == ()
    assert "revoked" in result.refused[0].reason
    assessment = assess(SAFETY, PartnerEvidence.from_package(result), at=NOW, assessor="M")
    assert assessment.decision == "reject"
    assert any("not counted" in r.text and "revoked" in r.text for r in assessment.reasons)


def test_suppliers_packages_answer_the_same_challenge(world: World, tokens: list[str]) -> None:
    # Muster stands in for a tier-2 supplier of Hayabusa here: an organization with its own
    # identity (DE scheme) and a certificate about it, presented with its own key.
    supplier_token = world.issue(world.fuji, _about_muster(isms_certificate()), holder=world.muster)

    def supplier_package(nonce: str) -> str:
        presentation = present(
            supplier_token,
            holder=world.muster.holder.signer,
            audience=AUDIENCE,
            nonce=nonce,
            issued_at=NOW,
        )
        return make_package(
            [presentation],
            signer=world.muster.holder.signer,
            chain=world.muster.chain,
            audience=AUDIENCE,
            nonce=nonce,
            issued_at=NOW,
        )

    good = opened(world, package(world, tokens, suppliers=[supplier_package(NONCE)]))
    assert [s.organization for s in good.suppliers] == [MUSTER_ID]
    assert good.suppliers[0].route == "own-scheme"
    assert len(good.suppliers[0].verdicts) == 1
    tree = assess(SAFETY, PartnerEvidence.from_package(good), at=NOW, assessor="M").to_json()
    assert tree["suppliers"][0]["subject"]["organization"] == MUSTER_ID
    assert tree["suppliers"][0]["policy"]["id"] == "component-subsupplier-medium"

    replayed = opened(world, package(world, tokens, suppliers=[supplier_package("earlier")]))
    assert replayed.suppliers == ()
    assert replayed.refused[0].source == "package: supplier 1"
    assert "nonce is not ours" in replayed.refused[0].reason

    looped = opened(world, package(world, tokens, suppliers=[package(world, tokens[:1])]))
    assert "appears twice in the supplier tree" in looped.refused[0].reason

    twice = opened(
        world,
        package(world, tokens, suppliers=[supplier_package(NONCE), supplier_package(NONCE)]),
    )
    assert [s.organization for s in twice.suppliers] == [MUSTER_ID]
    assert twice.refused[0].source == "package: supplier 2"
    assert "appears twice in the supplier tree" in twice.refused[0].reason

    shallow = opened(
        world, package(world, tokens, suppliers=[supplier_package(NONCE)]), max_depth=0
    )
    assert shallow.suppliers == ()
    assert shallow.refused[0].reason == "suppliers this deep are not opened"


def _about_muster(request: dict[str, Any]) -> dict[str, Any]:
    request["subject"] = {
        "element": "organization",
        "name": "Muster Maschinenbau GmbH",
        "organization": MUSTER_ID,
    }
    return request


def _x5c(chain: Any) -> list[str]:
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in chain]
