"""Assessing a partner nobody has worked with: requirement policies, scores per characteristic with
confidence, decisions with their reasons; access policies for the key elements (Cedar)."""

from trustbridge.assessment.engine import (
    Assessment,
    Partner,
    PartnerEvidence,
    Refusal,
    assess,
    assess_package,
    claim_confidence,
)
from trustbridge.assessment.policy import Decision, RequirementPolicy, Risk, shipped_policy

__all__ = [
    "Assessment",
    "Decision",
    "Partner",
    "PartnerEvidence",
    "Refusal",
    "RequirementPolicy",
    "Risk",
    "assess",
    "assess_package",
    "claim_confidence",
    "shipped_policy",
]
