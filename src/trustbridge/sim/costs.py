"""The parameters of a simulation (``costs.yaml``) and the operational cost model.

The shipped ``costs.yaml`` holds every parameter; a file given with ``--costs`` overrides the
keys it names (checked against the same schema: an unknown key, a wrong type or a bad bound is
an error that names the file, the JSON path and the line). :func:`cost_breakdown` turns the
measurements of one topology and size into annual costs per component, and :func:`recommend`
picks, for every size, the cheapest topology that meets the requirements.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from trustbridge._yamldoc import DocumentError, line_of, load, read_text

__all__ = [
    "CostBreakdown",
    "CostFileError",
    "CostModel",
    "Recommendation",
    "cost_breakdown",
    "joining_cost",
    "recommend",
]

MAX_COST_FILE_BYTES = 64 * 1024
_HOURS_PER_YEAR = 8760.0


class CostFileError(DocumentError):
    """A parameters file that cannot be read, is not YAML, or violates the schema."""


def _number(
    minimum: float = 0, *, exclusive: bool = False, maximum: float | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    schema["exclusiveMinimum" if exclusive else "minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _section(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties}


_POSITIVE = _number(0, exclusive=True)
_MONEY = _number(0)
_SPAN = {"type": "array", "items": _number(0), "minItems": 3, "maxItems": 3}

#: The schema of a parameters file; every key is optional (the shipped file has them all).
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "currency": {"type": "string", "minLength": 1, "maxLength": 8},
        "amortization_years": _POSITIVE,
        "world": _section(
            identities_per_country=_POSITIVE,
            relying_parties_per_country=_POSITIVE,
            resolutions_per_relying_party_per_day=_POSITIVE,
            cold_fraction=_number(0, maximum=1),
        ),
        "agreement": _section(negotiation=_MONEY, maintenance_per_year=_MONEY),
        "audit": _section(ca_per_year=_MONEY, list_operator_per_year=_MONEY),
        "key_ceremony": _section(
            cost=_MONEY,
            rollover_years=_POSITIVE,
            link_renewal_years=_POSITIVE,
            per_link_certificate=_MONEY,
            duration_days=_SPAN,
        ),
        "publication": _section(per_artifact_per_year=_MONEY, per_signing=_MONEY),
        "harmonisation": _section(per_country=_MONEY, reissue_per_identity=_MONEY),
        "relying_party": _section(
            per_anchor_update=_MONEY, per_gb_fetched=_MONEY, per_failed_resolution=_MONEY
        ),
        "risk": _section(
            compromise_per_key_year=_number(0, maximum=1),
            per_relationship_day=_MONEY,
            reissue_per_identity=_MONEY,
            detection_hours=_MONEY,
            anchor_update_days=_SPAN,
            reissue_days=_SPAN,
        ),
        "operations": _section(
            crl_interval_hours=_POSITIVE,
            crl_validity_hours=_POSITIVE,
            crl_reissue_on_change={"type": "boolean"},
            ocsp_validity_hours=_POSITIVE,
            list_interval_hours=_POSITIVE,
            list_validity_hours=_POSITIVE,
            list_reissue_on_change={"type": "boolean"},
            host_mtbf_days=_POSITIVE,
            host_mttr_hours=_POSITIVE,
            outage_hours=_POSITIVE,
            horizon_days=_number(1),
        ),
        "requirements": _section(
            max_path_length=_number(2),
            min_availability=_number(0, maximum=1),
            require_service_recognition={"type": "boolean"},
        ),
    },
}


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _shipped_text() -> str:
    return (resources.files("trustbridge.sim") / "costs.yaml").read_text(encoding="utf-8")


def _problem(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """(JSON path, what is wrong) for parameters that violate the schema or contradict each
    other; None where they are fine."""
    violation = jsonschema.exceptions.best_match(_validator().iter_errors(values))
    if violation is not None:
        return violation.json_path, f"violates the parameters schema: {violation.message}"
    for section, key in (
        ("key_ceremony", "duration_days"),
        ("risk", "anchor_update_days"),
        ("risk", "reissue_days"),
    ):
        low, mode, high = values[section][key]
        if not low <= mode <= high:
            return (
                f"$.{section}.{key}",
                f"must be [minimum, most likely, maximum] in that order, not {[low, mode, high]}",
            )
    for kind in ("crl", "list"):
        interval = values["operations"][f"{kind}_interval_hours"]
        validity = values["operations"][f"{kind}_validity_hours"]
        if interval > validity:
            return (
                f"$.operations.{kind}_interval_hours",
                f"{kind}_interval_hours ({interval:g}) must not exceed {kind}_validity_hours "
                f"({validity:g}): relying parties would find no valid one between issues",
            )
    return None


@dataclass(frozen=True)
class CostModel:
    """Every parameter of a simulation, as a nested mapping checked against :data:`SCHEMA`.

    Read values with :meth:`get` (``model.get("agreement.negotiation")``); make a changed
    model with :meth:`with_values`.
    """

    values: Mapping[str, Any]
    #: Where the overrides came from ("shipped defaults" or a file name).
    source: str = "shipped defaults"

    def __post_init__(self) -> None:
        problem = _problem(self.values)
        if problem is not None:
            json_path, message = problem
            raise CostFileError(self.source, message, json_path=json_path)

    @classmethod
    def default(cls) -> CostModel:
        """The shipped parameters."""
        return _default()

    @classmethod
    def load(cls, path: Path) -> CostModel:
        """The shipped parameters with those of ``path`` over them."""
        source = str(path)
        text = read_text(path, source, MAX_COST_FILE_BYTES, CostFileError)
        return cls.parse(text, source=source)

    @classmethod
    def parse(cls, text: str, *, source: str) -> CostModel:
        data = load(text, source, _validator(), CostFileError, what="parameters")
        if data is None:
            data = {}
        if not isinstance(data, dict):  # pragma: no cover - the schema wants an object
            raise CostFileError(source, "is not a mapping of parameters")
        merged = _merge(dict(_default().values), data)
        problem = _problem(merged)
        if problem is not None:
            json_path, message = problem
            steps = [p for p in json_path.removeprefix("$").split(".") if p]
            raise CostFileError(source, message, json_path=json_path, line=line_of(text, steps))
        return cls(merged, source=source)

    def get(self, dotted: str) -> Any:
        """The value at a dotted path such as ``agreement.negotiation``."""
        value: Any = self.values
        for part in dotted.split("."):
            value = value[part]
        return value

    def number(self, dotted: str) -> float:
        return float(self.get(dotted))

    def with_values(self, changes: Mapping[str, Any]) -> CostModel:
        """A model with ``changes`` (dotted paths to values) applied."""
        nested: dict[str, Any] = {}
        for dotted, value in changes.items():
            *parents, last = dotted.split(".")
            target = nested
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = value
        return CostModel(_merge(dict(self.values), nested), source=f"{self.source} (changed)")

    def flat(self) -> list[tuple[str, Any]]:
        """Every parameter as (dotted path, value), in file order."""
        out: list[tuple[str, Any]] = []

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, Mapping):
                for key, inner in value.items():
                    walk(f"{prefix}.{key}" if prefix else key, inner)
            else:
                out.append((prefix, value))

        walk("", self.values)
        return out


@functools.cache
def _default() -> CostModel:
    text = _shipped_text()
    data = load(text, "costs.yaml (shipped)", _validator(), CostFileError, what="parameters")
    return CostModel(data)


# -- the cost model ---------------------------------------------------------------------------


class _Lookup:
    """Reads one topology's and size's measurements (``metric -> value``)."""

    def __init__(self, values: Mapping[str, float], *, topology: str, countries: int) -> None:
        self.values = values
        self.topology = topology
        self.countries = countries

    def __call__(self, metric: str, default: float | None = None) -> float:
        value = self.values.get(metric, default)
        if value is None:
            raise KeyError(f"{self.topology} at {self.countries} countries: no {metric}")
        return value


#: The compromise classes a topology's risk is summed over (``compromise_<class>_*`` metrics).
COMPROMISE_CLASSES = ("tsp", "root", "central", "regional", "list-signer", "lotl-signer")


@dataclass(frozen=True)
class CostBreakdown:
    """Annual costs of one topology at one size, by component."""

    topology: str
    countries: int
    components: Mapping[str, float]
    currency: str

    @property
    def total(self) -> float:
        return sum(self.components.values())

    @property
    def per_participant(self) -> float:
        return self.total / self.countries


def cost_breakdown(
    values: Mapping[str, float], model: CostModel, *, topology: str, countries: int
) -> CostBreakdown:
    """The annual cost of ``topology`` at ``countries`` countries from its measurements.

    Components (all per year; one-time costs divided by ``amortization_years``):

    - agreements: agreements x (negotiation / amortization + maintenance);
    - audits: CAs x ca_per_year + list operators x list_operator_per_year;
    - key ceremonies: offline keys / rollover_years x cost, plus per renewal of the link
      certificates (every link_renewal_years) one ceremony per issuing CA and
      per_link_certificate per certificate;
    - publication: published URLs x per_artifact_per_year + CRL and list issuances x per_signing;
    - relying parties: bytes fetched (cold resolutions, list refreshes) x per_gb_fetched;
    - migration (global-root): countries x per_country + identities x reissue_per_identity,
      one-time;
    - compromise risk: per compromise class, keys x compromise_per_key_year x (re-keying cost
      + relationship-days lost x per_relationship_day);
    - outages: failed resolutions under random host failures x per_failed_resolution.
    """
    m = _Lookup(values, topology=topology, countries=countries)
    n = countries
    years = model.number("amortization_years")
    rps = n * model.number("world.relying_parties_per_country")
    resolutions = rps * model.number("world.resolutions_per_relying_party_per_day") * 365
    identities = model.number("world.identities_per_country")
    ceremony = model.number("key_ceremony.cost")
    renewal = model.number("key_ceremony.link_renewal_years")
    per_link = model.number("key_ceremony.per_link_certificate")
    signings = m("crl_issuers") * _HOURS_PER_YEAR / model.number("operations.crl_interval_hours")
    signings += m("signed_lists") * _HOURS_PER_YEAR / model.number("operations.list_interval_hours")
    fetched_bytes = (
        resolutions * model.number("world.cold_fraction") * m("rp_fetch_bytes_per_resolution")
    )
    fetched_bytes += (
        rps * m("rp_list_bytes") * _HOURS_PER_YEAR / model.number("operations.list_interval_hours")
    )
    components = {
        "agreements": m("agreements")
        * (
            model.number("agreement.negotiation") / years
            + model.number("agreement.maintenance_per_year")
        ),
        "audits": m("cas") * model.number("audit.ca_per_year")
        + m("list_operators") * model.number("audit.list_operator_per_year"),
        "key ceremonies": m("offline_keys") / model.number("key_ceremony.rollover_years") * ceremony
        + m("link_issuers") / renewal * ceremony
        + m("link_certificates") / renewal * per_link,
        "publication": m("published_artifacts") * model.number("publication.per_artifact_per_year")
        + signings * model.number("publication.per_signing"),
        "relying parties": fetched_bytes / 1e9 * model.number("relying_party.per_gb_fetched"),
        "migration": (
            n * model.number("harmonisation.per_country")
            + n * identities * model.number("harmonisation.reissue_per_identity")
        )
        / years
        if m("migration", 0.0)
        else 0.0,
        "compromise risk": sum(
            _risk(m, model, kind, identities=identities, rps_per_country=rps / n)
            for kind in COMPROMISE_CLASSES
        ),
        "outages": (1 - m("availability_random"))
        * resolutions
        * model.number("relying_party.per_failed_resolution"),
    }
    return CostBreakdown(topology, countries, components, str(model.get("currency")))


def joining_cost(values: Mapping[str, float], model: CostModel) -> float:
    """One-time cost of one more country joining, from the measured ``add_country_*`` figures:
    its new agreements, the link certificates issued for it (one ceremony per CA that issued
    some, and per-certificate handling), and for global-root its migration."""
    agreements = values.get("add_country_agreements", 0.0)
    links = values.get("add_country_cross_certificates", 0.0)
    if values.get("migration", 0.0):
        links += 1  # the global root certifies the new national CA
    ceremonies = values.get("add_country_hosts_publishing", 0.0) if links else 0.0
    migration = 0.0
    if values.get("migration", 0.0):
        migration = model.number("harmonisation.per_country") + model.number(
            "world.identities_per_country"
        ) * model.number("harmonisation.reissue_per_identity")
    return (
        agreements * model.number("agreement.negotiation")
        + links * model.number("key_ceremony.per_link_certificate")
        + ceremonies * model.number("key_ceremony.cost")
        + migration
    )


def _risk(
    m: _Lookup, model: CostModel, kind: str, *, identities: float, rps_per_country: float
) -> float:
    keys = m(f"compromise_{kind}_keys", 0.0)
    if not keys:
        return 0.0
    rekey = (
        m(f"compromise_{kind}_ceremonies") * model.number("key_ceremony.cost")
        + m(f"compromise_{kind}_link_certificates")
        * model.number("key_ceremony.per_link_certificate")
        + m(f"compromise_{kind}_identity_share")
        * identities
        * model.number("risk.reissue_per_identity")
        + m(f"compromise_{kind}_anchor_updates")
        * rps_per_country
        * model.number("relying_party.per_anchor_update")
    )
    outage = m(f"compromise_{kind}_relationship_days") * model.number("risk.per_relationship_day")
    return keys * model.number("risk.compromise_per_key_year") * (rekey + outage)


@dataclass(frozen=True)
class Recommendation:
    """The recommended topology for one size, and why."""

    countries: int
    topology: str
    per_participant: float
    #: Every topology's cost per participant at this size, cheapest first.
    ranking: tuple[tuple[str, float], ...]
    #: Topologies left out, with the requirement they miss.
    excluded: Mapping[str, str]
    #: Set when no topology met the requirements (the cheapest is recommended anyway).
    note: str | None = None


def requirement_misses(values: Mapping[str, float], model: CostModel) -> str | None:
    """The first requirement a topology's measurements miss, in words, or None."""
    longest = values.get("path_length_max", 0.0)
    if longest > model.number("requirements.max_path_length"):
        return (
            f"paths of {longest:g} certificates exceed requirements.max_path_length "
            f"{model.number('requirements.max_path_length'):g}"
        )
    availability = values.get("availability_random", 1.0)
    if availability < model.number("requirements.min_availability"):
        return (
            f"availability {availability:.5f} under random host failures is below "
            f"requirements.min_availability {model.number('requirements.min_availability'):g}"
        )
    if model.get("requirements.require_service_recognition") and not values.get(
        "service_recognition", 0.0
    ):
        return (
            "recognizes no trust services by signed lists "
            "(requirements.require_service_recognition)"
        )
    return None


def recommend(
    table: Mapping[tuple[str, int], Mapping[str, float]], model: CostModel
) -> list[Recommendation]:
    """For every size in ``table`` ((topology, countries) -> metric -> value): the cheapest
    topology per participant among those that meet the requirements."""
    sizes = sorted({n for _, n in table})
    out: list[Recommendation] = []
    for n in sizes:
        costs = {
            t: cost_breakdown(values, model, topology=t, countries=n).per_participant
            for (t, size), values in table.items()
            if size == n
        }
        ranking = tuple(sorted(costs.items(), key=lambda item: (item[1], item[0])))
        excluded = {
            t: miss
            for (t, size), values in table.items()
            if size == n and (miss := requirement_misses(values, model)) is not None
        }
        eligible = [(t, c) for t, c in ranking if t not in excluded]
        note = None
        if not eligible:
            eligible = list(ranking)
            note = "no topology meets every requirement; the cheapest is named"
        best, cost = eligible[0]
        if math.isnan(cost):  # pragma: no cover - measurements are finite
            raise ValueError(f"cost of {best} at {n} countries is not a number")
        out.append(Recommendation(n, best, cost, ranking, excluded, note))
    return out
