"""OPC UA sessions secured by trustbridge identities: not built yet."""
