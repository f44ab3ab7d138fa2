"""The HTML page of an assessment: decision badge, score chart, requirement and reason tables,
supplier tree, escaping, self-containment, and the errors for input of the wrong form."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from typing import Any

import lxml.html
import pytest
from lxml.html import HtmlElement

from trustbridge.assessment.html import AssessmentFormatError, render_html, render_svg_chart
from trustbridge.errors import InputError

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> \' " & <b>bold</b>'


# -- sample assessments (the JSON form of Assessment.to_json()) -------------------------------


def _requirement(
    criterion: str,
    status: str,
    *,
    minimum: Any = True,
    evidence: str = "certificate",
    issuer: str = "Fuji Conformity Assessment Co.",
    value: Any = True,
    age_days: int = 120,
    confidence: float = 0.9,
    mandatory: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    claim = None
    if status != "missing":
        claim = {
            "credential": f"urn:uuid:{criterion}-0001",
            "value": value,
            "evidence": evidence,
            "issuer": issuer,
            "issuer_level": "itg-loa3",
            "age_days": age_days,
            "file": f"{criterion}.jwt",
        }
    return {
        "criterion": criterion,
        "title": f"title of {criterion}",
        "minimum": minimum,
        "evidence": evidence,
        "max_age_days": 1095,
        "weight": 2,
        "mandatory": mandatory,
        "status": status,
        "credit": {"met": 1.0, "partial": 0.5, "missing": 0.0}[status],
        "confidence": None if status == "missing" else confidence,
        "claim": claim,
        "reason": reason or f"{criterion} is {status}",
    }


def _assessment(
    name: str = "Hayabusa Sensor Components K.K.",
    organization: str = "NTRJP-1234567890123",
    *,
    decision: str = "accept",
    score: float = 87.5,
    confidence: float = 0.81,
    suppliers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "version": 1,
        "assessor": "Muster Maschinenbau GmbH",
        "at": "2026-11-26T10:00:00Z",
        "policy": {
            "id": "safety-component-supplier-high",
            "title": "Supplier of a safety-relevant component",
            "relationship": "supplier of a safety-relevant component",
            "risk": "high",
            "file": "policy.yaml",
        },
        "subject": {
            "organization": organization,
            "name": name,
            "identity": f"CN={name},O={name},C=JP",
            "route": "bridge",
            "reference_level": "itg-loa3",
        },
        "decision": decision,
        "score": score,
        "confidence": confidence,
        "thresholds": {"accept": 80, "conditions": 60},
        "characteristics": [
            {
                "characteristic": "security",
                "weight": 3,
                "score": 100.0,
                "confidence": 0.86,
                "min_confidence": 0.6,
                "met": True,
                "requirements": [
                    _requirement("iso-iec-27001", "met", mandatory=True),
                    _requirement(
                        "iec-62443-4-1", "partial", minimum="ml3", value="ml2", evidence="audit"
                    ),
                ],
            },
            {
                "characteristic": "safety",
                "weight": 3,
                "score": 45.0,
                "confidence": 0.52,
                "min_confidence": 0.6,
                "met": False,
                "requirements": [_requirement("iec-61508", "missing", minimum="sil2")],
            },
            {
                "characteristic": "reliability",
                "weight": 1,
                "score": 72.5,
                "confidence": 0.9,
                "min_confidence": 0.5,
                "met": True,
                "requirements": [
                    _requirement("mtbf", "met", minimum=100000, value=250000, age_days=400)
                ],
            },
        ],
        "reasons": [
            {
                "kind": "identity",
                "text": "resolved through the bridge at itg-loa3",
                "criterion": None,
                "credential": None,
            },
            {
                "kind": "requirement",
                "text": "iec-61508: no certificate or audit presented",
                "criterion": "iec-61508",
                "credential": None,
            },
            {
                "kind": "decision",
                "text": f"{decision} at score {score}",
                "criterion": None,
                "credential": None,
            },
        ],
        "to_pass": [],
        "conditions": [],
        "refused": [],
        "suppliers": suppliers or [],
    }


def _rejection() -> dict[str, Any]:
    data = _assessment(decision="reject", score=55.0, confidence=0.62)
    data["to_pass"] = [
        "present a certificate or audit for iec-61508 at sil2 or better, no older than 730 days",
        "present an audit for iec-62443-4-1 at ml3",
    ]
    data["refused"] = [{"source": "presentation 3", "reason": "credential revoked"}]
    return data


def _with_suppliers() -> dict[str, Any]:
    tier3 = _assessment("Tetsu Castings", "NTRJP-3333333333333", decision="reject", score=30.0)
    tier2a = _assessment("Kogane Semiconductors", "NTRJP-2222222222222", score=88.0)
    tier2b = _assessment(
        "Mizu Optics",
        "NTRJP-4444444444444",
        decision="accept-with-conditions",
        score=66.0,
        suppliers=[tier3],
    )
    return _assessment(suppliers=[tier2a, tier2b])


# -- parsing helpers ----------------------------------------------------------------------------


def _page(data: dict[str, Any]) -> HtmlElement:
    return lxml.html.document_fromstring(render_html(data))


def _one(root: HtmlElement, xpath: str) -> HtmlElement:
    found = root.xpath(xpath)
    assert isinstance(found, list)
    assert len(found) == 1, f"{xpath}: {len(found)} matches"
    element = found[0]
    assert isinstance(element, HtmlElement)
    return element


def _all(root: HtmlElement, xpath: str) -> list[HtmlElement]:
    found = root.xpath(xpath)
    assert isinstance(found, list)
    return [e for e in found if isinstance(e, HtmlElement)]


def _cls(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def _svg(markup: str) -> ET.Element:
    root = ET.fromstring(markup)  # noqa: S314 (our own output, parsed to prove it well-formed)
    assert root.tag == f"{SVG}svg"
    return root


def _rows(svg: ET.Element) -> dict[str, ET.Element]:
    return {
        g.attrib["data-characteristic"]: g
        for g in svg.iter(f"{SVG}g")
        if "row" in g.attrib.get("class", "").split()
    }


def _rect(row: ET.Element, cls: str) -> ET.Element:
    found = [r for r in row.iter(f"{SVG}rect") if r.attrib.get("class") == cls]
    assert len(found) == 1
    return found[0]


def _top_chart(page: HtmlElement) -> ET.Element:
    """The top-level chart, re-parsed as XML from the page source to check well-formedness."""
    svg = _one(page, "//section[@id='chart']/*[local-name()='svg']")
    return _svg(lxml.html.tostring(svg, encoding="unicode", method="xml"))


# -- the header ---------------------------------------------------------------------------------


@pytest.mark.parametrize("decision", ["accept", "accept-with-conditions", "reject"])
def test_the_badge_names_the_decision_in_its_colour_class(decision: str) -> None:
    page = _page(_assessment(decision=decision))
    badge = _one(page, f"//header//span[{_cls('badge')}]")
    assert badge.text_content() == decision
    assert f"badge-{decision}" in badge.classes
    assert decision in _one(page, "/html/head/title").text_content()


def test_the_header_shows_score_confidence_policy_and_subject() -> None:
    page = _page(_assessment())
    header = _one(page, "//header")
    assert _one(header, f".//*[{_cls('score-value')}]").text_content() == "87.5"
    assert _one(header, f".//*[{_cls('confidence-value')}]").text_content() == "0.81"
    facts = {
        dt.text_content(): dt.getnext().text_content()  # type: ignore[union-attr]
        for dt in _all(header, ".//dl/dt")
    }
    assert (
        facts["policy"] == "Supplier of a safety-relevant component safety-component-supplier-high"
    )
    assert facts["risk"] == "high"
    assert facts["relationship"] == "supplier of a safety-relevant component"
    assert facts["subject"] == "Hayabusa Sensor Components K.K."
    assert facts["organization"] == "NTRJP-1234567890123"
    assert facts["identity"].startswith("CN=Hayabusa Sensor Components K.K.,")
    assert facts["route"] == "bridge"
    assert facts["reference level"] == "itg-loa3"
    assert "2026-11-26 10:00 UTC" in _one(header, f".//p[{_cls('byline')}]").text_content()
    assert "2/3" in header.text_content()  # characteristics met


# -- the chart ----------------------------------------------------------------------------------


def test_one_bar_per_characteristic_with_a_width_proportional_to_the_score() -> None:
    rows = _rows(_top_chart(_page(_assessment())))
    assert list(rows) == ["security", "safety", "reliability", "overall"]
    expected = {"security": 100.0, "safety": 45.0, "reliability": 72.5, "overall": 87.5}
    for name, row in rows.items():
        track, bar = _rect(row, "track"), _rect(row, "bar")
        assert bar.attrib["x"] == track.attrib["x"]
        ratio = float(bar.attrib["width"]) / float(track.attrib["width"])
        assert ratio == pytest.approx(expected[name] / 100, abs=1e-4), name


def test_the_confidence_sits_beside_each_bar_with_the_minimum_as_a_tick() -> None:
    rows = _rows(_top_chart(_page(_assessment())))
    safety = rows["safety"]
    track, bar = _rect(safety, "conf-track"), _rect(safety, "conf-bar")
    assert float(bar.attrib["width"]) / float(track.attrib["width"]) == pytest.approx(0.52, 1e-4)
    (tick,) = [e for e in safety.iter(f"{SVG}line") if e.attrib.get("class") == "conf-min"]
    at = (float(tick.attrib["x1"]) - float(track.attrib["x"])) / float(track.attrib["width"])
    assert at == pytest.approx(0.6, abs=1e-4)
    texts = {t.attrib.get("class"): "".join(t.itertext()) for t in safety.iter(f"{SVG}text")}
    assert texts["confidence"] == "0.52"
    assert texts["score"] == "45.0"


def test_unmet_characteristics_are_marked() -> None:
    rows = _rows(_top_chart(_page(_assessment())))
    assert rows["safety"].attrib["class"].split() == ["row", "unmet"]
    assert rows["security"].attrib["class"].split() == ["row", "met"]
    notes = {
        t.attrib.get("class"): "".join(t.itertext()) for t in rows["safety"].iter(f"{SVG}text")
    }
    assert "unmet" in notes["note"]
    assert "unmet" not in "".join(rows["security"].itertext())


def test_the_thresholds_are_vertical_lines_at_their_scores() -> None:
    svg = _top_chart(_page(_assessment()))
    track = _rect(_rows(svg)["security"], "track")
    left, width = float(track.attrib["x"]), float(track.attrib["width"])
    lines = {
        line.attrib["class"]: line
        for line in svg.iter(f"{SVG}line")
        if "threshold" in line.attrib.get("class", "").split()
    }
    assert set(lines) == {"threshold threshold-accept", "threshold threshold-conditions"}
    for cls, value in (("accept", 80), ("conditions", 60)):
        line = lines[f"threshold threshold-{cls}"]
        assert line.attrib["x1"] == line.attrib["x2"]
        assert float(line.attrib["x1"]) == pytest.approx(left + width * value / 100, abs=0.01)
        assert float(line.attrib["y2"]) > float(line.attrib["y1"])


def test_render_svg_chart_is_a_standalone_well_formed_svg() -> None:
    data = _assessment()
    svg = _svg(render_svg_chart(data["characteristics"], {"accept": 90, "conditions": 50}))
    assert svg.attrib["viewBox"].startswith("0 0 ")
    assert list(_rows(svg)) == ["security", "safety", "reliability"]  # no overall unless asked
    xs = {
        line.attrib["data-threshold"]: float(line.attrib["x1"])
        for line in svg.iter(f"{SVG}line")
        if "data-threshold" in line.attrib
    }
    track = _rect(_rows(svg)["safety"], "track")
    left, width = float(track.attrib["x"]), float(track.attrib["width"])
    assert xs == {"90": pytest.approx(left + width * 0.9), "50": pytest.approx(left + width / 2)}
    with_overall = _svg(
        render_svg_chart(
            data["characteristics"], data["thresholds"], overall=(61.0, 0.7), label="demo"
        )
    )
    assert "overall" in _rows(with_overall)
    assert with_overall.attrib["aria-label"] == "demo"


def test_an_empty_chart_says_so() -> None:
    svg = _svg(render_svg_chart([], {"accept": 80, "conditions": 60}))
    assert _rows(svg) == {}
    assert "no characteristics assessed" in "".join(svg.itertext())


# -- the tables ---------------------------------------------------------------------------------


def test_every_requirement_has_a_row_with_its_claim_and_reason() -> None:
    page = _page(_assessment())
    section = _one(page, "//section[@id='requirements']")
    blocks = _all(section, f".//div[{_cls('characteristic')}]")
    assert [b.get("data-characteristic") for b in blocks] == ["security", "safety", "reliability"]
    rows = {r.get("data-criterion"): r for r in _all(section, ".//tr[@data-criterion]")}
    assert list(rows) == ["iso-iec-27001", "iec-62443-4-1", "iec-61508", "mtbf"]
    cells = [c.text_content() for c in _all(rows["iso-iec-27001"], "./td")]
    criterion, minimum, needed, status, claim, issuer, age, confidence, reason = cells
    assert criterion.startswith("iso-iec-27001")
    assert minimum == "yes"
    assert "certificate or stronger" in needed
    assert "at most 1095 days old" in needed
    assert "mandatory" in needed
    assert status == "met"
    assert claim.startswith("yes (certificate)")
    assert "urn:uuid:iso-iec-27001-0001" in claim
    assert issuer == "Fuji Conformity Assessment Co.itg-loa3"
    assert (age, confidence, reason) == ("120 days", "0.90", "iso-iec-27001 is met")
    partial = [c.text_content() for c in _all(rows["iec-62443-4-1"], "./td")]
    assert partial[1:4] == ["ml3", "audit, at most 1095 days old, weight 2", "partial"]
    assert partial[4].startswith("ml2 (audit)")
    missing = [c.text_content() for c in _all(rows["iec-61508"], "./td")]
    assert missing[3:8] == ["missing", "\u2014", "\u2014", "\u2014", "\u2014"]
    assert _all(rows["mtbf"], "./td")[4].text_content().startswith("250000")


def test_the_reasons_table_has_a_row_per_reason() -> None:
    page = _page(_assessment())
    rows = _all(page, "//section[@id='reasons']//tbody/tr")
    assert [[c.text_content() for c in _all(r, "./td")] for r in rows] == [
        ["identity", "resolved through the bridge at itg-loa3", "\u2014", "\u2014"],
        ["requirement", "iec-61508: no certificate or audit presented", "iec-61508", "\u2014"],
        ["decision", "accept at score 87.5", "\u2014", "\u2014"],
    ]


def test_a_rejection_lists_what_would_pass_and_the_refused_credentials() -> None:
    page = _page(_rejection())
    items = [li.text_content() for li in _all(page, "//section[@id='to-pass']//li")]
    assert items == _rejection()["to_pass"]
    refused = _all(page, "//section[@id='refused']//tbody/tr")
    assert [[c.text_content() for c in _all(r, "./td")] for r in refused] == [
        ["presentation 3", "credential revoked"]
    ]
    assert _all(page, "//section[@id='conditions']") == []


def test_conditions_are_listed_for_an_acceptance_with_conditions() -> None:
    data = _assessment(decision="accept-with-conditions", score=70.0)
    data["conditions"] = ["present an iec-62443-4-1 audit at ml3 within 180 days"]
    page = _page(data)
    items = [li.text_content() for li in _all(page, "//section[@id='conditions']//li")]
    assert items == data["conditions"]
    assert _all(page, "//section[@id='to-pass']") == []
    assert _all(page, "//section[@id='refused']") == []


# -- the supplier tree --------------------------------------------------------------------------


def test_suppliers_are_nested_collapsible_sections_with_their_own_chart() -> None:
    page = _page(_with_suppliers())
    section = _one(page, "//section[@id='suppliers']")
    tier2 = _all(section, "./details[" + _cls("supplier") + "]")
    assert [d.get("data-organization") for d in tier2] == [
        "NTRJP-2222222222222",
        "NTRJP-4444444444444",
    ]
    summaries = [_one(d, "./summary") for d in tier2]
    assert [_one(s, f".//span[{_cls('badge')}]").text_content() for s in summaries] == [
        "accept",
        "accept-with-conditions",
    ]
    assert "Kogane Semiconductors" in summaries[0].text_content()
    assert "score 88.0" in summaries[0].text_content()
    for details in tier2:
        (chart,) = _all(details, "./div/section[" + _cls("chart") + "]/*[local-name()='svg']")
        rows = _rows(_svg(lxml.html.tostring(chart, encoding="unicode", method="xml")))
        assert list(rows) == ["security", "safety", "reliability", "overall"]
    # Mizu Optics's own supplier sits inside Mizu Optics's section, one level deeper.
    (tier3,) = _all(tier2[1], ".//details[" + _cls("supplier") + "]")
    assert tier3.get("data-organization") == "NTRJP-3333333333333"
    assert _all(tier2[0], ".//details") == []
    assert len(_all(page, "//details")) == 3
    assert _all(tier3, ".//h4[text()='Requirements']")
    # Only the page itself carries section ids, so nested sections never repeat one.
    ids = [e.get("id") for e in _all(page, "//*[@id]")]
    assert len(ids) == len(set(ids))


# -- safety of the page -------------------------------------------------------------------------


def _hostile() -> dict[str, Any]:
    data = _with_suppliers()
    data["subject"]["name"] = HOSTILE
    data["subject"]["organization"] = HOSTILE
    data["policy"]["title"] = HOSTILE
    data["assessor"] = HOSTILE
    first = data["characteristics"][0]
    first["characteristic"] = HOSTILE
    requirement = first["requirements"][0]
    requirement["criterion"] = HOSTILE
    requirement["reason"] = HOSTILE
    requirement["minimum"] = HOSTILE
    requirement["claim"]["issuer"] = HOSTILE
    requirement["claim"]["value"] = {"x": HOSTILE}
    data["reasons"].append(
        {"kind": HOSTILE, "text": HOSTILE, "criterion": HOSTILE, "credential": HOSTILE}
    )
    data["to_pass"] = [HOSTILE]
    data["refused"] = [{"source": HOSTILE, "reason": HOSTILE}]
    data["suppliers"][0]["subject"]["name"] = HOSTILE
    data["suppliers"][0]["subject"]["organization"] = HOSTILE
    return data


def test_hostile_strings_are_escaped_everywhere() -> None:
    html = render_html(_hostile())
    assert "<script" not in html
    assert "<b>" not in html
    page = lxml.html.document_fromstring(html)
    assert _all(page, "//script | //b") == []
    # No attribute was injected: every attribute name is one the renderer writes.
    names = {name for e in page.iter() for name in e.attrib}
    assert not {n for n in names if n.startswith("on")}
    # The strings come back intact as text and in attribute values.
    assert _one(page, "//h1").text_content() == f"Assessment of {HOSTILE}"
    assert _all(page, f"//tr[@data-criterion={_xpath_literal(HOSTILE)}]")
    assert _all(page, f"//details[@data-organization={_xpath_literal(HOSTILE)}]")
    assert HOSTILE in [li.text_content() for li in _all(page, "//section[@id='to-pass']//li")]
    kinds = _all(page, f"//section[@id='reasons']//span[{_cls('kind')}]")
    assert kinds[-1].text_content() == HOSTILE
    assert "kind-other" in kinds[-1].classes
    # The chart with the hostile characteristic name is still well-formed XML.
    rows = _rows(_top_chart(page))
    assert HOSTILE in rows


def _xpath_literal(text: str) -> str:
    parts = text.split("'")
    return "concat(" + ', "\'", '.join(f"'{p}'" for p in parts) + ")"


def test_the_page_is_self_contained() -> None:
    html = render_html(_hostile())
    page = lxml.html.document_fromstring(html)
    assert _all(page, "//script | //link | //img | //iframe | //object | //embed") == []
    for element in page.iter():
        for attribute in ("src", "href", "action", "srcset", "style"):
            value = element.get(attribute) or ""
            assert not re.search(r"(?i)(https?:)?//|url\(", value), (element.tag, value)
    css = _one(page, "//style").text_content()
    assert "url(" not in css
    assert "@import" not in css
    assert not re.search(r"(?i)\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", html)


def test_the_whole_page_is_well_formed_xml() -> None:
    html = render_html(_hostile())
    assert html.startswith("<!DOCTYPE html>\n")
    root = ET.fromstring(html.removeprefix("<!DOCTYPE html>\n"))  # noqa: S314 (our own output)
    assert root.tag == "html"
    assert len([e for e in root.iter() if e.tag == f"{SVG}svg"]) == 4


def test_the_same_assessment_gives_the_same_page() -> None:
    assert render_html(_with_suppliers()) == render_html(_with_suppliers())


def test_a_minimal_assessment_renders() -> None:
    minimal = {
        "policy": {"id": "p"},
        "subject": {"organization": "NTRDE-1"},
        "decision": "reject",
        "score": 0,
        "confidence": 0,
        "thresholds": {"accept": 80, "conditions": 60},
        "characteristics": [],
    }
    page = _page(minimal)
    assert _one(page, f"//header//span[{_cls('badge')}]").text_content() == "reject"
    assert "no characteristics assessed" in _one(page, "//section[@id='chart']").text_content()
    assert _all(page, "//section[@id='suppliers']") == []


# -- input of the wrong form --------------------------------------------------------------------


def _broken(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(_with_suppliers())
    *parents, last = path.split(".")
    target: Any = data
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("decision", KeyError, r"^assessment\.decision: missing$"),
        ("decision", "maybe", r"assessment\.decision: expected one of accept, .*'maybe'"),
        ("score", 120, r"assessment\.score: expected a number from 0 to 100, got 120"),
        ("score", "high", r"assessment\.score: expected a number, got the string 'high'"),
        ("confidence", True, r"assessment\.confidence: expected a number, got a boolean"),
        ("confidence", float("nan"), r"assessment\.confidence: expected a number from 0 to 1"),
        ("thresholds.conditions", 90, r"conditions threshold 90 lies above accept 80"),
        ("characteristics.1.met", KeyError, r"characteristics\[1\]\.met: missing"),
        (
            "characteristics.0.requirements.1.status",
            "done",
            r"characteristics\[0\]\.requirements\[1\]\.status: expected one of met, partial",
        ),
        ("characteristics.2.requirements.0.claim", [], r"requirements\[0\]\.claim: expected an"),
        (
            "suppliers.1.suppliers.0.score",
            -1,
            r"^assessment\.suppliers\[1\]\.suppliers\[0\]\.score",
        ),
        ("to_pass", "do better", r"assessment\.to_pass: expected a list, got the string"),
        ("at", "yesterday", r"assessment\.at: not an ISO 8601 time: 'yesterday'"),
        ("at", "2026-11-26T10:00:00", r"assessment\.at: the time .* has no time zone"),
        ("version", 2, r"assessment\.version: format version 2 is not supported"),
        ("subject", KeyError, r"assessment\.subject: missing"),
    ],
)
def test_input_of_the_wrong_form_is_refused_naming_the_field(
    path: str, value: Any, message: str
) -> None:
    with pytest.raises(AssessmentFormatError, match=message) as caught:
        render_html(_broken(path, value))
    assert isinstance(caught.value, InputError)
    assert caught.value.exit_code == 2
    assert "Assessment.to_json()" in caught.value.diagnostics()


def test_a_non_object_is_refused() -> None:
    with pytest.raises(AssessmentFormatError, match=r"^assessment: expected an object, got a list"):
        render_html([])  # type: ignore[arg-type]


def test_the_chart_refuses_bad_characteristics_and_overall() -> None:
    with pytest.raises(AssessmentFormatError, match=r"chart\.characteristics\[0\]\.score: missing"):
        render_svg_chart(
            [{"characteristic": "safety", "confidence": 0.5, "met": True}],
            {"accept": 80, "conditions": 60},
        )
    with pytest.raises(AssessmentFormatError, match=r"overall\.score: expected a number from 0"):
        render_svg_chart([], {"accept": 80, "conditions": 60}, overall=(101.0, 0.5))
    with pytest.raises(AssessmentFormatError, match=r"chart\.thresholds\.accept: missing"):
        render_svg_chart([], {"conditions": 60})
