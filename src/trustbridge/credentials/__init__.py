"""Trustworthiness profiles as verifiable credentials (W3C VCDM 2.0, ``vc+jwt``, SD-JWT VC).

- :mod:`.criteria`: the catalogue of criteria a claim can name (YAML, extensible);
- :mod:`.model`: credentials, claims, evidence, subjects, verdicts;
- :mod:`.requests`: what an issuer is asked to vouch for, as plain data;
- :mod:`.formats`: issuing and presenting ``vc+jwt`` and ``dc+sd-jwt``;
- :mod:`.verify`: verification in the order the trust-profiles issue names, failing closed;
- :mod:`.status`: W3C Bitstring Status Lists;
- :mod:`.profile` and :mod:`.aas`: the profile of one subject, and its AAS submodel export;
- :mod:`.errors`: one error class per refusal.
"""
