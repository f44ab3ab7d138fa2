"""Small inline SVG pictures for the demo's report: the trust topology, trust paths, level
mappings and provenance timelines. Hand-drawn boxes and arrows, no external resources, so that
``report.html`` opens without a network."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Box", "Edge", "Picture", "chain", "timeline"]

#: Fill colours by box style (anchor, CA, bridge, list, holder, revoked, ...).
_FILL = {
    "anchor": "#dafbe1",
    "ca": "#ddf4ff",
    "bridge": "#fff1d6",
    "cross": "#fff1d6",
    "list": "#fbefff",
    "holder": "#f6f8fa",
    "revoked": "#ffebe9",
    "level": "#ffffff",
}
_STROKE = {
    "anchor": "#1a7f37",
    "ca": "#0969da",
    "bridge": "#9a6700",
    "cross": "#9a6700",
    "list": "#8250df",
    "holder": "#57606a",
    "revoked": "#cf222e",
    "level": "#57606a",
}
_EDGE = {
    "certifies": "#0969da",
    "cross": "#9a6700",
    "lists": "#8250df",
    "maps": "#57606a",
    "event": "#57606a",
}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fit(text: str, width: float, size: float = 12.0) -> str:
    """Cut ``text`` to what fits ``width`` pixels at ``size`` (an average glyph estimate)."""
    room = max(4, int(width / (size * 0.58)))
    return text if len(text) <= room else text[: room - 1] + "…"


@dataclass(frozen=True)
class Box:
    key: str
    x: float
    y: float
    w: float
    h: float
    title: str
    subtitle: str = ""
    style: str = "ca"
    tooltip: str = ""

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""
    kind: str = "certifies"
    both_ways: bool = False
    dashed: bool = False


class Picture:
    """Boxes joined by arrows, drawn as one ``<svg>`` element."""

    def __init__(self, width: float, height: float, label: str) -> None:
        self.width = width
        self.height = height
        self.label = label
        self.boxes: dict[str, Box] = {}
        self.edges: list[Edge] = []
        self.texts: list[str] = []

    def box(self, box: Box) -> Box:
        self.boxes[box.key] = box
        return box

    def edge(self, edge: Edge) -> None:
        self.edges.append(edge)

    def text(self, x: float, y: float, text: str, *, size: int = 12, anchor: str = "start") -> None:
        self.texts.append(
            f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="#57606a">{_e(text)}</text>'
        )

    def _anchor(self, box: Box, towards: Box) -> tuple[float, float]:
        """Where a line from ``box`` towards ``towards`` leaves the box's border."""
        dx, dy = towards.cx - box.cx, towards.cy - box.cy
        if dx == 0 and dy == 0:
            return box.cx, box.cy
        scale = min(
            (box.w / 2) / abs(dx) if dx else float("inf"),
            (box.h / 2) / abs(dy) if dy else float("inf"),
        )
        return box.cx + dx * scale, box.cy + dy * scale

    def render(self) -> str:
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width:.0f} '
            f'{self.height:.0f}" width="{self.width:.0f}" height="{self.height:.0f}" '
            f'role="img" aria-label="{_e(self.label)}" font-family="system-ui, sans-serif">',
            f"<title>{_e(self.label)}</title>",
            "<defs>",
        ]
        for kind, colour in _EDGE.items():
            parts.append(
                f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
                f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            )
        parts.append("</defs>")
        for edge in self.edges:
            a, b = self.boxes[edge.source], self.boxes[edge.target]
            x1, y1 = self._anchor(a, b)
            x2, y2 = self._anchor(b, a)
            colour = _EDGE.get(edge.kind, "#57606a")
            start = f' marker-start="url(#arrow-{edge.kind})"' if edge.both_ways else ""
            dash = ' stroke-dasharray="5,4"' if edge.dashed else ""
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                f'stroke="{colour}" stroke-width="1.6"{dash}{start} '
                f'marker-end="url(#arrow-{edge.kind})"/>'
            )
            if edge.label:
                mx, my = (x1 + x2) / 2, (y1 + y2) / 2
                parts.append(
                    f'<text x="{mx:.0f}" y="{my - 4:.0f}" font-size="10.5" text-anchor="middle" '
                    f'fill="{colour}" paint-order="stroke" stroke="#ffffff" stroke-width="3">'
                    f"{_e(edge.label)}</text>"
                )
        for box in self.boxes.values():
            fill, stroke = _FILL.get(box.style, "#ffffff"), _STROKE.get(box.style, "#57606a")
            tip = f"<title>{_e(box.tooltip or box.title)}</title>"
            parts.append(
                f'<g class="box {_e(box.style)}">{tip}<rect x="{box.x:.0f}" y="{box.y:.0f}" '
                f'width="{box.w:.0f}" height="{box.h:.0f}" rx="6" fill="{fill}" '
                f'stroke="{stroke}" stroke-width="1.4"/>'
            )
            title_y = box.cy - (6 if box.subtitle else -4)
            parts.append(
                f'<text x="{box.cx:.0f}" y="{title_y:.0f}" font-size="12" font-weight="600" '
                f'text-anchor="middle" fill="#1b1f24">{_e(_fit(box.title, box.w - 10))}</text>'
            )
            if box.subtitle:
                parts.append(
                    f'<text x="{box.cx:.0f}" y="{box.cy + 10:.0f}" font-size="10.5" '
                    f'text-anchor="middle" fill="#57606a">'
                    f"{_e(_fit(box.subtitle, box.w - 10, 10.5))}</text>"
                )
            parts.append("</g>")
        parts.extend(self.texts)
        parts.append("</svg>")
        return "".join(parts)


