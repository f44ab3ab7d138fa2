"""Evaluation of trust topologies (robustness, scalability): not built yet."""
