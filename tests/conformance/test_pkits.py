"""NIST PKITS 1.0.1 through :func:`validate_chain`: every case, its verdict and kind of failure.

The suite lists each case's intermediates unordered; a small assembler here chains them by
issuer name and key identifier, as a path builder would, and every candidate path goes through
the given-path validator. Two name-chaining cases fix the path order themselves.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509

from trustbridge.trust.validation import (
    FailureKind,
    PathValidationError,
    RevocationMode,
    ValidatedPath,
    ValidationParams,
    ValidPolicy,
    validate_chain,
)

PKITS = Path(__file__).parents[2].parent / "shared" / "conformance" / "pkits"

if not PKITS.is_dir():
    pytest.skip(f"NIST PKITS data not found at {PKITS}", allow_module_level=True)

#: Inside the validity of every object of the suite (2010-01-01 to 2030-12-31).
AT = datetime(2022, 5, 1, tzinfo=UTC)
ANCHOR = "TrustAnchorRootCertificate.crt"
ANCHOR_CRL = "TrustAnchorRootCRL.crl"
#: The suite's error classes (one validator's names) and the kinds of failure they allow. In
#: that validator a stale CRL is a special case of insufficient revocation information
#: (4.15.10 expects the general class where the delta CRL is out of date).
KINDS = {
    "PathValidationError": {FailureKind.PATH},
    "RevokedError": {FailureKind.REVOKED},
    "InsufficientRevinfoError": {
        FailureKind.REVOCATION_UNAVAILABLE,
        FailureKind.STALE_REVOCATION,
    },
    "StaleRevinfoError": {FailureKind.STALE_REVOCATION},
}


def nist_policy(number: int) -> str:
    """NIST-test-policy-``number``."""
    return f"2.16.840.1.101.3.2.1.48.{number}"


@functools.cache
def certificate(name: str) -> bytes:
    # DER: cryptography cannot load the two certificates with inherited DSA parameters.
    return (PKITS / "certs" / name).read_bytes()


@functools.cache
def crl(name: str) -> bytes:
    return (PKITS / "crls" / name).read_bytes()


@dataclass(frozen=True)
class PkitsCase:
    """One entry of ``pkits.json`` or ``pkits-user-notice.json``."""

    id: str
    name: str
    cert: str
    other_certs: tuple[str, ...] = ()
    crls: tuple[str, ...] = ()
    path_len: int | None = None
    path_intermediates: tuple[str, ...] | None = None
    revocation: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    error_class: str | None = None
    notice: str | None = None

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> PkitsCase:
        intermediates = entry.get("path_intermediates")
        return cls(
            id=entry["id"],
            name=entry["name"],
            cert=entry["cert"],
            other_certs=tuple(entry.get("other_certs", ())),
            crls=tuple(entry.get("crls", ())),
            path_len=entry.get("path_len"),
            path_intermediates=None if intermediates is None else tuple(intermediates),
            revocation=entry.get("revocation", True),
            params=entry.get("params") or {},
            error_class=entry.get("error", {}).get("class"),
            notice=entry.get("notice"),
        )

    @property
    def test_id(self) -> str:
        """``4.1.1-valid_signatures_test1`` for case ``40101``."""
        return f"{self.id[0]}.{int(self.id[1:3])}.{int(self.id[3:5])}-{self.name}"

    def validation_params(self) -> ValidationParams:
        """The PKITS initial settings; anything the case does not set takes RFC 5280's default."""
        return ValidationParams(
            at=AT,
            acceptable_policies=frozenset(self.params.get("user_initial_policy_set", ())),
            require_explicit_policy=self.params.get("initial_explicit_policy", False),
            initial_policy_mapping_inhibit=self.params.get("initial_policy_mapping_inhibit", False),
            initial_any_policy_inhibit=self.params.get("initial_any_policy_inhibit", False),
            revocation=RevocationMode.REQUIRE if self.revocation else RevocationMode.HARD_FAIL,
            crls=tuple(crl(name) for name in (ANCHOR_CRL, *self.crls)),
            allow_weak_algorithms=True,
        )


def load_cases(file: str) -> list[PkitsCase]:
    return [PkitsCase.from_json(e) for e in json.loads((PKITS / file).read_text())]


# -- a minimal chain assembler: enough for PKITS, not a path builder ----------------------------


@functools.cache
def _asn1(cert: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert)