def chain(
    items: Sequence[tuple[str, str, str]],
    *,
    label: str,
    edge_labels: Sequence[str] = (),
    caption: str = "",
) -> str:
    """A left-to-right chain of boxes ``(title, subtitle, style)`` joined by arrows."""
    gap, box_w, box_h = 58.0, 176.0, 46.0
    width = 10 + len(items) * (box_w + gap) - gap + 10
    height = box_h + 20 + (22 if caption else 0)
    picture = Picture(max(width, 900), height, label)
    for i, (title, subtitle, style) in enumerate(items):
        picture.box(Box(str(i), 10 + i * (box_w + gap), 10, box_w, box_h, title, subtitle, style))
        if i:
            text = edge_labels[i - 1] if i - 1 < len(edge_labels) else ""
            kind = "cross" if style == "cross" or items[i - 1][2] == "cross" else "certifies"
            picture.edge(Edge(str(i - 1), str(i), text, kind))
    if caption:
        picture.text(10, box_h + 36, caption)
    return picture.render()


def timeline(events: Sequence[tuple[str, str, bool]], *, label: str) -> str:
    """Events ``(name, who, ok)`` in order on a line, one station each."""
    step = 150.0
    width = 40 + max(1, len(events)) * step
    picture = Picture(width, 96, label)
    picture.texts.append(
        f'<line x1="20" y1="30" x2="{width - 20:.0f}" y2="30" stroke="#d0d7de" stroke-width="3"/>'
    )
    for i, (name, who, ok) in enumerate(events):
        x = 20 + step / 2 + i * step
        colour = "#1a7f37" if ok else "#cf222e"
        picture.texts.append(
            f'<circle cx="{x:.0f}" cy="30" r="8" fill="{colour}"><title>{_e(name)}: '
            f"{_e(who)}</title></circle>"
        )
        picture.texts.append(
            f'<text x="{x:.0f}" y="56" font-size="11.5" font-weight="600" text-anchor="middle" '
            f'fill="#1b1f24">{_e(_fit(name, step - 8, 11.5))}</text>'
        )
        picture.texts.append(
            f'<text x="{x:.0f}" y="74" font-size="10" text-anchor="middle" fill="#57606a">'
            f"{_e(_fit(who, step - 8, 10))}</text>"
        )
    return picture.render()
