"""The pure parts of first contact: format negotiation and downgrades, challenges, envelopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.exchange.contract_world import ContractWorld, build_contract_world
from trustbridge.exchange.protocol import (
    FORMATS,
    RESPONSE_TYPE,
    Challenge,
    ChallengeExpiredError,
    DowngradeError,
    ExchangeError,
    Step,
    check_selection,
    negotiate,
    offer_digest,
    open_envelope,
    seal_envelope,
)

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
OFFER = {k: list(v) for k, v in FORMATS.items()}


def test_the_first_offered_format_both_speak_is_selected() -> None:
    offer = {**OFFER, "credentials": ["vc+jwt", "dc+sd-jwt"]}
    assert negotiate(offer)["credentials"] == "vc+jwt"
    assert negotiate(OFFER)["credentials"] == "dc+sd-jwt"


def test_a_category_without_a_common_format_ends_the_negotiation() -> None:
    with pytest.raises(ExchangeError, match="no common messages format"):
        negotiate({**OFFER, "messages": ["jws-in-jwe/RSA1_5/A128CBC-HS256"]})
    with pytest.raises(ExchangeError, match="no common contracts format"):
        negotiate({k: v for k, v in OFFER.items() if k != "contracts"})


def test_an_honest_selection_passes_and_a_downgrade_is_refused() -> None:
    partner = OFFER
    selected = negotiate(OFFER, partner)
    assert check_selection(OFFER, partner, selected, offer_digest(OFFER)) == selected
    weaker = {**selected, "credentials": "vc+jwt"}
    with pytest.raises(DowngradeError, match="credentials 'vc\\+jwt' instead of 'dc\\+sd-jwt'"):
        check_selection(OFFER, partner, weaker, offer_digest(OFFER))
    # The responder answered an offer stripped of the strong format (digest differs).
    stripped = {**OFFER, "credentials": ["vc+jwt"]}
    with pytest.raises(DowngradeError, match="offer digest"):
        check_selection(OFFER, partner, negotiate(stripped), offer_digest(stripped))


@given(st.permutations(list(FORMATS["credentials"])))
def test_selection_follows_the_initiators_preference(order: list[str]) -> None:
    offer = {**OFFER, "credentials": order}
    assert negotiate(offer)["credentials"] == order[0]


def test_malformed_offers_are_refused() -> None:
    for bad in ({"credentials": "vc+jwt"}, {"credentials": [1]}, ["vc+jwt"], None):
        with pytest.raises(ExchangeError):
            negotiate(bad)  # type: ignore[arg-type]


def test_challenges_expire_and_round_trip() -> None:
    challenge = Challenge.issue("VATDE-123456789", NOW)
    assert Challenge.from_json(challenge.to_json()) == challenge
    challenge.check_open(NOW + timedelta(minutes=9))
    with pytest.raises(ChallengeExpiredError, match="expired"):
        challenge.check_open(NOW + timedelta(minutes=10))
    for bad in (
        {"nonce": "short", "audience": "x", "expires": NOW.isoformat()},
        {"nonce": "n" * 20, "audience": "", "expires": NOW.isoformat()},
        {"nonce": "n" * 20, "audience": "x", "expires": "2026-11-20T09:00:00"},
        {"nonce": "n" * 20, "audience": "x", "expires": "soon"},
        "not an object",
    ):
        with pytest.raises(ExchangeError):
            Challenge.from_json(bad)


def test_steps_are_ordered() -> None:
    assert [s.value for s in Step][:3] == ["discover", "hello", "presentation"]
    assert Step.PROFILE.previous is Step.PRESENTATION
    assert Step.DISCOVER.previous is None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ContractWorld:
    return build_contract_world(tmp_path_factory.mktemp("protocol"))


def test_envelopes_bind_signer_audience_request_and_time(world: ContractWorld) -> None:
    person = world.customer
    signer, chain = person.holder.signer, person.chain
    at = chain[0].not_valid_before_utc + timedelta(days=1)
    token = seal_envelope(
        {"ok": True},
        typ=RESPONSE_TYPE,
        issuer="VATDE-123456789",
        audience="NTRJP-3180001012345",
        request="r" * 24,
        signer=signer,
        chain=chain,
        at=at,
    )
    opened = open_envelope(
        token, typ=RESPONSE_TYPE, at=at, audience="NTRJP-3180001012345", request="r" * 24
    )
    assert opened.body == {"ok": True} and opened.signer == chain[0]
    with pytest.raises(ExchangeError, match="addressed to"):
        open_envelope(token, typ=RESPONSE_TYPE, at=at, audience="VATDE-999")
    with pytest.raises(ExchangeError, match="answers another request"):
        open_envelope(token, typ=RESPONSE_TYPE, at=at, request="s" * 24)
    with pytest.raises(ExchangeError, match="typ"):
        open_envelope(token, typ="tb-node+jwt", at=at)
    with pytest.raises(ExchangeError, match="expired"):
        open_envelope(token, typ=RESPONSE_TYPE, at=at + timedelta(minutes=6))
    with pytest.raises(ExchangeError, match="future"):
        open_envelope(token, typ=RESPONSE_TYPE, at=at - timedelta(minutes=2))
    head, body, signature = token.split(".")
    middle = len(signature) // 2
    flipped = (
        signature[:middle] + ("B" if signature[middle] != "B" else "C") + signature[middle + 1 :]
    )
    with pytest.raises(ExchangeError):
        open_envelope(f"{head}.{body}.{flipped}", typ=RESPONSE_TYPE, at=at)
