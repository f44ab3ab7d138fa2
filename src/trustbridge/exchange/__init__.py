"""First contact, contracts and secure messages: not built yet."""
