"""Hosted APIs as options: inline in ``options:`` (``kind: api``) or catalog names in ``apis:``."""

from __future__ import annotations

from dataclasses import dataclass

from llmbox.cost.catalog import Catalog
from llmbox.cost.provenance import Figure, Provenance
from llmbox.cost.scenario import OptionKind, Scenario


@dataclass(frozen=True)
class ResolvedApi:
    """A hosted API's prices in US dollars per 1M input (prompt) and output tokens."""

    name: str
    input_usd_per_mtok: Figure
    output_usd_per_mtok: Figure

    @property
    def source(self) -> str:
        return self.output_usd_per_mtok.label


def resolve_apis(scenario: Scenario, catalog: Catalog, taken: set[str]) -> list[ResolvedApi]:
    """Inline APIs (in option order), then the catalog's ``apis:``; ``taken`` holds the
    names already used by boxes. ``ValueError`` names the entry and what is wrong."""
    found: list[ResolvedApi] = []
    names = set(taken)
    for index, spec in enumerate(scenario.options):
        if spec.kind is not OptionKind.API:
            continue
        assert spec.input_usd_per_mtok is not None and spec.output_usd_per_mtok is not None
        detail = "input_usd_per_mtok / output_usd_per_mtok in scenario"
        api = ResolvedApi(
            str(spec.name),
            Figure(spec.input_usd_per_mtok, Provenance.SCENARIO, detail),
            Figure(spec.output_usd_per_mtok, Provenance.SCENARIO, detail),
        )
        _add(api, found, names, f"options[{index}]")
    for index, name in enumerate(scenario.apis):
        try:
            row = catalog.api(name)
        except ValueError as error:
            raise ValueError(f"apis[{index}]: {error}") from None
        source = f"{row.source}, {row.as_of}"
        api = ResolvedApi(
            row.name,
            Figure(row.input_usd_per_1k_tokens * 1000, Provenance.CATALOG, source),
            Figure(row.output_usd_per_1k_tokens * 1000, Provenance.CATALOG, source),
        )
        _add(api, found, names, f"apis[{index}]")
    return found


def _add(api: ResolvedApi, found: list[ResolvedApi], names: set[str], where: str) -> None:
    if api.name in names:
        raise ValueError(
            f"{where}: the name {api.name!r} is already used by another option; "
            "give this one a distinct 'name'"
        )
    names.add(api.name)
    found.append(api)
