"""Object identifiers of trustbridge, generated once under the UUID arc ``2.25`` (ITU-T X.667).

They never change: certificates issued today must mean the same thing tomorrow.
"""

from __future__ import annotations

from cryptography.x509 import ObjectIdentifier

__all__ = [
    "DE_BASIC",
    "DE_HIGH",
    "DE_SUBSTANTIAL",
    "EXT_ISSUABLE_KINDS",
    "EXT_SUBJECT_KIND",
    "ID_AT_ORGANIZATION_IDENTIFIER",
    "ID_ON_HARDWARE_MODULE_NAME",
    "ITG_LOA1",
    "ITG_LOA2",
    "ITG_LOA3",
    "JP_LEVEL1",
    "JP_LEVEL2",
    "JP_LEVEL3",
    "ROLE_AUTHORIZED_SIGNATORY",
    "ROLE_OPERATOR",
    "ROLE_REGISTRATION_OFFICER",
    "TSA_POLICY",
    "ARC_HARDWARE_TYPES",
]

# -- roles: certificate policies that a person certificate carries beside its level ----------
ROLE_REGISTRATION_OFFICER = ObjectIdentifier("2.25.124054641143580918263172569277183200354")
ROLE_OPERATOR = ObjectIdentifier("2.25.98526081280893999079065212978277821434")
ROLE_AUTHORIZED_SIGNATORY = ObjectIdentifier("2.25.280822599792744662796935871712196382849")

# -- extensions -----------------------------------------------------------------------------
#: Non-critical extension naming the subject kind (UTF8String: organization, person, ...).
EXT_SUBJECT_KIND = ObjectIdentifier("2.25.31762837151806387266463397432151679311")
#: Non-critical extension of a CA certificate listing the subject kinds it may issue
#: (SEQUENCE OF UTF8String); absent on CAs that certify only CAs.
EXT_ISSUABLE_KINDS = ObjectIdentifier("2.25.230511601244710957818293836431203082172")

# -- services -------------------------------------------------------------------------------
#: The TSA policy (RFC 3161 TSTInfo.policy) of trustbridge time-stamping authorities: tokens
#: are issued with the node's clock, accuracy one second, SHA-256/384/512 imprints.
TSA_POLICY = ObjectIdentifier("2.25.168419520564910932760248945607712244668")

# -- arcs -----------------------------------------------------------------------------------
#: hwType OIDs of machine models are ``ARC_HARDWARE_TYPES.<uuid5 as integer>``.
ARC_HARDWARE_TYPES = "2.25.130328674487650956015412470378179352392"

# -- the reference scenario's assurance levels -----------------------------------------------
DE_BASIC = ObjectIdentifier("2.25.134862001568006841524120169040173091230")
DE_SUBSTANTIAL = ObjectIdentifier("2.25.61576214222040963958048019967015146957")
DE_HIGH = ObjectIdentifier("2.25.339207672748051573634471555782102666629")
JP_LEVEL1 = ObjectIdentifier("2.25.23222182740754066581049858504089943314")
JP_LEVEL2 = ObjectIdentifier("2.25.209379674602539580708875475291832060961")
JP_LEVEL3 = ObjectIdentifier("2.25.120236773037290483784934123136010003698")
ITG_LOA1 = ObjectIdentifier("2.25.141430607991310401071248733829411711573")
ITG_LOA2 = ObjectIdentifier("2.25.34842060117042110550313489174795780211")
ITG_LOA3 = ObjectIdentifier("2.25.303588389921389364817704169823708979447")

# -- standard OIDs that cryptography does not name -------------------------------------------
#: ETSI EN 319 412-1 / X.520 organizationIdentifier.
ID_AT_ORGANIZATION_IDENTIFIER = ObjectIdentifier("2.5.4.97")
#: RFC 4108 hardwareModuleName otherName.
ID_ON_HARDWARE_MODULE_NAME = ObjectIdentifier("1.3.6.1.5.5.7.8.4")
