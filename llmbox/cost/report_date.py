"""The date a report shows, taken from its inputs so identical input gives identical bytes.

Decision: ``SOURCE_DATE_EPOCH`` (the reproducible-builds.org convention) when it is set,
else the newest catalog as-of date the report's figures cite. The clock is never read.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

from llmbox.cost.provenance import Provenance
from llmbox.cost.report import Report

_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def catalog_dates(report: Report) -> list[str]:
    """The as-of dates (YYYY-MM-DD) the report's catalogued figures cite, oldest first."""
    details = [f.detail for c in report.options for f in (
        c.option.throughput, c.option.purchase, c.option.load_power, c.option.idle_power,
        c.option.hourly_low, c.option.hourly_high,
    ) if f is not None and f.provenance is Provenance.CATALOG]  # fmt: skip
    details += [a.source for a in report.apis]
    return sorted({d for text in details for d in _DATE.findall(text)})


def report_date(report: Report) -> tuple[str, str]:
    """(date, where it comes from). A date taken from the inputs, never the clock, so the
    same inputs give the same bytes: ``SOURCE_DATE_EPOCH`` (reproducible-builds.org) when
    set, else the newest catalog as-of date the report cites."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        when = datetime.fromtimestamp(int(epoch), tz=UTC).date().isoformat()
        return when, "SOURCE_DATE_EPOCH"
    dates = catalog_dates(report)
    if dates:
        return dates[-1], "the newest catalog date it cites; SOURCE_DATE_EPOCH sets another"
    return "undated", "no catalog date cited; SOURCE_DATE_EPOCH sets one"
