"""Requirement policies, assessments and access policies: not built yet."""
