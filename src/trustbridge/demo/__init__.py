"""The joint demonstrator."""
