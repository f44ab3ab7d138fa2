"""The run's outputs: ``results.csv`` (every measurement), ``report.html`` (self-contained:
inline SVG plots made with matplotlib, the computed conclusions) and the plots as files.

The plots are drawn on matplotlib's Agg canvas without pyplot (no global state) and saved as
SVG with a fixed hash salt and no date, so that the same figures give the same SVG bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from jinja2 import Environment
from markupsafe import Markup
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trustbridge.errors import InputError
from trustbridge.sim._format import money, quantity
from trustbridge.sim.conclude import Conclusions, conclude
from trustbridge.sim.costs import cost_breakdown
from trustbridge.sim.measure import Results
from trustbridge.sim.run import SimulationResult
from trustbridge.sim.topologies import Topology

__all__ = ["PLOTS", "ReportFiles", "plot_svg", "render_html", "write_outputs"]

_COLORS = {
    "global-root": "#7f7f7f",
    "mesh": "#d62728",
    "hub": "#1f77b4",
    "bridge-of-bridges": "#17becf",
    "group": "#2ca02c",
    "hybrid": "#9467bd",
}
_MARKERS = {
    "global-root": "s",
    "mesh": "x",
    "hub": "o",
    "bridge-of-bridges": "D",
    "group": "^",
    "hybrid": "v",
}

#: The plots: name -> (title, [(metric, axis label)], log y).
PLOTS: dict[str, tuple[str, tuple[tuple[str, str], ...], bool]] = {
    "links": (
        "What must be maintained",
        (
            ("links_to_maintain", "cross-certificates and signed lists"),
            ("agreements", "agreements"),
        ),
        True,
    ),
    "cost": (
        "Annual cost per country",
        (("cost_per_participant", "cost per country and year"),),
        True,
    ),
    "resolution": (
        "A relying party resolving a foreign identity (cold)",
        (
            ("resolve_cold_ms", "cold resolution (ms)"),
            ("rp_fetch_bytes_per_resolution", "bytes fetched per cold resolution"),
        ),
        True,
    ),
    "robustness": (
        "Robustness",
        (
            ("worst_compromise_share", "relationships lost to the worst key compromise"),
            ("availability_central_down", "availability, central host down"),
        ),
        False,
    ),
}


def plot_svg(results: Results, name: str, *, currency: str = "EUR") -> str:
    """One of :data:`PLOTS` as a standalone ``<svg>`` element (no XML prologue)."""
    title, panels, log_y = PLOTS[name]
    topologies = [t.value for t in Topology if results.series(t.value, panels[0][0])]
    with matplotlib.rc_context({"svg.hashsalt": "trustbridge-sim", "font.size": 9}):
        figure = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
        FigureCanvasAgg(figure)  # the Agg backend, without pyplot's global state
        axes = figure.subplots(1, len(panels), squeeze=False)[0]
        for ax, (metric, label) in zip(axes, panels, strict=True):
            for topology in topologies:
                points = results.series(topology, metric)
                if not points:
                    continue
                xs, ys = zip(*points, strict=True)
                ax.plot(
                    xs,
                    ys,
                    label=topology,
                    color=_COLORS.get(topology),
                    marker=_MARKERS.get(topology),
                    markersize=4,
                    linewidth=1.2,
                )
            ax.set_xscale("log")
            if log_y and all(v > 0 for t in topologies for _, v in results.series(t, metric)):
                ax.set_yscale("log")
            ax.set_xlabel("countries")
            ax.set_ylabel(label.replace("cost per country", f"{currency} per country"))
            ax.grid(True, which="major", linewidth=0.3, alpha=0.6)
            sizes = results.sizes()
            ax.set_xticks(sizes, [str(s) for s in sizes])
            ax.minorticks_off()
        axes[0].legend(fontsize=7, frameon=False)
        figure.suptitle(title)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


#: Rows of the per-topology tables: (metric, label).
_STRUCTURE_ROWS = (
    ("cross_certificates", "cross-certificates"),
    ("closed_form_cross_certificates", "closed form"),
    ("agreements", "agreements"),
    ("cas", "CAs"),
    ("trust_lists", "trust lists"),
    ("lotls", "LOTL"),
    ("published_artifacts", "published URLs"),
    ("published_bytes", "published bytes"),
    ("build_seconds", "linking time (s)"),
)
_RP_ROWS = (
    ("rp_hold_bytes", "held by a relying party"),
    ("rp_list_ingest_ms", "reading and verifying the lists (ms)"),
    ("rp_fetches_per_resolution", "fetches per cold resolution"),
    ("rp_fetch_bytes_per_resolution", "bytes per cold resolution"),
    ("rp_fetch_bytes_all", "bytes for all sampled identities"),
    ("path_length_mean", "path length (mean)"),
    ("path_length_max", "path length (max)"),
    ("resolve_cold_ms", "cold resolution, median (ms)"),
    ("resolve_cold_max_ms", "cold resolution, slowest (ms)"),
    ("resolve_warm_us", "warm resolution, median (us)"),
    ("identities_resolved", "identities resolved"),
    ("identities_checked", "identities tried"),
    ("default_limits_failures", "failed with default search limits"),
    ("default_limits_checked", "tried with default search limits"),
    ("reference_level_share", "resolutions naming a reference level"),
    ("services_recognized", "CAB services recognized by lists"),
)
_JOIN_ROWS = (
    ("add_country_cross_certificates", "new cross-certificates"),
    ("add_country_agreements", "new agreements"),
    ("add_country_urls_new", "new URLs"),
    ("add_country_urls_changed", "re-published URLs"),
    ("add_country_bytes_published", "bytes (re-)published"),
    ("add_country_hosts_publishing", "hosts that publish"),
    ("add_country_rp_bytes", "bytes every relying party fetches"),
    ("add_country_build_ms", "time to link it (ms)"),
    ("cost_join_one_time", "one-time cost"),
)
_EVENT_ROWS = (
    ("revocation_identity_mean_h", "identity revoked: mean delay (h)"),
    ("revocation_identity_p95_h", "identity revoked: 95th percentile (h)"),
    ("revocation_identity_ocsp_p95_h", "identity revoked, OCSP relying party: p95 (h)"),
    ("revocation_tsp_p95_h", "TSP revoked or withdrawn: p95 (h)"),
    ("revocation_link_p95_h", "country cut off: p95 (h)"),
    ("answer_ttl_hours", "cached answer lifetime (h)"),
    ("availability_random", "availability, random host failures"),
    ("availability_bridge_down", "availability, bridge / central host down"),
    ("availability_central_down", "availability, its central host down (group: LOTL)"),
    ("availability_list_host_down", "availability, a trust-list host down"),
    ("availability_lotl_host_down", "availability, the LOTL host down"),
    ("availability_ocsp_down", "availability, OCSP responders down"),
    ("availability_ocsp_down_ocsp_rp", "the same, OCSP relying party"),
)
_COMPROMISE_KINDS = (
    ("tsp", "a TSP's CA"),
    ("root", "a national root"),
    ("central", "the central key (global root, bridge, top bridge, LOTL signer)"),
    ("regional", "a regional bridge"),
    ("list-signer", "a trust-list signer"),
    ("lotl-signer", "the LOTL signer (hybrid: services only)"),
)
_COMPROMISE_FIELDS = (
    ("relationship_share", "relationships"),
    ("identities", "identities"),
    ("link_certificates", "certificates re-issued"),
    ("ceremonies", "ceremonies"),
    ("anchor_updates", "countries re-pin"),
    ("recovery_days", "recovery (days)"),
)


@dataclass(frozen=True)
class _Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


def _metric_table(
    results: Results, size: int, rows: Sequence[tuple[str, str]], title: str, note: str = ""
) -> _Table:
    table = results.table()
    topologies = [t.value for t in Topology if (t.value, size) in table]
    body = []
    for metric, label in rows:
        values = [table[(t, size)].get(metric, math.nan) for t in topologies]
        if all(math.isnan(v) for v in values):
            continue
        unit = results.unit(metric)
        if metric == "cost_join_one_time":
            body.append((label, *(money(v, "EUR") for v in values)))
        else:
            body.append((label, *(quantity(v, unit, with_unit=False) for v in values)))
    return _Table(title, ("", *topologies), tuple(body), note)


def _compromise_table(results: Results, size: int) -> _Table:
    table = results.table()
    topologies = [t.value for t in Topology if (t.value, size) in table]
    rows = []
    for kind, label in _COMPROMISE_KINDS:
        for field, what in _COMPROMISE_FIELDS:
            metric = f"compromise_{kind}_{field}"
            values = [table[(t, size)].get(metric, math.nan) for t in topologies]
            if all(math.isnan(v) for v in values):
                continue
            unit = "share" if field == "relationship_share" else ""
            rows.append((f"{label}: {what}", *(quantity(v, unit, with_unit=False) for v in values)))
    return _Table(
        f"Key compromise at {size} countries",
        ("", *topologies),
        tuple(rows),
        "One key of each kind taken (the first country's); relationships are directed pairs of "
        "countries weighted by the share of the holder's identities affected; recovery in days "
        "from the compromise until the last relationship is restored (event model).",
    )


def _cost_table(result: SimulationResult, size: int) -> _Table:
    table = result.results.table()
    model = result.model
    currency = str(model.get("currency"))
    topologies = [t.value for t in Topology if (t.value, size) in table]
    breakdowns = [
        cost_breakdown(table[(t, size)], model, topology=t, countries=size) for t in topologies
    ]
    rows = [
        (component, *(money(b.components[component] / size, currency) for b in breakdowns))
        for component in breakdowns[0].components
    ]
    rows.append(("total per country", *(money(b.per_participant, currency) for b in breakdowns)))
    return _Table(
        f"Annual cost per country at {size} countries, by component",
        ("", *topologies),
        tuple(rows),
        "Components as defined in trustbridge.sim.costs.cost_breakdown; parameters below.",
    )


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>trustbridge simulate: trust topologies at scale</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 78rem; color: #222;
  padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: 12.5px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; vertical-align: top; }
th { text-align: left; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; max-width: 34rem; }
thead th { background: #f3f3f3; }
.verdict { background: #eef6ee; border-left: 4px solid #2ca02c; padding: .6rem 1rem; }
.note { color: #555; font-size: 12.5px; }
svg { max-width: 100%; height: auto; }
code { background: #f4f4f4; padding: 0 3px; }
</style></head><body>
<h1>Trust topologies at scale: bridge and group constructions, measured</h1>
<p class="note">trustbridge simulate, seed {{ options.seed }}; {{ sizes|join(", ") }} countries,
{{ options.tsps_per_country }} TSP(s) and {{ options.orgs_per_country }} organization
identities per country; parameters from {{ model.source }};
run time {{ "%.0f"|format(seconds) }} s.</p>

<div class="verdict"><p><b>Recommended design for a world of {{ c.world }} countries:
{{ c.design }}</b> ({{ design_description }}).</p>
{% for line in c.design_reasons %}<p>{{ line }}</p>{% endfor %}</div>

<h2>The paper's questions</h2>
<table><thead><tr><th>question</th><th>how trustbridge answers it</th><th>measured evidence</th>
<th>answer</th></tr></thead><tbody>
{% for a in c.answers %}<tr><td class="text"><b>{{ a.question }}</b></td>
<td class="text">{{ a.how }}</td>
<td class="text"><ul>{% for e in a.evidence %}<li>{{ e }}</li>{% endfor %}</ul></td>
<td class="text">{{ a.verdict }}</td></tr>{% endfor %}
</tbody></table>
<table><thead><tr>{% for h in c.robustness_header %}<th>{{ h }}</th>{% endfor %}</tr>
</thead><tbody>
{% for r in c.robustness %}<tr><td>{{ r.topology }}</td>
{% for cell in r.cells %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}
</tbody></table>
<p class="note">n^b: the exponent of a least-squares fit of log(value) over log(countries),
sizes of 5 countries and more.</p>

<h2>Where each construction wins</h2>
<table><thead><tr><th>countries</th><th>recommended</th><th>cost per country</th>
<th>ranking (cost per country and year)</th><th>left out</th></tr></thead><tbody>
{% for r in c.recommendations %}<tr><td>{{ r.countries }}</td><td>{{ r.topology }}</td>
<td>{{ money(r.per_participant) }}</td>
<td class="text">{% for t, v in r.ranking %}{{ t }} {{ money(v) }}
{%- if not loop.last %}; {% endif %}{% endfor %}</td>
<td class="text">{% for t, why in r.excluded.items() %}{{ t }}: {{ why }}. {% endfor %}
{{- r.note or "" }}</td></tr>{% endfor %}
</tbody></table>
<table><thead><tr><th>at {{ c.world }} countries: criterion</th><th>best</th><th>figure</th>
</tr></thead><tbody>
{% for w in c.wins %}<tr><td>{{ w.criterion }}</td><td>{{ w.topology }}</td>
<td>{{ w.value }}</td></tr>{% endfor %}
</tbody></table>
{{ plots.cost }}
{{ plots.links }}

<h2>The topologies</h2>
<table><thead><tr><th>topology</th><th>what it is</th><th>cross-certificates</th>
<th>agreements</th></tr></thead><tbody>
{% for t in topology_rows %}<tr><td>{{ t[0] }}</td><td class="text">{{ t[1] }}</td>
<td>{{ t[2] }}</td><td>{{ t[3] }}</td></tr>{% endfor %}
</tbody></table>
<p class="note">Every number below is measured on real keys and certificates made with
trustbridge's CA code (<code>trustbridge.pki.ca</code>, <code>cross</code>) and signed trust
lists (<code>trustbridge.trust.lists</code>), and every identity is resolved with trustbridge's
resolver (<code>TrustResolver</code>) by a relying party of another country, fetching the
published <code>.p7c</code> bundles and CRLs from the deployment's artifacts (in memory: times
exclude network latency; fetch counts and bytes are given). The tests check the counts against
the closed forms at small sizes.</p>
{% for t in tables %}<h3>{{ t.title }}</h3>
<table><thead><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in t.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}
</tbody></table>{% if t.note %}<p class="note">{{ t.note }}</p>{% endif %}
{% endfor %}
{{ plots.resolution }}
{{ plots.robustness }}

<h2>Sampling</h2>
<table><thead><tr><th>countries</th><th>identities</th><th>resolved per topology</th><th></th>
</tr></thead><tbody>
{% for s in sampling %}<tr><td>{{ s[0] }}</td><td>{{ s[1] }}</td><td>{{ s[2] }}</td>
<td class="text">{{ s[3] }}</td></tr>{% endfor %}
</tbody></table>

<h2>Method</h2>
<ul>
<li>Determinism: every key is derived from the seed and its holder's name (a SHA-256 taken as
the P-256 scalar), serial numbers likewise, every signature is deterministic ECDSA (RFC 6979)
and everything is issued at a fixed time (2026-01-01T00:00:00Z): one seed gives byte-identical
certificates, CRLs and lists, hence identical structure, counts and bytes. Times vary with the
machine.</li>
<li>Caching, as the resolver does it: an answer is cached until the earliest of its path
certificates' expiry, the nextUpdate of the CRLs it used and the next_update of the lists and
LOTL it used (<code>TrustResolver._until</code>, <code>_cached</code>); without a cached answer
it builds the path anew (a fresh <code>PathBuilder</code> per resolution), fetching the AIA
bundles and the CRLs of every certificate of the path, and with revocation "require" a CRL it
cannot fetch fails the resolution. It checks CRLs only: OCSP counts only where a caller passes
responses (<code>ValidationParams.ocsps</code>). Lists are read ahead and refused once past
their next_update (<code>StaleListError</code>).</li>
<li>Event model (<code>trustbridge.sim.events</code>, a heap of timed events, seeded):
revocations at random times with CRLs and lists issued every interval at random phases (and at
once on a change where set), relying parties re-validating when their cached answer expires;
host failures and repairs (exponential, per host from the seed, the same in every topology)
and targeted outages, availability as the share of time a cold or a cached resolution
succeeds; recovery from a key compromise as tasks (ceremonies, re-pinning, re-issuing) with
triangular durations, each relationship restored when the tasks it needs are done.</li>
<li>Costs: <code>trustbridge.sim.costs.cost_breakdown</code>; the recommendation is the
cheapest topology per country that meets the requirements below, at each size.</li>
</ul>

<h2>Parameters</h2>
<table><thead><tr><th>parameter</th><th>value</th></tr></thead><tbody>
{% for k, v in parameters %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}
</tbody></table>
<p class="note">Every measurement is in results.csv (topology, countries, metric, value, unit,
note).</p>
</body></html>
"""


