"""``trustbridge simulate``: trust topologies at scale, measured on real PKIs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trustbridge.cli._common import console, err

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["simulate"]


class _Bars:
    """The run's progress as rich progress bars (on stderr)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def begin(self, key: str, description: str, total: int) -> None:
        if key in self.tasks:
            self.progress.remove_task(self.tasks.pop(key))
        self.tasks[key] = self.progress.add_task(description, total=max(total, 1))

    def advance(self, key: str, steps: int = 1) -> None:
        if key in self.tasks:
            self.progress.advance(self.tasks[key], steps)

    def end(self, key: str) -> None:
        task = self.tasks.pop(key, None)
        if task is not None:
            self.progress.remove_task(task)


def simulate(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for report.html, results.csv and img/.")
    ],
    countries: Annotated[
        str | None,
        typer.Option(
            "--countries",
            help="World sizes to simulate, comma-separated (default 2,5,10,20,50,100; "
            "--quick: 2,3,5).",
        ),
    ] = None,
    tsps_per_country: Annotated[
        int | None,
        typer.Option(
            "--tsps-per-country", help="TSPs (issuing CAs) per country (default 2).", min=1
        ),
    ] = None,
    orgs_per_country: Annotated[
        int | None,
        typer.Option(
            "--orgs-per-country", help="Organization identities per country (default 5).", min=1
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of keys, levels, samples and the event model.")
    ] = 1,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Small sizes (2,3,5 countries, 1 TSP and 2 identities each, every identity "
            "resolved): a few seconds.",
        ),
    ] = False,
    costs: Annotated[
        Path | None,
        typer.Option(
            "--costs",
            help="YAML file overriding parameters of the shipped costs.yaml (only the keys it "
            "names).",
        ),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            help="Identities resolved per topology and size at most (default 20; --quick: all).",
            min=1,
        ),
    ] = None,
    region_size: Annotated[
        int | None,
        typer.Option(
            "--region-size",
            help="Bridge-of-bridges: national roots per regional bridge (default 10; --quick: 2).",
            min=1,
        ),
    ] = None,
) -> None:
    """Link real PKIs of N countries in six topologies and measure them: counts, bytes, paths,
    resolution times, revocation, outages, compromise and cost; write a report with a
    recommendation computed from the results."""
    from dataclasses import replace

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    from trustbridge.sim import CostModel, SimulationOptions, run_simulation, write_outputs
    from trustbridge.sim.run import sizes_of

    base = SimulationOptions.quick(seed=seed) if quick else SimulationOptions(seed=seed)
    options = replace(
        base,
        sizes=sizes_of(countries) if countries is not None else base.sizes,
        tsps_per_country=tsps_per_country or base.tsps_per_country,
        orgs_per_country=orgs_per_country or base.orgs_per_country,
        sample=sample or base.sample,
        region_size=region_size or base.region_size,
    )
    model = CostModel.load(costs) if costs is not None else CostModel.default()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        result = run_simulation(options, model, progress=_Bars(progress))
    files = write_outputs(result, out)
    table = Table(title="recommended topology per world size", title_justify="left")
    table.add_column("countries", justify="right")
    table.add_column("recommended")
    table.add_column(f"{model.get('currency')}/country/year", justify="right")
    table.add_column("runner-up")
    for r in result.recommendations:
        runner = next(((t, c) for t, c in r.ranking if t != r.topology), None)
        table.add_row(
            str(r.countries),
            r.topology,
            f"{r.per_participant:,.0f}",
            f"{runner[0]} ({runner[1]:,.0f})" if runner else "-",
        )
    console.print(table)
    console.print(
        f"simulated {', '.join(str(s) for s in options.sizes)} countries in "
        f"{result.seconds:.0f} s; wrote {files.html}, {files.csv} and {len(files.plots)} plots "
        f"in {files.html.parent / 'img'}"
    )
