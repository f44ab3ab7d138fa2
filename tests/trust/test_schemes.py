"""Trust schemes and their ordered assurance levels."""

from __future__ import annotations

import re

import pytest
from cryptography.x509 import ObjectIdentifier

from trustbridge import oids
from trustbridge.errors import InputError, NotFoundError
from trustbridge.trust.schemes import AssuranceLevel, TrustScheme, new_policy_oid, parse_oid


def _de() -> TrustScheme:
    return TrustScheme.create(
        "de",
        "DE Industrial Trust Scheme",
        [
            ("de-basic", oids.DE_BASIC),
            ("de-substantial", oids.DE_SUBSTANTIAL),
            ("de-high", oids.DE_HIGH),
        ],
    )


def test_create_generates_oids_under_the_uuid_arc() -> None:
    scheme = TrustScheme.create(
        "jp",
        "JP Industrial Trust Scheme",
        [("jp-level1", None), ("jp-level2", None), ("jp-level3", oids.JP_LEVEL3)],
    )
    assert [lv.name for lv in scheme.levels] == ["jp-level1", "jp-level2", "jp-level3"]
    assert [lv.rank for lv in scheme.levels] == [1, 2, 3]
    generated = [lv.oid for lv in scheme.levels[:2]]
    for oid in generated:
        arc, _, number = oid.dotted_string.rpartition(".")
        assert arc == "2.25"
        assert 0 < int(number) < 2**128
    assert generated[0] != generated[1]
    assert scheme.levels[2].oid == oids.JP_LEVEL3


def test_new_policy_oid_is_fresh_each_time() -> None:
    fresh = {new_policy_oid() for _ in range(20)}
    assert len(fresh) == 20
    assert all(o.dotted_string.startswith("2.25.") for o in fresh)


def test_level_lookup_by_name_and_oid() -> None:
    scheme = _de()
    high = scheme.level("de-high")
    assert high == AssuranceLevel("de-high", oids.DE_HIGH, 3)
    assert scheme.level_by_oid(oids.DE_SUBSTANTIAL) == scheme.level("de-substantial")
    assert scheme.level_by_oid(oids.JP_LEVEL1) is None


def test_unknown_level_is_not_found_with_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match="scheme de has no level 'de-ultra'") as info:
        _de().level("de-ultra")
    assert info.value.hint == "levels: de-basic, de-substantial, de-high"


def test_duplicate_level_names_are_refused() -> None:
    with pytest.raises(InputError, match="scheme de has duplicate level names"):
        TrustScheme.create("de", "Germany", [("de-basic", None), ("de-basic", None)])


def test_duplicate_level_oids_are_refused() -> None:
    with pytest.raises(InputError, match="scheme de has duplicate level OIDs"):
        TrustScheme.create("de", "Germany", [("de-basic", oids.DE_HIGH), ("de-high", oids.DE_HIGH)])


@pytest.mark.parametrize("code", ["DE", "d", "1de", "de_x", "de x", "a" * 33, ""])
def test_bad_scheme_code_is_refused(code: str) -> None:
    with pytest.raises(InputError, match=r"scheme code .* must be 2-32 lowercase letters"):
        TrustScheme.create(code, "Germany", [("de-basic", None)])


def test_scheme_needs_a_name_and_levels() -> None:
    with pytest.raises(InputError, match="scheme de needs a name"):
        TrustScheme.create("de", "  ", [("de-basic", None)])
    with pytest.raises(InputError, match="scheme de needs at least one assurance level"):
        TrustScheme.create("de", "Germany", [])


def test_level_ranks_must_run_from_one_in_order() -> None:
    with pytest.raises(InputError, match=re.escape("level ranks must be 1..n in order")):
        TrustScheme(
            code="de",
            name="Germany",
            levels=(
                AssuranceLevel("de-high", oids.DE_HIGH, 2),
                AssuranceLevel("de-basic", oids.DE_BASIC, 1),
            ),
        )


@pytest.mark.parametrize(("name", "rank"), [("De-High", 1), ("de high", 1), ("de-high", 0)])
def test_bad_assurance_level_is_refused(name: str, rank: int) -> None:
    with pytest.raises(InputError, match=r"level (name|rank)"):
        AssuranceLevel(name, oids.DE_HIGH, rank)


def test_parse_oid() -> None:
    assert parse_oid(" 2.25.1234 ") == ObjectIdentifier("2.25.1234")
    assert parse_oid(oids.DE_HIGH.dotted_string) == oids.DE_HIGH
    for text in ("2.25.", "3.1", "2.025", "de-high", ""):
        with pytest.raises(InputError, match="is not a dotted object identifier"):
            parse_oid(text)