def render_html(
    result: SimulationResult,
    conclusions: Conclusions | None = None,
    *,
    svgs: dict[str, str] | None = None,
) -> str:
    """The self-contained HTML report of a run (``svgs``: the plots, if already drawn)."""
    results = result.results
    c = conclusions or conclude(results, result.model)
    currency = str(result.model.get("currency"))
    sizes = results.sizes()
    world = sizes[-1]
    svgs = svgs or {name: plot_svg(results, name, currency=currency) for name in PLOTS}
    # The SVG is matplotlib's drawing of our own figures and labels, not outside input.
    plots = {name: Markup(svg) for name, svg in svgs.items()}  # noqa: S704
    closed = [
        (
            t.value,
            t.description,
            {
                Topology.GLOBAL_ROOT: "0",
                Topology.MESH: "n(n-1)",
                Topology.HUB: "2n",
                Topology.BRIDGE_OF_BRIDGES: f"2n + 2⌈n/s⌉ (s = {result.options.region_size})",
                Topology.GROUP: "0; n lists + 1 LOTL",
                Topology.HYBRID: "2n; n lists + 1 LOTL",
            }[t],
            {
                Topology.GLOBAL_ROOT: "n",
                Topology.MESH: "n(n-1)/2",
                Topology.HUB: "n",
                Topology.BRIDGE_OF_BRIDGES: "n + ⌈n/s⌉",
                Topology.GROUP: "n",
                Topology.HYBRID: "n",
            }[t],
        )
        for t in result.options.topologies
    ]
    tables = [
        _metric_table(results, world, _STRUCTURE_ROWS, f"Structure at {world} countries"),
        _metric_table(
            results,
            world,
            _RP_ROWS,
            f"Relying parties at {world} countries",
            "Cold: a fresh resolver for a never-seen identity; warm: the same query answered "
            "from the resolver's cache.",
        ),
        _metric_table(
            results,
            world,
            _JOIN_ROWS,
            f"Adding country {world + 1} to {world}",
            "Measured by adding it: what was issued, re-published and agreed.",
        ),
        _metric_table(
            results,
            world,
            _EVENT_ROWS,
            f"Revocation and outages at {world} countries (event model)",
            f"Outages last {result.model.number('operations.outage_hours'):g} hours; "
            "availability is the share of that time a resolution (cold or cached, weighted by "
            "world.cold_fraction) succeeds.",
        ),
        _compromise_table(results, world),
        _cost_table(result, world),
    ]
    sampling = []
    for size in sizes:
        total = size * result.options.orgs_per_country
        try:
            taken = int(results.value("", size, "identities_sampled"))
        except KeyError:
            taken = total
        sampling.append(
            (
                size,
                total,
                taken,
                "a seeded sample, the same for every topology" if taken < total else "all",
            )
        )
    environment = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    template = environment.from_string(_TEMPLATE)
    return template.render(
        options=result.options,
        model=result.model,
        seconds=result.seconds,
        sizes=sizes,
        c=c,
        design_description=Topology(c.design).description,
        money=lambda v: money(v, currency),
        plots=plots,
        topology_rows=closed,
        tables=tables,
        sampling=sampling,
        parameters=result.model.flat(),
    )


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    csv: Path
    plots: tuple[Path, ...]


def write_outputs(result: SimulationResult, out: Path) -> ReportFiles:
    """Write ``out/report.html``, ``out/results.csv`` and ``out/img/sim-*.svg``."""
    try:
        (out / "img").mkdir(parents=True, exist_ok=True)
        csv_path = out / "results.csv"
        csv_path.write_text(result.results.to_csv(), encoding="utf-8")
        currency = str(result.model.get("currency"))
        svgs = {name: plot_svg(result.results, name, currency=currency) for name in PLOTS}
        plots = []
        for name, svg in svgs.items():
            path = out / "img" / f"sim-{name}.svg"
            path.write_text(svg + "\n", encoding="utf-8")
            plots.append(path)
        html_path = out / "report.html"
        html_path.write_text(render_html(result, svgs=svgs), encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot write the simulation's outputs to {out}: {exc.strerror}",
            hint="choose a folder you can write to with --out",
        ) from None
    return ReportFiles(html_path, csv_path, tuple(plots))
