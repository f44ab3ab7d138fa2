"""Keys and signers, identity profiles, CAs, CSRs and the release process."""
