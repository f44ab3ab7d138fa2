"""The HTML page of an assessment: the decision, a score chart, the requirements, the reasons and
the supplier tree.

Works on the JSON form of an assessment (``Assessment.to_json()``), so it renders a stored or
received result as well as a fresh one. The page is self-contained: inline CSS and an inline SVG
chart, no scripts, no network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

from trustbridge.credentials.criteria import EvidenceKind
from trustbridge.errors import InputError

__all__ = ["AssessmentFormatError", "render_html", "render_svg_chart"]

_DECISIONS = ("accept", "accept-with-conditions", "reject")
_STATUSES = ("met", "partial", "missing")
_DASH = "\u2014"


class AssessmentFormatError(InputError):
    """An assessment (JSON form) that lacks a field or holds a value of the wrong type or range."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(
            f"{field}: {problem}",
            hint="render the output of Assessment.to_json() (format version 1)",
        )
        #: The path of the offending field, for example ``assessment.characteristics[2].score``.
        self.field = field


# -- reading the JSON form ----------------------------------------------------------------------


class _Fields:
    """Typed access to one JSON object, naming the field path in every error."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise AssessmentFormatError(path, f"expected an object, got {_kind(data)}")
        self._data: Mapping[str, Any] = data
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def raw(self, key: str) -> Any:
        return self._data.get(key)

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def text(self, key: str) -> str:
        value = self._data.get(key)
        if value is None:
            raise AssessmentFormatError(self._at(key), "missing")
        if not isinstance(value, str):
            raise AssessmentFormatError(self._at(key), f"expected a string, got {_kind(value)}")
        return value

    def opt_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise AssessmentFormatError(
                self._at(key), f"expected one of {', '.join(allowed)}, got {value!r}"
            )
        return value

    def number(self, key: str, *, high: float) -> float:
        value = self._data.get(key)
        if value is None:
            raise AssessmentFormatError(self._at(key), "missing")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AssessmentFormatError(self._at(key), f"expected a number, got {_kind(value)}")
        if not (math.isfinite(value) and 0 <= value <= high):
            raise AssessmentFormatError(
                self._at(key), f"expected a number from 0 to {high:g}, got {value!r}"
            )
        return float(value)

    def opt_number(self, key: str, *, high: float) -> float | None:
        return self.number(key, high=high) if self.has(key) else None

    def flag(self, key: str) -> bool:
        value = self._data.get(key)
        if not isinstance(value, bool):
            problem = "missing" if value is None else f"expected true or false, got {_kind(value)}"
            raise AssessmentFormatError(self._at(key), problem)
        return value

    def child(self, key: str) -> _Fields:
        if not self.has(key):
            raise AssessmentFormatError(self._at(key), "missing")
        return _Fields(self._data[key], self._at(key))

    def items(self, key: str) -> list[Any]:
        value = self._data.get(key)
        if value is None:
            return []
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise AssessmentFormatError(self._at(key), f"expected a list, got {_kind(value)}")
        return list(value)

    def children(self, key: str) -> list[_Fields]:
        return [_Fields(v, f"{self._at(key)}[{i}]") for i, v in enumerate(self.items(key))]

    def texts(self, key: str) -> list[str]:
        values = self.items(key)
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise AssessmentFormatError(
                    f"{self._at(key)}[{i}]", f"expected a string, got {_kind(v)}"
                )
        return values


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


@dataclass(frozen=True)
class _Thresholds:
    accept: float
    conditions: float


@dataclass(frozen=True)
class _Claim:
    credential: str | None
    value: Any
    evidence: str | None
    issuer: str | None
    issuer_level: str | None
    age_days: float | None


@dataclass(frozen=True)
class _Requirement:
    criterion: str
    title: str | None
    minimum: Any
    evidence: str | None
    max_age_days: float | None
    weight: float | None
    mandatory: bool
    status: str
    confidence: float | None
    claim: _Claim | None
    reason: str | None


@dataclass(frozen=True)
class _Characteristic:
    name: str
    weight: float | None
    score: float
    confidence: float
    min_confidence: float | None
    met: bool
    requirements: tuple[_Requirement, ...]


@dataclass(frozen=True)
class _Reason:
    kind: str
    text: str
    criterion: str | None
    credential: str | None


@dataclass(frozen=True)
class _Refusal:
    source: str
    reason: str


@dataclass(frozen=True)
class _Assessment:
    assessor: str | None
    at: datetime | None
    policy: Mapping[str, str | None]
    subject: Mapping[str, str | None]
    decision: str
    score: float
    confidence: float
    thresholds: _Thresholds
    characteristics: tuple[_Characteristic, ...]
    reasons: tuple[_Reason, ...]
    to_pass: tuple[str, ...]
    conditions: tuple[str, ...]
    refused: tuple[_Refusal, ...]
    suppliers: tuple[_Assessment, ...]


def _read_thresholds(f: _Fields) -> _Thresholds:
    accept = f.number("accept", high=100)
    conditions = f.number("conditions", high=100)
    if conditions > accept:
        raise AssessmentFormatError(
            f.path, f"the conditions threshold {conditions:g} lies above accept {accept:g}"
        )
    return _Thresholds(accept, conditions)


def _read_claim(f: _Fields) -> _Claim:
    return _Claim(
        credential=f.opt_text("credential"),
        value=f.raw("value"),
        evidence=f.opt_text("evidence"),
        issuer=f.opt_text("issuer"),
        issuer_level=f.opt_text("issuer_level"),
        age_days=f.opt_number("age_days", high=math.inf),
    )


def _read_requirement(f: _Fields) -> _Requirement:
    return _Requirement(
        criterion=f.text("criterion"),
        title=f.opt_text("title"),
        minimum=f.raw("minimum"),
        evidence=f.opt_text("evidence"),
        max_age_days=f.opt_number("max_age_days", high=math.inf),
        weight=f.opt_number("weight", high=math.inf),
        mandatory=f.flag("mandatory") if f.has("mandatory") else False,
        status=f.choice("status", _STATUSES),
        confidence=f.opt_number("confidence", high=1),
        claim=_read_claim(f.child("claim")) if f.has("claim") else None,
        reason=f.opt_text("reason"),
    )


def _read_characteristic(f: _Fields) -> _Characteristic:
    return _Characteristic(
        name=f.text("characteristic"),
        weight=f.opt_number("weight", high=math.inf),
        score=f.number("score", high=100),
        confidence=f.number("confidence", high=1),
        min_confidence=f.opt_number("min_confidence", high=1),
        met=f.flag("met"),
        requirements=tuple(_read_requirement(r) for r in f.children("requirements")),
    )


def _read_time(f: _Fields, key: str) -> datetime | None:
    text = f.opt_text(key)
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise AssessmentFormatError(f"{f.path}.{key}", f"not an ISO 8601 time: {text!r}") from None
    if at.tzinfo is None:
        raise AssessmentFormatError(f"{f.path}.{key}", f"the time {text!r} has no time zone")
    return at.astimezone(UTC)


def _read_assessment(f: _Fields) -> _Assessment:
    if f.has("version") and f.raw("version") != 1:
        raise AssessmentFormatError(
            f"{f.path}.version", f"format version {f.raw('version')!r} is not supported (only 1)"
        )
    policy = f.child("policy")
    subject = f.child("subject")
    return _Assessment(
        assessor=f.opt_text("assessor"),
        at=_read_time(f, "at"),
        policy={
            "id": policy.text("id"),
            "title": policy.opt_text("title"),
            "risk": policy.opt_text("risk"),
            "relationship": policy.opt_text("relationship"),
            "file": policy.opt_text("file"),
        },
        subject={
            "name": subject.opt_text("name"),
            "organization": subject.text("organization"),
            "identity": subject.opt_text("identity"),
            "route": subject.opt_text("route"),
            "reference_level": subject.opt_text("reference_level"),
        },
        decision=f.choice("decision", _DECISIONS),
        score=f.number("score", high=100),
        confidence=f.number("confidence", high=1),
        thresholds=_read_thresholds(f.child("thresholds")),
        characteristics=tuple(_read_characteristic(c) for c in f.children("characteristics")),
        reasons=tuple(
            _Reason(
                kind=r.text("kind"),
                text=r.text("text"),
                criterion=r.opt_text("criterion"),
                credential=r.opt_text("credential"),
            )
            for r in f.children("reasons")
        ),
        to_pass=tuple(f.texts("to_pass")),
        conditions=tuple(f.texts("conditions")),
        refused=tuple(
            _Refusal(source=r.text("source"), reason=r.text("reason"))
            for r in f.children("refused")
        ),
        suppliers=tuple(_read_assessment(s) for s in f.children("suppliers")),
    )


# -- the chart ----------------------------------------------------------------------------------

# Geometry of the chart, in SVG user units (pixels at 100 %).
_LABEL_X = 8
_TRACK_X = 168
_TRACK_W = 560
_CONF_X = _TRACK_X + _TRACK_W + 28
_CONF_W = 110
_CHART_W = _CONF_X + _CONF_W + 48
_TOP = 30
_ROW_H = 34
_BAR_H = 14
_CONF_H = 6
_AXIS_H = 26

_INK = "#1f2933"
_MUTED = "#616e7c"
_GRID = "#e4e7eb"
_TRACK = "#f0f2f5"
_MET = "#3a6ea5"
_UNMET = "#c0392b"
_OVERALL = "#323f4b"
_CONF = "#7b8794"
_ACCEPT = "#1e7b34"
_CONDITIONS = "#b7791f"


def _x(score: float) -> float:
    return _TRACK_X + _TRACK_W * score / 100


def _score_text(score: float) -> str:
    return f"{score:.1f}"


def _confidence_text(confidence: float) -> str:
    return f"{confidence:.2f}"


def _chart_row(
    y: float,
    *,
    name: str,
    note: str,
    unmet: bool,
    score: float,
    confidence: float,
    min_confidence: float | None,
    overall: bool = False,
) -> Markup:
    mid = y + _ROW_H / 2
    colour = _OVERALL if overall else (_UNMET if unmet else _MET)
    width = _TRACK_W * score / 100
    if score <= 85:
        value = Markup(
            '<text class="score" x="{:.2f}" y="{:.2f}" fill="{}" font-weight="600"'
            ' stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text>'
        ).format(_TRACK_X + width + 5, mid + 4, _INK, _score_text(score))
    else:
        value = Markup(
            '<text class="score" x="{:.2f}" y="{:.2f}" fill="#ffffff" text-anchor="end"'
            ' font-weight="600">{}</text>'
        ).format(_TRACK_X + width - 5, mid + 4, _score_text(score))
    low = min_confidence is not None and confidence < min_confidence
    conf_colour = _UNMET if low else _CONF
    minimum = Markup("")
    if min_confidence is not None:
        minimum = Markup(
            '<line class="conf-min" x1="{x:.2f}" x2="{x:.2f}" y1="{:.2f}" y2="{:.2f}"'
            ' stroke="{}" stroke-width="1.5"><title>minimum confidence {}</title></line>'
        ).format(
            mid - 7,
            mid + 7,
            _INK,
            _confidence_text(min_confidence),
            x=_CONF_X + _CONF_W * min_confidence,
        )
    classes = "row overall" if overall else ("row unmet" if unmet else "row met")
    tooltip = f"{name}: score {_score_text(score)}, confidence {_confidence_text(confidence)}"
    if unmet:
        tooltip += ", unmet"
    return Markup(
        '<g class="{classes}" data-characteristic="{name}">'
        "<title>{tooltip}</title>"
        '<text class="label" x="{lx}" y="{ly:.2f}" fill="{ink}" font-weight="{lw}">{name}</text>'
        '<text class="note" x="{lx}" y="{ny:.2f}" fill="{nc}" font-size="10.5"'
        ' font-weight="{nw}">{note}</text>'
        '<rect class="track" x="{tx}" y="{by:.2f}" width="{tw}" height="{bh}" fill="{track}"/>'
        '<rect class="bar" x="{tx}" y="{by:.2f}" width="{bw:.2f}" height="{bh}" fill="{colour}"'
        ' data-score="{score}"/>'
        "{value}"
        '<rect class="conf-track" x="{cx}" y="{cy:.2f}" width="{cw}" height="{ch}"'
        ' fill="{track}"/>'
        '<rect class="conf-bar" x="{cx}" y="{cy:.2f}" width="{cbw:.2f}" height="{ch}"'
        ' fill="{cc}" data-confidence="{conf}"/>'
        "{minimum}"
        '<text class="confidence" x="{ctx}" y="{cty:.2f}" fill="{cc}" font-size="11.5"'
        ' font-weight="{cwt}">{conf}</text>'
        "</g>"
    ).format(
        classes=classes,
        name=name,
        tooltip=tooltip,
        lx=_LABEL_X,
        ly=mid - 1 if note else mid + 4,
        ny=mid + 12,
        ink=_INK,
        lw="700" if overall else "500",
        note=note,
        nc=_UNMET if unmet else _MUTED,
        nw="700" if unmet else "400",
        tx=_TRACK_X,
        tw=_TRACK_W,
        by=mid - _BAR_H / 2,
        bh=_BAR_H,
        track=_TRACK,
        bw=width,
        colour=colour,
        score=_score_text(score),
        value=value,
        cx=_CONF_X,
        cw=_CONF_W,
        cy=mid - _CONF_H / 2,
        ch=_CONF_H,
        cbw=_CONF_W * confidence,
        cc=conf_colour,
        conf=_confidence_text(confidence),
        minimum=minimum,
        ctx=_CONF_X + _CONF_W + 8,
        cty=mid + 4,
        cwt="700" if low else "400",
    )


def _chart(
    characteristics: Sequence[_Characteristic],
    thresholds: _Thresholds,
    *,
    overall: tuple[float, float] | None,
    label: str,
) -> Markup:
    rows: list[Markup] = []
    y = float(_TOP)
    for c in characteristics:
        notes = [] if c.weight is None else [f"weight {c.weight:g}"]
        if not c.met:
            notes.append("\u2717 unmet")
        rows.append(
            _chart_row(
                y,
                name=c.name,
                note=" \u00b7 ".join(notes),
                unmet=not c.met,
                score=c.score,
                confidence=c.confidence,
                min_confidence=c.min_confidence,
            )
        )
        y += _ROW_H
    if not characteristics:
        rows.append(
            Markup('<text x="{}" y="{:.2f}" fill="{}">no characteristics assessed</text>').format(
                _TRACK_X, y + _ROW_H / 2 + 4, _MUTED
            )
        )
        y += _ROW_H
    if overall is not None:
        rows.append(
            Markup('<line x1="{}" x2="{}" y1="{y:.2f}" y2="{y:.2f}" stroke="{}"/>').format(
                _LABEL_X, _CHART_W - 8, _GRID, y=y + 3
            )
        )
        y += 6
        rows.append(
            _chart_row(
                y,
                name="overall",
                note="",
                unmet=False,
                score=overall[0],
                confidence=overall[1],
                min_confidence=None,
                overall=True,
            )
        )
        y += _ROW_H
    bottom = y + 4
    height = bottom + _AXIS_H

    grid = Markup("").join(
        Markup(
            '<line class="grid" x1="{x:.2f}" x2="{x:.2f}" y1="{}" y2="{:.2f}" stroke="{}"/>'
            '<text class="tick" x="{x:.2f}" y="{:.2f}" fill="{}" font-size="10.5"'
            ' text-anchor="middle">{}</text>'
        ).format(_TOP - 4, bottom, _GRID, bottom + 15, _MUTED, tick, x=_x(tick))
        for tick in range(0, 101, 20)
    )
    lines = Markup("").join(
        Markup(
            '<line class="threshold threshold-{kind}" x1="{x:.2f}" x2="{x:.2f}" y1="{}"'
            ' y2="{:.2f}" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"'
            ' data-threshold="{value}"><title>{kind} threshold {value}</title></line>'
            '<text class="threshold-label" x="{tx:.2f}" y="{}" fill="{colour}" font-size="11"'
            ' font-weight="600" text-anchor="{anchor}">{kind} \u2265 {value}</text>'
        ).format(
            _TOP - 10,
            bottom,
            16,
            kind=kind,
            x=_x(value),
            colour=colour,
            dash=dash,
            value=f"{value:g}",
            tx=_x(value) + (4 if anchor == "start" else -4),
            anchor=anchor,
        )
        for kind, value, colour, dash, anchor in (
            ("conditions", thresholds.conditions, _CONDITIONS, "5 3", "end"),
            ("accept", thresholds.accept, _ACCEPT, "none", "start"),
        )
    )
    heading = Markup(
        '<text x="{}" y="16" fill="{}" font-size="11" font-weight="600">confidence</text>'
    ).format(_CONF_X, _MUTED)
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"'
        ' viewBox="0 0 {w} {h:.0f}" width="{w}" height="{h:.0f}"'
        ' font-family="system-ui, -apple-system, \'Segoe UI\', Roboto, sans-serif" font-size="12"'
        ' aria-label="{label}"><title>{label}</title>'
        "{grid}{rows}{lines}{heading}</svg>"
    ).format(
        w=_CHART_W,
        h=height,
        label=label,
        grid=grid,
        rows=Markup("").join(rows),
        lines=lines,
        heading=heading,
    )


def render_svg_chart(
    characteristics: Sequence[Mapping[str, Any]],
    thresholds: Mapping[str, Any],
    *,
    overall: tuple[float, float] | None = None,
    label: str = "Score and confidence per characteristic",
) -> str:
    """An SVG chart (one standalone ``<svg>`` element) of scores per characteristic.

    One row per characteristic: a horizontal bar of its score (0 to 100), its confidence (0 to 1)
    as a thin bar and a number beside it, with the policy's minimum confidence as a tick, and
    unmet characteristics marked. The accept and conditions thresholds are vertical lines. With
    ``overall`` = (score, confidence), a final row shows the overall result. The characteristics
    and thresholds are the ``characteristics`` and ``thresholds`` of an assessment's JSON form.
    """
    parent = _Fields({"characteristics": characteristics, "thresholds": thresholds}, "chart")
    if overall is not None:
        given = _Fields({"score": overall[0], "confidence": overall[1]}, "overall")
        overall = (given.number("score", high=100), given.number("confidence", high=1))
    return str(
        _chart(
            [_read_characteristic(c) for c in parent.children("characteristics")],
            _read_thresholds(parent.child("thresholds")),
            overall=overall,
            label=label,
        )
    )


# -- the page -----------------------------------------------------------------------------------


_LEGEND = Markup(
    '<p class="legend">'
    '<span class="swatch" style="background:{met}"></span>met'
    '<span class="swatch" style="background:{unmet}"></span>unmet'
    '<span class="swatch" style="background:{overall}"></span>overall'
    '<span class="line" style="border-color:{accept}"></span>accept threshold'
    '<span class="line" style="border-color:{cond};border-top-style:dashed"></span>'
    "conditions threshold"
    '<span class="swatch" style="background:{conf};height:5px"></span>confidence'
    " (tick: the policy's minimum)</p>"
).format(met=_MET, unmet=_UNMET, overall=_OVERALL, accept=_ACCEPT, cond=_CONDITIONS, conf=_CONF)


def _value_text(value: Any) -> str:
    if value is None:
        return _DASH
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, int | float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _or_dash(value: str | None) -> str:
    return _DASH if value is None or value == "" else value


def _days(days: float | None) -> str:
    if days is None:
        return _DASH
    return "1 day" if days == 1 else f"{days:g} days"


def _badge(decision: str) -> Markup:
    return Markup('<span class="badge badge-{0}">{0}</span>').format(decision)


def _heading(level: int, text: str | Markup, *, extra: Markup | None = None) -> Markup:
    level = min(level, 6)
    return Markup("<h{0}>{1}{2}</h{0}>").format(level, text, extra or "")


def _facts(a: _Assessment) -> Markup:
    policy, subject = a.policy, a.subject
    rows = [
        ("policy", Markup("{} <code>{}</code>").format(_or_dash(policy["title"]), policy["id"])),
        ("risk", _or_dash(policy["risk"])),
        ("relationship", _or_dash(policy["relationship"])),
    ]
    if policy["file"]:
        rows.append(("policy file", Markup("<code>{}</code>").format(policy["file"])))
    subject_rows = [
        ("subject", _or_dash(subject["name"])),
        ("organization", Markup("<code>{}</code>").format(subject["organization"])),
        ("identity", Markup('<code class="wrap">{}</code>').format(_or_dash(subject["identity"]))),
        ("route", _or_dash(subject["route"])),
        ("reference level", _or_dash(subject["reference_level"])),
    ]

    def block(cls: str, items: list[tuple[str, str | Markup]]) -> Markup:
        body = Markup("").join(Markup("<dt>{}</dt><dd>{}</dd>").format(k, v) for k, v in items)
        return Markup('<dl class="facts {}">{}</dl>').format(cls, body)

    return Markup('<div class="fact-grid">{}{}</div>').format(
        block("policy", rows), block("subject", subject_rows)
    )


def _verdict(a: _Assessment) -> Markup:
    met = sum(c.met for c in a.characteristics)
    total = len(a.characteristics)
    return Markup(
        '<div class="verdict">{badge}'
        '<div class="figure"><span class="figure-value score-value">{score}</span>'
        '<span class="figure-label">score of 100</span></div>'
        '<div class="figure"><span class="figure-value confidence-value">{confidence}</span>'
        '<span class="figure-label">confidence</span></div>'
        '<div class="figure"><span class="figure-value">{met}/{total}</span>'
        '<span class="figure-label">characteristics met</span></div>'
        '<div class="figure"><span class="figure-value small">\u2265 {accept} / \u2265 {cond}'
        '</span><span class="figure-label">accept / conditions</span></div>'
        "</div>"
    ).format(
        badge=_badge(a.decision),
        score=_score_text(a.score),
        confidence=_confidence_text(a.confidence),
        met=met,
        total=total,
        accept=f"{a.thresholds.accept:g}",
        cond=f"{a.thresholds.conditions:g}",
    )


def _list_section(cls: str, level: int, title: str, items: Sequence[str], *, top: bool) -> Markup:
    if not items:
        return Markup("")
    return Markup('<section class="{cls}"{id}>{h}<ul>{items}</ul></section>').format(
        cls=cls,
        id=Markup(' id="{}"').format(cls) if top else "",
        h=_heading(level, title),
        items=Markup("").join(Markup("<li>{}</li>").format(i) for i in items),
    )


def _requirement_row(r: _Requirement) -> Markup:
    criterion = Markup('<code class="criterion">{}</code>').format(r.criterion)
    if r.title:
        criterion += Markup('<div class="sub">{}</div>').format(r.title)
    needed: list[str] = []
    if r.evidence:
        strongest = r.evidence == EvidenceKind.by_strength()[-1]
        needed.append(r.evidence if strongest else f"{r.evidence} or stronger")
    if r.max_age_days is not None:
        needed.append(f"at most {_days(r.max_age_days)} old")
    if r.weight is not None:
        needed.append(f"weight {r.weight:g}")
    tags = Markup(' <span class="tag">mandatory</span>') if r.mandatory else Markup("")
    claim = issuer = escape(_DASH)
    age = _DASH
    if r.claim is not None:
        c = r.claim
        claim = Markup("{}").format(_value_text(c.value))
        if c.evidence:
            claim += Markup(' <span class="sub-inline">({})</span>').format(c.evidence)
        if c.credential:
            claim += Markup('<div class="sub"><code class="wrap">{}</code></div>').format(
                c.credential
            )
        issuer = Markup("{}").format(_or_dash(c.issuer))
        if c.issuer_level:
            issuer += Markup('<div class="sub">{}</div>').format(c.issuer_level)
        age = _days(c.age_days)
    confidence = _DASH if r.confidence is None else _confidence_text(r.confidence)
    return Markup(
        '<tr class="requirement row-{status}" data-criterion="{id}">'
        "<td>{criterion}</td><td>{minimum}</td><td>{needed}{tags}</td>"
        '<td><span class="status status-{status}">{status}</span></td>'
        '<td>{claim}</td><td>{issuer}</td><td class="num">{age}</td>'
        '<td class="num">{confidence}</td><td class="reason">{reason}</td></tr>'
    ).format(
        status=r.status,
        id=r.criterion,
        criterion=criterion,
        minimum=_value_text(r.minimum),
        needed=", ".join(needed) or _DASH,
        tags=tags,
        claim=claim,
        issuer=issuer,
        age=age,
        confidence=confidence,
        reason=_or_dash(r.reason),
    )


_REQUIREMENT_HEAD = Markup(
    "<thead><tr><th>criterion</th><th>minimum</th><th>evidence needed</th><th>status</th>"
    "<th>claim used</th><th>issuer (level)</th><th>age</th><th>confidence</th><th>reason</th>"
    "</tr></thead>"
)


def _characteristic_block(c: _Characteristic, level: int) -> Markup:
    state = (
        Markup('<span class="status status-met">met</span>')
        if c.met
        else Markup('<span class="status status-missing">unmet</span>')
    )
    minimum = "" if c.min_confidence is None else f" (minimum {c.min_confidence:.2f})"
    heading = _heading(
        level,
        c.name,
        extra=Markup(
            ' <span class="heading-note">score {} \u00b7 confidence {}{} {}</span>'
        ).format(_score_text(c.score), _confidence_text(c.confidence), minimum, state),
    )
    if not c.requirements:
        body = Markup('<p class="muted">no requirements</p>')
    else:
        body = Markup(
            '<div class="table-wrap"><table class="requirements">{}<tbody>{}</tbody></table></div>'
        ).format(_REQUIREMENT_HEAD, Markup("").join(_requirement_row(r) for r in c.requirements))
    return Markup('<div class="characteristic" data-characteristic="{}">{}{}</div>').format(
        c.name, heading, body
    )


def _reasons_table(reasons: Sequence[_Reason]) -> Markup:
    rows = Markup("").join(
        Markup(
            '<tr class="reason-row"><td><span class="kind kind-{k}">{kind}</span></td><td>{text}'
            '</td><td>{criterion}</td><td class="wrap">{credential}</td></tr>'
        ).format(
            k=r.kind if r.kind.isalnum() else "other",
            kind=r.kind,
            text=r.text,
            criterion=Markup("<code>{}</code>").format(r.criterion) if r.criterion else _DASH,
            credential=Markup("<code>{}</code>").format(r.credential) if r.credential else _DASH,
        )
        for r in reasons
    )
    return Markup(
        '<div class="table-wrap"><table class="reasons"><thead><tr><th>kind</th><th>reason</th>'
        "<th>criterion</th><th>credential</th></tr></thead><tbody>{}</tbody></table></div>"
    ).format(rows)


def _refused_table(refused: Sequence[_Refusal]) -> Markup:
    rows = Markup("").join(
        Markup('<tr class="refused-row"><td>{}</td><td>{}</td></tr>').format(r.source, r.reason)
        for r in refused
    )
    return Markup(
        '<div class="table-wrap"><table class="refused"><thead><tr><th>source</th>'
        "<th>reason</th></tr></thead><tbody>{}</tbody></table></div>"
    ).format(rows)


def _section(cls: str, level: int, title: str, body: Markup, *, top: bool) -> Markup:
    return Markup('<section class="{}"{}>{}{}</section>').format(
        cls, Markup(' id="{}"').format(cls) if top else "", _heading(level, title), body
    )


def _supplier(a: _Assessment, depth: int) -> Markup:
    summary = Markup(
        "<summary>{badge} <strong>{name}</strong> <code>{org}</code>"
        '<span class="summary-figures">score {score} \u00b7 confidence {conf}</span></summary>'
    ).format(
        badge=_badge(a.decision),
        name=_or_dash(a.subject["name"]),
        org=a.subject["organization"],
        score=_score_text(a.score),
        conf=_confidence_text(a.confidence),
    )
    # Open by default: a closed <details> hides its content from print, and trees are shallow.
    return Markup(
        '<details class="supplier" open="open" data-organization="{}">{}'
        '<div class="supplier-body">{}{}</div></details>'
    ).format(a.subject["organization"], summary, _facts(a), _body(a, depth))


def _body(a: _Assessment, depth: int) -> Markup:
    top = depth == 0
    level = 2 + depth
    who = _or_dash(a.subject["name"])
    parts = [
        _section(
            "chart",
            level,
            "Scores per characteristic",
            _chart(
                a.characteristics,
                a.thresholds,
                overall=(a.score, a.confidence),
                label=f"Score and confidence per characteristic of {who}",
            )
            + (_LEGEND if top else Markup("")),
            top=top,
        ),
        _list_section("to-pass", level, "What would pass", a.to_pass, top=top),
        _list_section("conditions", level, "Conditions", a.conditions, top=top),
        _section(
            "requirements",
            level,
            "Requirements",
            Markup("").join(_characteristic_block(c, level + 1) for c in a.characteristics)
            or Markup('<p class="muted">no characteristics assessed</p>'),
            top=top,
        ),
        _section(
            "reasons",
            level,
            "Reasons",
            _reasons_table(a.reasons) if a.reasons else Markup('<p class="muted">none</p>'),
            top=top,
        ),
    ]
    if a.refused:
        parts.append(
            _section("refused", level, "Refused credentials", _refused_table(a.refused), top=top)
        )
    if a.suppliers:
        parts.append(
            _section(
                "suppliers",
                level,
                "Suppliers",
                Markup("").join(_supplier(s, depth + 1) for s in a.suppliers),
                top=top,
            )
        )
    return Markup("").join(parts)


_CSS = Markup("""
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --line: #d9dee4;
  --soft: #f5f7fa; --accept: #1e7b34; --conditions: #d69e2e; --reject: #c0392b; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef1f4; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main { max-width: 1180px; margin: 24px auto; padding: 28px 36px; background: #fff;
  border-radius: 10px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h1 { font-size: 1.6rem; margin: 0 0 4px; line-height: 1.25; }