def _issued_by(child: bytes, issuer: bytes) -> bool:
    """RFC 5280 name chaining (asn1crypto compares names after RFC 4518 preparation), plus
    the authority key identifier where both certificates carry one."""
    child_asn1, issuer_asn1 = _asn1(child), _asn1(issuer)
    if child_asn1.issuer != issuer_asn1.subject:
        return False
    aki, ski = child_asn1.authority_key_identifier, issuer_asn1.key_identifier
    return aki is None or ski is None or aki == ski


def candidate_paths(leaf: bytes, pool: Sequence[bytes], anchor: bytes) -> Iterator[list[bytes]]:
    """Every loop-free path ``[anchor, ..., leaf]`` through ``pool``."""

    def extend(chain: list[bytes]) -> Iterator[list[bytes]]:
        if _issued_by(chain[0], anchor):
            yield [anchor, *chain]
        for issuer in pool:
            if issuer not in chain and issuer != anchor and _issued_by(chain[0], issuer):
                yield from extend([issuer, *chain])

    yield from extend([leaf])


def validate_case(case: PkitsCase) -> ValidatedPath:
    """Validate the case's path(s), as a path builder would: the first valid one wins."""
    anchor, leaf = certificate(ANCHOR), certificate(case.cert)
    pool = [certificate(name) for name in case.other_certs]
    if case.path_intermediates is not None:
        paths = [[anchor, *(certificate(n) for n in case.path_intermediates), leaf]]
    else:
        paths = list(candidate_paths(leaf, pool, anchor))
    assert paths, f"no candidate path for {case.cert}"
    if case.path_len is not None:
        assert {len(p) for p in paths} == {case.path_len}
    params = case.validation_params()
    failures: list[PathValidationError] = []
    for path in paths:
        try:
            return validate_chain(path, params, other_certificates=pool)
        except PathValidationError as exc:
            failures.append(exc)
    # The suite's cases have one candidate path each, so there is one failure to report.
    assert len(failures) == 1, [f.message for f in failures]
    raise failures[0]


PKITS_CASES = load_cases("pkits.json")
NOTICE_CASES = load_cases("pkits-user-notice.json")


def test_the_whole_suite_is_there() -> None:
    assert len(PKITS_CASES) == 246
    assert sum(c.error_class is None for c in PKITS_CASES) == 110
    assert len({c.test_id for c in PKITS_CASES}) == 246


@pytest.mark.parametrize("case", PKITS_CASES, ids=lambda c: c.test_id)
def test_pkits(case: PkitsCase) -> None:
    if case.error_class is None:
        path = validate_case(case)
        assert path.der[0] == certificate(ANCHOR)
        assert path.der[-1] == certificate(case.cert)
        return
    with pytest.raises(PathValidationError) as info:
        validate_case(case)
    assert info.value.kind in KINDS[case.error_class], info.value.message


@pytest.mark.parametrize("case", NOTICE_CASES, ids=lambda c: c.test_id)
def test_pkits_user_notice(case: PkitsCase) -> None:
    path = validate_case(case)
    assert case.notice in [n.text for n in path.notices]


def test_policy_mapping_is_reported_in_both_domains() -> None:
    # PKITS 4.10.12: the CA maps NIST-test-policy-1 (relying party) onto -3 (on the leaf).
    (case,) = (c for c in NOTICE_CASES if c.name == "valid_policy_mapping_test12_with_testpol1")
    path = validate_case(case)
    assert path.policies == {ValidPolicy(issuer_domain=nist_policy(3), user_domain=nist_policy(1))}
    assert path.user_policies == {nist_policy(1)}
    assert {n.user_domain for n in path.notices} == {nist_policy(1)}


def test_failure_names_the_certificate_in_plain_words() -> None:
    # PKITS 4.1.2: the intermediate's signature is broken.
    (case,) = (c for c in PKITS_CASES if c.id == "40102")
    with pytest.raises(PathValidationError, match=r"CA certificate .*Bad Signed CA.*position 1"):
        validate_case(case)


def test_weak_algorithms_are_refused_unless_allowed() -> None:
    # PKITS 4.1.4: a valid path, but signed with DSA-1024 and SHA-1.
    (case,) = (c for c in PKITS_CASES if c.id == "40104")
    path = [certificate(ANCHOR), certificate("DSACACert.crt"), certificate(case.cert)]
    strict = replace(case.validation_params(), allow_weak_algorithms=False)
    with pytest.raises(PathValidationError, match="disallowed signature mechanism") as info:
        validate_chain(path, strict)
    assert info.value.kind is FailureKind.PATH
