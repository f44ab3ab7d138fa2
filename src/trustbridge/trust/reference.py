"""The trust schemes of the reference scenario (DESIGN.md section 2), with their fixed OIDs.

The demo, the tests and the benchmarks all use these, so that one story is told with one set
of policy identifiers.
"""

from __future__ import annotations

from trustbridge import oids
from trustbridge.trust.schemes import TrustScheme

__all__ = ["GERMANY", "ITG", "JAPAN", "REFERENCE_SCHEMES"]

#: Scheme ``de``: de-basic < de-substantial < de-high.
GERMANY = TrustScheme.create(
    "de",
    "German industrial trust scheme",
    [
        ("de-basic", oids.DE_BASIC),
        ("de-substantial", oids.DE_SUBSTANTIAL),
        ("de-high", oids.DE_HIGH),
    ],
)

#: Scheme ``jp``: jp-level1 < jp-level2 < jp-level3.
JAPAN = TrustScheme.create(
    "jp",
    "Japanese industrial trust scheme",
    [
        ("jp-level1", oids.JP_LEVEL1),
        ("jp-level2", oids.JP_LEVEL2),
        ("jp-level3", oids.JP_LEVEL3),
    ],
)

#: The group's reference levels (``itg``): itg-loa1 < itg-loa2 < itg-loa3. The bridge CA
#: asserts them, and the LOTL's equivalence table maps national levels onto them.
ITG = TrustScheme.create(
    "itg",
    "International trust group reference levels",
    [
        ("itg-loa1", oids.ITG_LOA1),
        ("itg-loa2", oids.ITG_LOA2),
        ("itg-loa3", oids.ITG_LOA3),
    ],
)

REFERENCE_SCHEMES = (GERMANY, JAPAN)