h2 { font-size: 1.2rem; margin: 32px 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 22px 0 8px; }
h4, h5, h6 { font-size: 1rem; margin: 16px 0 6px; }
.muted, .byline { color: var(--muted); }
.byline { margin: 0 0 18px; }
code { font: 0.88em/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  background: var(--soft); padding: 1px 4px; border-radius: 3px; }
code.criterion { white-space: nowrap; }
tr.row-met > td:first-child { box-shadow: inset 3px 0 #3aa15a; }
tr.row-partial > td:first-child { box-shadow: inset 3px 0 #d69e2e; }
tr.row-missing > td:first-child { box-shadow: inset 3px 0 #c0392b; }
.wrap, code.wrap { overflow-wrap: anywhere; word-break: break-word; }
.verdict { display: flex; flex-wrap: wrap; align-items: center; gap: 14px 28px;
  margin: 8px 0 20px; }
.badge { display: inline-block; padding: 5px 14px; border-radius: 999px; font-weight: 700;
  letter-spacing: .02em; color: #fff; white-space: nowrap; }
.verdict .badge { font-size: 1.15rem; padding: 8px 20px; }
.badge-accept { background: var(--accept); }
.badge-accept-with-conditions { background: var(--conditions); color: #2d2005; }
.badge-reject { background: var(--reject); }
.figure { display: flex; flex-direction: column; }
.figure-value { font-size: 1.6rem; font-weight: 700; line-height: 1.1; }
.figure-value.small { font-size: 1.1rem; padding-top: 6px; }
.figure-label { font-size: .8rem; color: var(--muted); }
.fact-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr));
  gap: 0 32px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0 0 8px;
  align-content: start; }
dl.facts dt { color: var(--muted); font-size: .88rem; padding-top: 1px; }
dl.facts dd { margin: 0; min-width: 0; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 4px 0 6px; }
.supplier svg.chart { max-width: 760px; }
.legend { font-size: .82rem; color: var(--muted); margin: 0 0 8px; }
.legend .swatch { display: inline-block; width: 18px; height: 10px; vertical-align: middle;
  margin: 0 4px 0 12px; border-radius: 2px; }
.legend .line { display: inline-block; width: 16px; height: 0; vertical-align: middle;
  margin: 0 4px 0 12px; border-top: 2px solid; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .86rem; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px;
  border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; white-space: nowrap; }
td.reason { min-width: 220px; }
.sub { color: var(--muted); font-size: .8rem; margin-top: 2px; }
.sub-inline { color: var(--muted); }
.status, .tag, .kind { display: inline-block; padding: 1px 8px; border-radius: 999px;
  font-size: .78rem; font-weight: 600; white-space: nowrap; }
.status-met { background: #dff3e4; color: #17602a; }
.status-partial { background: #fcefc7; color: #7a5300; }
.status-missing { background: #fbe0dd; color: #9b2a1f; }
.tag { background: #e6e9f0; color: var(--ink); margin-left: 4px; }
.kind { background: #e6e9f0; color: var(--ink); }
.kind-refused, .kind-decision { background: #fbe0dd; color: #9b2a1f; }
.heading-note { font-weight: 400; font-size: .88rem; color: var(--muted); margin-left: 8px; }
section.to-pass ul, section.conditions ul { margin: 0; padding: 10px 14px 10px 32px;
  border-radius: 6px; }
section.to-pass ul { background: #fff7e6; border-left: 4px solid var(--conditions); }
section.conditions ul { background: #fdf8e7; border-left: 4px solid var(--conditions); }
details.supplier { border: 1px solid var(--line); border-radius: 8px; margin: 12px 0;
  background: #fff; }
details.supplier > summary { cursor: pointer; padding: 10px 14px; background: var(--soft);
  border-radius: 8px; list-style-position: inside; }
details.supplier[open] > summary { border-bottom: 1px solid var(--line);
  border-radius: 8px 8px 0 0; }
.summary-figures { color: var(--muted); margin-left: 10px; font-size: .9rem; }
.supplier-body { padding: 4px 16px 12px; }
.supplier-body h3, .supplier-body h4 { margin-top: 18px; }
footer { margin-top: 32px; color: var(--muted); font-size: .8rem; }
@media print {
  @page { margin: 14mm; }
  body { background: #fff; font-size: 10pt; }
  main { box-shadow: none; margin: 0; padding: 0; max-width: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2, h3, h4 { break-after: avoid; }
  tr, svg.chart, .verdict, dl.facts, details.supplier > summary { break-inside: avoid; }
  .table-wrap { overflow: visible; }
  details.supplier > summary { list-style: none; }
}
""")


def render_html(assessment: Mapping[str, Any]) -> str:
    """A self-contained HTML page of an assessment given in its JSON form.

    Shows the decision with the overall score and confidence, the policy and the subject, a chart
    of the characteristics' scores, the requirements with the claims used, the reasons, what would
    pass, the conditions, the refused credentials and the assessed suppliers as nested sections.
    Raises ``AssessmentFormatError`` naming the field when the input does not have that form.
    """
    a = _read_assessment(_Fields(assessment, "assessment"))
    who = _or_dash(a.subject["name"])
    byline: list[str] = []
    if a.assessor:
        byline.append(f"by {a.assessor}")
    if a.at:
        byline.append(f"at {a.at:%Y-%m-%d %H:%M} UTC")
    page = Markup(
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        "<title>Assessment of {who}: {decision}</title><style>{css}</style></head>"
        '<body><main class="assessment">'
        '<header class="summary"><h1>Assessment of {who}</h1>'
        '<p class="byline">{byline}</p>{verdict}{facts}</header>'
        "{body}"
        "<footer>Scores range from 0 to 100, confidence from 0 to 1. A characteristic whose"
        " confidence is below the policy's minimum counts as unmet.</footer>"
        "</main></body></html>\n"
    ).format(
        who=who,
        decision=a.decision,
        css=_CSS,
        byline=" ".join(byline) or _DASH,
        verdict=_verdict(a),
        facts=_facts(a),
        body=_body(a, 0),
    )
    return str(page)
