"""``trustbridge assess``: assess a partner's presentation package against a requirement policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from trustbridge.cli._common import _home, _read, console
from trustbridge.errors import InputError

__all__ = ["assess"]

_DECISION_STYLE = {"accept": "green", "accept-with-conditions": "yellow", "reject": "red"}


def _policy_path(text: str) -> Path:
    """A policy file, or the name of one trustbridge ships."""
    from trustbridge.assessment.policy import shipped_policy

    path = Path(text)
    if path.exists() or "/" in text or text.endswith((".yaml", ".yml")):
        return path
    return shipped_policy(text)


def _write(out: Path, text: str) -> None:
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None


def assess(
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="Requirement policy (YAML file), or the name of a shipped one, e.g. "
            "safety-component-supplier-high.",
        ),
    ],
    presentation: Annotated[
        Path,
        typer.Option(
            "--presentation", help="The partner's presentation package (JSON, tb-presentations)."
        ),
    ],
    nonce: Annotated[str, typer.Option("--nonce", help="The nonce we gave the partner.")],
    audience: Annotated[str, typer.Option("--audience", help="Our audience (who we are).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the assessment as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the assessment as an HTML page.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the assessment as JSON here.")
    ] = None,
    require: Annotated[
        str | None,
        typer.Option(
            "--require",
            help="Exit 1 unless the decision is at least this: accept or accept-with-conditions.",
        ),
    ] = None,
) -> None:
    """Assess a partner: verify its presentation package with this home's trust, score it
    against a requirement policy, and explain the decision."""
    from trustbridge.assessment import RequirementPolicy, assess_package
    from trustbridge.assessment.html import render_html
    from trustbridge.assessment.policy import Decision

    minimum = None
    if require is not None:
        try:
            minimum = Decision(require)
        except ValueError:
            raise InputError(
                f"--require {require!r}: expected accept or accept-with-conditions"
            ) from None
    rules = RequirementPolicy.load(_policy_path(policy))
    data = _read(presentation, "presentation package")
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise InputError(f"{presentation} is not a presentation package (not ASCII)") from None
    with _home() as home:
        _, result = assess_package(
            rules,
            token,
            verifier=home.credentials.verifier(),
            at=home.now(),
            audience=audience,
            nonce=nonce,
            assessor=_assessor(home),
            source=str(presentation),
        )
    document = result.to_json()
    if out is not None:
        _write(out, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if html is not None:
        _write(html, render_html(document))
    if as_json:
        console.print_json(json.dumps(document))
    else:
        _show(document)
        for path in (out, html):
            if path is not None:
                console.print(f"-> {path}")
    if minimum is not None and result.decision.rank < minimum.rank:
        raise typer.Exit(1)


def _assessor(home: Any) -> str:
    """This home's organization name where it has an identity, else its node name."""
    try:
        return str(home.credentials.issuer().name)
    except InputError:
        return str(home.config.node_name)


def _show(document: dict[str, Any]) -> None:
    subject = document["subject"]
    decision = document["decision"]
    style = _DECISION_STYLE[decision]
    console.print(
        f"[bold {style}]{decision}[/]  {escape(subject['name'])} ({subject['organization']}) "
        f"under {escape(document['policy']['title'])}: score {document['score']}, "
        f"confidence {document['confidence']}"
    )
    table = Table("characteristic", "score", "confidence", "met", "requirements")
    for item in document["characteristics"]:
        requirements = ", ".join(f"{r['criterion']} {r['status']}" for r in item["requirements"])
        table.add_row(
            item["characteristic"],
            f"{item['score']}",
            f"{item['confidence']} (min {item['min_confidence']})",
            "yes" if item["met"] else "[red]no[/]",
            escape(requirements),
        )
    console.print(table)
    for reason in document["reasons"]:
        console.print(f"  [dim]- {reason['kind']}:[/] {escape(reason['text'])}")
    for label, items in (("conditions", document["conditions"]), ("to pass", document["to_pass"])):
        if items:
            console.print(f"[bold]{label}:[/]")
            for item in items:
                console.print(f"  - {escape(item)}")
    for supplier in document["suppliers"]:
        console.print(
            f"supplier {escape(supplier['subject']['name'])}: {supplier['decision']} "
            f"(score {supplier['score']})"
        )
