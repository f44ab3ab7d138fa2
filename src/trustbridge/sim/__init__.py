"""Evaluation of trust topologies at scale: real PKIs linked six ways, measured with the
resolver, an event model of revocation, outages and compromise, and a cost model whose
recommendation follows from the figures.

``trustbridge simulate`` runs it; ``docs/simulation.md`` explains it.
"""

from trustbridge.sim.conclude import Conclusions, conclude
from trustbridge.sim.costs import CostBreakdown, CostFileError, CostModel, Recommendation, recommend
from trustbridge.sim.measure import Measurement, Results
from trustbridge.sim.report import render_html, write_outputs
from trustbridge.sim.run import SimulationOptions, SimulationResult, run_simulation
from trustbridge.sim.topologies import Deployment, Topology, closed_form, deploy
from trustbridge.sim.world import World, WorldSpec

__all__ = [
    "Conclusions",
    "CostBreakdown",
    "CostFileError",
    "CostModel",
    "Deployment",
    "Measurement",
    "Recommendation",
    "Results",
    "SimulationOptions",
    "SimulationResult",
    "Topology",
    "World",
    "WorldSpec",
    "closed_form",
    "conclude",
    "deploy",
    "recommend",
    "render_html",
    "run_simulation",
    "write_outputs",
]
