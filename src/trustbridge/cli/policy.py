"""``trustbridge policy ...``: access policies in Cedar (check, decide, schema)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from trustbridge.cli._common import _parse_time, _read, console, err
from trustbridge.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from trustbridge.assessment.access import AccessPolicies, EntityStore

__all__ = ["policy_app"]

policy_app = typer.Typer(
    help="Access policies in Cedar over organizations, people, components, data, procedures "
    "and systems: check them, decide requests, print the schema.",
    no_args_is_help=True,
)

PoliciesArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Policy files or folders of *.cedar files (default: the shipped ones)."),
]


def _policies(paths: list[Path] | None) -> AccessPolicies:
    from trustbridge.assessment.access import AccessPolicies

    return AccessPolicies.load(paths) if paths else AccessPolicies.default()


def _entities(path: Path) -> EntityStore:
    import yaml

    from trustbridge.assessment.access import EntityStore

    text = _read(path, "entities").decode("utf-8", errors="replace")
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(f"{path} is not readable JSON/YAML: {exc}") from None
    if isinstance(data, dict) and set(data) == {"entities"}:
        data = data["entities"]
    return EntityStore.from_data(data, source=str(path))


def _check_requirements(paths: list[Path]) -> None:
    """Check requirement policies (YAML); errors raise with file, field and line."""
    from trustbridge.assessment.policy import RequirementPolicy

    for path in paths:
        policy = RequirementPolicy.load(path)
        console.print(
            f"[bold]{escape(policy.id)}[/] (requirement policy, risk {policy.risk}) "
            f"{escape(str(path))}: {len(policy.requirements)} requirements over "
            f"{len(policy.characteristics)} characteristics; identity at least "
            f"{escape(str(policy.min_level))}; accept from {policy.accept:g}, conditions from "
            f"{policy.conditions:g}"
            + (
                f"; suppliers under {escape(policy.suppliers.policy.id)}"
                if policy.suppliers
                else ""
            ),
            highlight=False,
            soft_wrap=True,
            markup=True,
        )


@policy_app.command("check")
def check(paths: PoliciesArg = None) -> None:
    """Validate access policies (*.cedar) against the schema, listing each policy's id and
    reason, and requirement policies (*.yaml) against theirs (exit 2 on errors)."""
    from trustbridge.assessment.access import PolicyFileError

    requirements = [p for p in paths or [] if p.suffix in (".yaml", ".yml")]
    if requirements:
        _check_requirements(requirements)
        paths = [p for p in paths or [] if p not in requirements]
        if not paths:
            return
    try:
        policies = _policies(paths)
    except PolicyFileError as exc:
        for problem in exc.problems:
            err.print(
                f"[bold red]error:[/] {escape(str(problem))}",
                highlight=False,
                soft_wrap=True,
                markup=True,
            )
        count = len(exc.problems)
        err.print(f"{count} problem{'s' if count != 1 else ''}; no policy was loaded")
        raise typer.Exit(2) from None
    for policy in policies.policies:
        console.print(
            f"[bold]{escape(policy.id)}[/] ({policy.effect}) {escape(policy.source)}:{policy.line}",
            highlight=False,
            soft_wrap=True,
            markup=True,
        )
        console.print(f"  {policy.reason}", highlight=False, soft_wrap=True)
    console.print(
        f"{len(policies.policies)} policies match the schema", highlight=False, soft_wrap=True
    )


@policy_app.command("decide")
def decide(
    principal: Annotated[
        str, typer.Option("--principal", help='Who asks, e.g. Person::"erika@muster.example".')
    ],
    action: Annotated[
        str, typer.Option("--action", help="read, write, share, sign, connect, operate, execute.")
    ],
    resource: Annotated[str, typer.Option("--resource", help='What for, e.g. Data::"tr-1".')],
    entities: Annotated[
        Path, typer.Option("--entities", help="The entities (YAML or JSON list, plain data).")
    ],
    purpose: Annotated[
        str, typer.Option("--purpose", help="What the principal wants it for.")
    ] = "",
    at: Annotated[
        str | None, typer.Option("--at", help="Decide at this time (ISO 8601; default: now).")
    ] = None,
    policy_files: Annotated[
        list[Path] | None,
        typer.Option("--policies", help="Policy file or folder (repeatable; default: shipped)."),
    ] = None,
    via: Annotated[
        str | None,
        typer.Option(
            "--via",
            help="The client software or machine the principal acts through, e.g. "
            'System::"urn:muster:gateway" (one of --entities).',
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Decide one request: allow or deny, the deciding policies and their reasons.

    Exits 0 when allowed and 3 when denied.
    """
    from trustbridge.assessment.access import AccessRequest, Action, EntityRef

    moment = _parse_time(at, "--at") if at else datetime.now(UTC)
    store = _entities(entities)
    through = None
    if via is not None:
        through = store.get(EntityRef.parse(via))
        if through is None:
            raise NotFoundError(f"--via {via}: no such entity in {entities}")
    request = AccessRequest(
        EntityRef.parse(principal),
        Action.parse(action),
        resource=EntityRef.parse(resource),
        at=moment,
        purpose=purpose,
        via=through,
    )
    decision = _policies(policy_files).decide(request, store)
    if as_json:
        console.print_json(json.dumps(decision.to_json(), ensure_ascii=False))
    else:
        verdict = "[bold green]allow[/]" if decision.allowed else "[bold red]deny[/]"
        console.print(
            f"{verdict} {escape(str(request))}", highlight=False, soft_wrap=True, markup=True
        )
        for policy, reason in zip(decision.policies, decision.reasons, strict=False):
            console.print(f"  {policy}: {reason}", highlight=False, soft_wrap=True)
        for reason in decision.reasons[len(decision.policies) :]:
            console.print(f"  {reason}", highlight=False, soft_wrap=True)
        for error in (e for e in decision.errors if not any(e in r for r in decision.reasons)):
            console.print(
                f"  [yellow]error:[/] {escape(error)}", highlight=False, soft_wrap=True, markup=True
            )
    if not decision.allowed:
        raise typer.Exit(3)


@policy_app.command("schema")
def schema() -> None:
    """Print the Cedar schema the policies are checked against."""
    from trustbridge.assessment.access import access_schema

    typer.echo(access_schema(), nl=False)
