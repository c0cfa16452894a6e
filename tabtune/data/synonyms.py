"""The names ad platforms give the contract's columns in their exports, for suggestions.

When an export lacks a contract column, ``tabtune load`` looks among the export's columns for
the name platforms commonly give it (Google Ads ``Cost``, ``Impr.``, ``Conv. value``; Meta
``Amount spent (USD)``, ``Reporting starts``; ...) and names it in the fix, as
``data.columns.spend: 'Cost'``. It is a suggestion only: nothing is mapped without the config
saying so, since only the user knows that ``Conversions`` means the conversions they value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["COLUMN_SYNONYMS", "normalised_name", "synonym_in"]

#: Contract column -> export names (lower case, spaces and dashes as ``_``), most specific first.
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "brand_id": (
        "account_name",
        "account",
        "advertiser_name",
        "advertiser",
        "customer_name",
        "client_name",
        "client",
        "brand_name",
        "brand",
        "account_id",
        "advertiser_id",
    ),
    "date": ("day", "reporting_starts", "report_date", "stats_date", "date_start", "date"),
    "channel": ("network", "publisher_platform", "platform", "ad_network", "channel"),
    "spend": ("cost", "amount_spent", "spend", "media_cost", "total_cost", "spent"),
    "clicks": ("clicks", "link_clicks", "clicks_(all)"),
    "conversions": ("conversions", "conv.", "results", "purchases", "total_conversions"),
    "revenue": (
        "conv._value",
        "conversion_value",
        "purchases_conversion_value",
        "total_conv._value",
        "revenue",
        "sales",
    ),
    "impressions": ("impr.", "impressions", "impr"),
    "campaign_id": ("campaign_id", "campaign_name", "campaign"),
    "bid": ("max._cpc", "max_cpc", "default_max._cpc", "bid"),
    "device": ("device",),
    "audience": ("audience", "audience_segment"),
}


def normalised_name(name: str) -> str:
    """A column name compared loosely: lower case, runs of spaces, ``_`` and ``-`` as ``_``."""
    return re.sub(r"[\s_\-]+", "_", str(name).strip().lower())


def synonym_in(column: str, present: Sequence[str]) -> str | None:
    """The one export column of ``present`` named as platforms name ``column`` (a currency
    or unit in parentheses after it allowed: ``Amount spent (USD)``); None when there is no
    such column, or more than one."""
    for synonym in COLUMN_SYNONYMS.get(column, ()):
        found = [
            name
            for name in present
            if normalised_name(name) == synonym or normalised_name(name).startswith(synonym + "_(")
        ]
        if len(found) == 1:
            return found[0]
        if found:
            return None
    return None
