"""EU trust service providers from real ETSI lists, recognized as our own lists' providers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.trust.test_etsi import ETSI_TL, embedded_signer, read
from trustbridge.errors import InputError
from trustbridge.trust.etsi import EtsiTrustedList, signers_for, verify_trusted_list
from trustbridge.trust.etsi_bridge import trust_list_from_etsi
from trustbridge.trust.lists import ServiceKind, ServiceStatus, recognized
from trustbridge.trust.schemes import TrustScheme

pytestmark = pytest.mark.skipif(not ETSI_TL.is_dir(), reason=f"ETSI samples not found at {ETSI_TL}")

EU = TrustScheme.create("eu", "EU eIDAS trust services", [("eu-pkc", None), ("eu-qualified", None)])
LEVELS = {
    "http://uri.etsi.org/TrstSvc/Svctype/CA/QC": "eu-qualified",
    "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC": "eu-pkc",
}


@pytest.fixture(scope="module")
def lu() -> EtsiTrustedList:
    lotl_data = read("eu-lotl-250.xml")
    lotl = verify_trusted_list(lotl_data, signers=[embedded_signer(lotl_data)], source="lotl")
    return verify_trusted_list(read("LU.xml"), signers=signers_for(lotl, "LU"), source="LU.xml")


def test_the_luxembourg_list_becomes_a_trust_list_with_its_qualified_cas(
    lu: EtsiTrustedList,
) -> None:
    trust_list = trust_list_from_etsi(lu, scheme=EU, levels=LEVELS, list_id="eu-lu")
    assert trust_list.sequence == lu.sequence_number == 37
    assert trust_list.operator.country == "LU"
    cas = [s for p in trust_list.providers for s in p.services if s.kind is ServiceKind.CA]
    assert cas and all(s.levels for s in cas)
    # Every granted qualified CA of the list is recognized at the list's time, at its level.
    at = lu.issued_at
    recognized_now = [
        m
        for s in cas
        for c in s.certificates
        if (m := recognized(trust_list, c, kind=ServiceKind.CA, at=at)) is not None
    ]
    assert recognized_now
    assert {m.service.levels[0].name for m in recognized_now} <= {"eu-qualified", "eu-pkc"}
    # A CA whose status history ends in a withdrawal is not recognized after it.
    withdrawn = [s for s in cas if s.status is ServiceStatus.WITHDRAWN]
    assert withdrawn, "LU's list has withdrawn qualified CAs (LuxTrust, SeMarket)"
    for service in withdrawn:
        since = service.status_history[-1].since
        assert (
            recognized(
                trust_list,
                service.certificates[0],
                kind=ServiceKind.CA,
                at=since + timedelta(days=1),
            )
            is None
        )


def test_levels_must_belong_to_the_scheme(lu: EtsiTrustedList) -> None:
    with pytest.raises(InputError, match="not levels of scheme eu"):
        trust_list_from_etsi(lu, scheme=EU, levels={"x": "de-high"})
