"""Rent or buy? The cost model: catalog, scenario, model, fit check and report.

Kept light on import (no matplotlib, no rich) so the Pulumi stack can price itself with
``from llmbox.cost import estimate_cloud``.
"""

from llmbox.cost.cloud_estimate import CloudEstimate, estimate_cloud

__all__ = ["CloudEstimate", "estimate_cloud"]
