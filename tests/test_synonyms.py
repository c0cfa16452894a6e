"""Platform names of the contract's columns, suggested when an export lacks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabtune.config import DataConfig
from tabtune.data.load import prepare_exports
from tabtune.data.synonyms import COLUMN_SYNONYMS, synonym_in
from tabtune.errors import ContractError


@pytest.mark.parametrize(
    ("column", "present", "expected"),
    [
        ("spend", ["Day", "Cost"], "Cost"),
        ("spend", ["Amount spent (USD)", "Reach"], "Amount spent (USD)"),
        ("date", ["Reporting starts", "Reporting ends"], "Reporting starts"),
        ("impressions", ["Impr."], "Impr."),
        ("revenue", ["Conv. value", "Conv. value / cost"], "Conv. value"),
        ("brand_id", ["Account name", "Account"], "Account name"),  # most specific first
        ("spend", ["Reach"], None),
        ("spend", ["Cost", "cost"], None),  # two candidates: no guess
    ],
)
def test_synonym_in(column: str, present: list[str], expected: str | None) -> None:
    assert synonym_in(column, present) == expected


def test_every_synonym_is_a_normalised_name() -> None:
    for names in COLUMN_SYNONYMS.values():
        assert all(n == n.strip().lower() and " " not in n for n in names)


def test_a_google_ads_style_export_is_told_its_mapping(tmp_path: Path) -> None:
    (tmp_path / "g.csv").write_text(
        "Day,Campaign,Network,Cost,Clicks,Impr.,Conversions,Conv. value\n"
        "2026-01-01,Summer,Search,12.5,10,100,1,30\n"
    )
    with pytest.raises(ContractError) as caught:
        prepare_exports([tmp_path / "g.csv"], DataConfig())
    message = str(caught.value)
    for fix in ("date: 'Day'", "channel: 'Network'", "spend: 'Cost'", "revenue: 'Conv. value'"):
        assert f"fix: data.columns.{fix}" in message

    # following the fixes (and a constant brand) loads the export
    columns = {
        "date": "Day",
        "channel": "Network",
        "spend": "Cost",
        "revenue": "Conv. value",
        "clicks": "Clicks",
        "conversions": "Conversions",
        "impressions": "Impr.",
        "campaign_id": "Campaign",
    }
    rows, _ = prepare_exports(
        [tmp_path / "g.csv"], DataConfig(columns=columns, constants={"brand_id": "acme"})
    )
    assert rows[["spend", "revenue", "impressions"]].iloc[0].tolist() == [12.5, 30.0, 100]


def test_facebooks_spent_column_is_named_for_spend() -> None:
    # the public Facebook export's "Spent" was not suggested for spend (new-user red-team)
    from tabtune.data.synonyms import synonym_in

    assert synonym_in("spend", ["Date", "ad_id", "Impressions", "Clicks", "Spent"]) == "Spent"
