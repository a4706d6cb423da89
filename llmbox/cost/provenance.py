"""Every number in a report says where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Provenance(StrEnum):
    """Where a figure comes from, in the order the report prefers them."""

    MEASURED = "measured"  # a bench result JSON file from `llmbox bench`
    SCENARIO = "scenario"  # typed into the scenario YAML by its author
    CATALOG = "catalog"  # a catalog row, with its source
    ESTIMATED = "estimated"  # derived by a stated rule from other figures


@dataclass(frozen=True)
class Figure:
    """A number with its provenance and a short human explanation of it."""

    value: float
    provenance: Provenance
    detail: str

    @property
    def label(self) -> str:
        """E.g. "catalog (skypilot-catalog vms.csv, 2024-11-01)"."""
        return f"{self.provenance.value} ({self.detail})" if self.detail else self.provenance.value
