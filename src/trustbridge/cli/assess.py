"""``trustbridge assess``: assess a partner's presentation package against a requirement policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from trustbridge.cli._common import ChallengeAudience, ChallengeNonce, _home, _read, console
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
        str | None,
        typer.Option(
            "--policy",
            help="Requirement policy (YAML file), or the name of a shipped one, e.g. "
            "safety-component-supplier-high. With --partner, the node's configured policy "
            "where not given.",
        ),
    ] = None,
    presentation: Annotated[
        Path | None,
        typer.Option(
            "--presentation", help="The partner's presentation package (JSON, tb-presentations)."
        ),
    ] = None,
    nonce: ChallengeNonce = None,
    audience: ChallengeAudience = None,
    partner: Annotated[
        str | None,
        typer.Option(
            "--partner",
            help="The partner's node (https://HOST:PORT): discover it, authenticate both ways, "
            "ask it for a presentation under a fresh challenge and assess that. The session "
            "is kept; `trustbridge onboard --resume ID` continues it to a contract.",
        ),
    ] = None,
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
    against a requirement policy, and explain the decision.

    Either from a package the partner gave you (--presentation with the --nonce and --audience
    of your challenge), or over the wire from the partner's node (--partner URL).
    """
    from trustbridge.assessment import RequirementPolicy
    from trustbridge.assessment.html import render_html
    from trustbridge.assessment.policy import Decision

    if (presentation is None) == (partner is None):
        raise InputError(
            "give --presentation FILE (a package the partner gave you) or --partner URL "
            "(ask the partner's node), not both and not neither"
        )
    minimum = None
    if require is not None:
        try:
            minimum = Decision(require)
        except ValueError:
            raise InputError(
                f"--require {require!r}: expected accept or accept-with-conditions"
            ) from None
    rules = RequirementPolicy.load(_policy_path(policy)) if policy is not None else None
    session: str | None = None
    if presentation is not None:
        missing = [
            name
            for name, value in (("--policy", rules), ("--nonce", nonce), ("--audience", audience))
            if value is None
        ]
        if missing:
            raise InputError(f"--presentation needs {' and '.join(missing)}")
        assert rules is not None and nonce is not None and audience is not None
        document = _from_package(rules, presentation, nonce=nonce, audience=audience)
    else:
        if nonce is not None or audience is not None:
            raise InputError(
                "--partner makes its own challenge: --nonce and --audience go with --presentation"
            )
        assert partner is not None
        session, document = _from_partner(partner, rules, quiet=as_json)
    if out is not None:
        _write(out, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if html is not None:
        _write(html, render_html(document))
    if as_json:
        console.print_json(
            json.dumps(document if session is None else {**document, "session": session})
        )
    else:
        _show(document)
        for path in (out, html):
            if path is not None:
                console.print(f"-> {path}")
        if session is not None:
            console.print(
                f"session [bold]{session}[/]; continue to a contract with: "
                f"trustbridge onboard --resume {session}",
                markup=True,
            )
    if minimum is not None and Decision(document["decision"]).rank < minimum.rank:
        raise typer.Exit(1)


def _from_package(rules: Any, presentation: Path, *, nonce: str, audience: str) -> dict[str, Any]:
    """Assess a package read from a file, answering our challenge ``nonce``/``audience``."""
    from trustbridge.assessment import assess_package

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
    return result.to_json()


def _from_partner(url: str, rules: Any, *, quiet: bool) -> tuple[str, dict[str, Any]]:
    """Run first contact with ``url`` up to our assessment of the partner's presentation."""
    from trustbridge.exchange.protocol import Step
    from trustbridge.node.onboard import onboard

    def say(text: str) -> None:
        if not quiet:
            console.print(f"  [green]✓[/] {escape(text)}", highlight=False, markup=True)

    with _home() as home:
        result = onboard(home, partner_url=url, until=Step.PRESENTATION, policy=rules, say=say)
    info = result.session
    document = info.data.get("assessment")
    if not isinstance(document, dict):
        raise InputError(
            f"the session {info.id} with {url} ended {info.state} before an assessment"
            + (f": {info.reason}" if info.reason else "")
        )
    return info.id, document


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
        f"[bold {style}]{decision}[/]  {escape(subject['name'])} "
        f"({escape(subject['organization'])}) "
        f"under {escape(document['policy']['title'])}: score {document['score']}, "
        f"confidence {document['confidence']}",
        markup=True,
    )
    table = Table("characteristic", "score", "confidence", "met", "requirements")
    for item in document["characteristics"]:
        requirements = ", ".join(f"{r['criterion']} {r['status']}" for r in item["requirements"])
        table.add_row(
            item["characteristic"],
            f"{item['score']}",
            f"{item['confidence']} (min {item['min_confidence']})",
            "yes" if item["met"] else Text("no", style="red"),
            requirements,
        )
    console.print(table)
    for reason in document["reasons"]:
        console.print(
            f"  [dim]- {escape(reason['kind'])}:[/] {escape(reason['text'])}", markup=True
        )
    for label, items in (("conditions", document["conditions"]), ("to pass", document["to_pass"])):
        if items:
            console.print(f"[bold]{label}:[/]", markup=True)
            for item in items:
                console.print(f"  - {item}")
    for supplier in document["suppliers"]:
        console.print(
            f"supplier {supplier['subject']['name']}: {supplier['decision']} "
            f"(score {supplier['score']})"
        )
