"""How money and token counts are written in every format.

Amounts of a dollar or more show cents; smaller amounts show three significant figures,
so a $/1M of 0.0206 is "$0.0206", not "$0.02" (cents would hide the difference).
"""

from __future__ import annotations

import math

SIGNIFICANT = 3


def usd(value: float) -> str:
    """E.g. "$1,428.00", "$83.20", "$0.850", "$0.0206", "-$3.10"."""
    sign, amount = ("-" if value < 0 else ""), abs(value)
    if amount >= 1 or amount == 0:
        return f"{sign}${amount:,.2f}"
    decimals = SIGNIFICANT - 1 - math.floor(math.log10(amount))
    return f"{sign}${amount:.{decimals}f}"


def usd_range(low: float, high: float) -> str:
    """ "$83.20-187.20", or one figure when low and high agree to the shown precision."""
    if usd(low) == usd(high):
        return usd(low)
    return f"{usd(low)}-{usd(high).removeprefix('$')}"


def tokens_text(tokens: float) -> str:
    """Millions of tokens, e.g. "97.8M"."""
    return f"{tokens / 1e6:,.1f}M"


def months_text(fraction: float | None) -> str:
    """A fractional break-even, e.g. "7.4 months"."""
    return "never" if fraction is None else f"{fraction:.1f} months"
