"""Numbers as exports write them: data.thousands, data.currency and data.round
(tabtune.data.number_text), against Python's own formatting as the oracle."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tabtune.config import DataConfig, load_config
from tabtune.data.load import load_exports, prepare_exports
from tabtune.data.number_text import plain_numbers, suggested_format
from tabtune.data.store import CampaignStore
from tabtune.errors import ConfigError, ContractError


def _spend(values: list[object], **keys: object) -> list[object]:
    out, _ = plain_numbers(pd.DataFrame({"spend": values}), DataConfig(**keys))
    return out["spend"].tolist()


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e12, 1e12, allow_nan=False), st.sampled_from(["$", "EUR", "£"]))
def test_grouped_amounts_with_currency_read_as_python_wrote_them(x: float, sign: str) -> None:
    cents = round(x, 2)
    written = [f"{cents:,.2f}", f"{sign}{cents:,.2f}", f"{cents:,.2f} {sign}"]
    if cents < 0:  # a sign before the currency symbol, as most exports write it
        written.append(f"-{sign}{-cents:,.2f}")
    got = _spend(written, thousands=",", currency=[sign])
    assert got == [pytest.approx(cents, rel=1e-15, abs=1e-9)] * len(written)


@pytest.mark.parametrize(
    ("thousands", "text", "expected"),
    [
        (".", "1.234,50", 1234.5),
        (".", "12.345.678", 12345678.0),
        (" ", "1 234 567.25", 1234567.25),
        ("'", "1'234.5", 1234.5),
        (",", "999", 999.0),
        (",", "-1,000", -1000.0),
    ],
)
def test_each_separator(thousands: str, text: str, expected: float) -> None:
    assert _spend([text], thousands=thousands) == [expected]


@pytest.mark.parametrize("text", ["1,5", "12,34", "1,2345", ",123", "1,,234", "1.234,5"])
def test_values_that_are_not_whole_groups_are_left_for_the_contract(text: str) -> None:
    # "1,5" is a decimal comma or a typo, never fifteen: left as it is, so it is refused
    assert _spend([text], thousands=",") == [text]


def test_numbers_and_other_columns_are_untouched() -> None:
    df = pd.DataFrame({"spend": [1.5, 2.0], "channel": ["1,234", "$5"], "Cost": ["$1", "$2"]})
    out, notes = plain_numbers(df, DataConfig(thousands=",", currency=["$"]))
    pd.testing.assert_frame_equal(out, df)  # spend is numeric; the others are not mapped
    out, _ = plain_numbers(df, DataConfig(currency=["$"], columns={"spend": "Cost"}))
    assert out["Cost"].tolist() == [1.0, 2.0] and notes == []


def test_round_counts_the_rows_it_rounds() -> None:
    df = pd.DataFrame({"conversions": [2.33, 4.0, 0.67, "n/a"]})
    out, notes = plain_numbers(df, DataConfig(round=["conversions"]))
    assert out["conversions"].tolist() == [2.0, 4.0, 1.0, "n/a"]
    assert len(notes) == 1 and notes[0].startswith("2 row(s) of 'conversions'")


def test_suggestions() -> None:
    assert suggested_format(["$1,922.00", "$940.00"], "spend") == (
        "data.thousands: ',' and data.currency: ['$']"
    )
    assert suggested_format(["2,626", "1,174"], "impressions") == "data.thousands: ','"
    assert suggested_format(["12.50 EUR"], "spend") == "data.currency: ['EUR']"
    assert suggested_format(["abc", "1,234"], "spend") is None
    assert suggested_format(["3.4%"], "spend") is None


@pytest.mark.parametrize(
    "bad",
    [{"thousands": ";"}, {"currency": ["1"]}, {"currency": [""]}, {"round": ["spend"]}],
)
def test_bad_keys_are_refused_by_the_config(tmp_path: Path, bad: dict) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": bad}))
    with pytest.raises(ConfigError):
        load_config(path)


# ------------------------------------------------------------------ through tabtune load


def _export(formatted: bool) -> pd.DataFrame:
    spend = [1922.0, 7056.5, 940.0, 12345678.25]
    conversions = [2.33, 4.0, 1.5, 0.4]
    return pd.DataFrame(
        {
            "brand_id": "acme",
            "date": [f"2024-01-0{d}" for d in range(1, 5)],
            "channel": "search",
            "spend": [f"${v:,.2f}" for v in spend] if formatted else spend,
            "clicks": [10, 20, 30, 40],
            "conversions": conversions if formatted else [2, 4, 2, 0],
            "revenue": [f"{v:,.2f} $" for v in spend] if formatted else spend,
            "impressions": [f"{v:,}" for v in (1000, 2000, 3000, 40000)]
            if formatted
            else [1000, 2000, 3000, 40000],
        }
    )


def test_a_formatted_export_loads_as_its_plain_twin(tmp_path: Path) -> None:
    _export(True).to_csv(tmp_path / "formatted.csv", index=False)
    _export(False).to_csv(tmp_path / "plain.csv", index=False)
    keys = {"thousands": ",", "currency": ["$"], "round": ["conversions"]}

    summary = load_exports([tmp_path / "formatted.csv"], DataConfig(store=tmp_path / "a", **keys))
    load_exports([tmp_path / "plain.csv"], DataConfig(store=tmp_path / "b"))

    pd.testing.assert_frame_equal(
        CampaignStore(tmp_path / "a").read(), CampaignStore(tmp_path / "b").read()
    )
    assert any("3 row(s) of 'conversions' held fractions" in n for n in summary.notes)


def test_the_refusal_names_the_keys_not_skip(tmp_path: Path) -> None:
    _export(True).to_csv(tmp_path / "formatted.csv", index=False)

    with pytest.raises(ContractError) as caught:
        load_exports([tmp_path / "formatted.csv"], DataConfig(store=tmp_path / "s"))

    message = str(caught.value)
    assert "fix: data.thousands: ',' and data.currency: ['$']" in message
    assert "fix: data.thousands: ','" in message  # impressions
    assert "fix: data.round: ['conversions']" in message
    assert "invalid_rows: skip" not in message  # skipping would drop the largest amounts
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------ red-team findings


def test_dot_thousands_are_read_even_when_every_value_looks_like_a_decimal(tmp_path: Path) -> None:
    # "1.234" in every row: pandas alone would read spend 1.234, clicks 1, impressions 20
    (tmp_path / "eu.csv").write_text(
        "brand_id,date,channel,spend,clicks,conversions,revenue,impressions\n"
        "acme,2024-01-01,search,1.234,1.000,2,10,20.000\n"
    )
    rows, _ = prepare_exports([tmp_path / "eu.csv"], DataConfig(thousands="."))
    assert rows[["spend", "clicks", "impressions"]].iloc[0].tolist() == [1234.0, 1000, 20000]


def _refusal(tmp_path: Path, *rows: str) -> str:
    """The message refusing a CSV of the contract's columns with these rows (default config)."""
    (tmp_path / "x.csv").write_text(
        "brand_id,date,channel,spend,clicks,conversions,revenue\n" + "".join(rows)
    )
    with pytest.raises(ContractError) as caught:
        prepare_exports([tmp_path / "x.csv"], DataConfig())
    return str(caught.value)


def test_dot_grouped_whole_numbers_suggest_thousands_not_round(tmp_path: Path) -> None:
    message = _refusal(tmp_path, "acme,2024-01-01,search,5,1.500,2,10\n")
    assert "fix: data.thousands: '.'" in message and "data.round" not in message


@pytest.mark.parametrize("value", ["1,234.50-", "\u22125", "1.5K", "12.5k", "<5", "(1,234.50)"])
def test_no_suggestion_that_would_change_what_a_number_means(value: str) -> None:
    # a trailing or Unicode minus, a unit suffix, a threshold, an accounting negative
    assert suggested_format([value], "spend") is None


def test_suggestions_keep_what_the_config_already_sets() -> None:
    # "1,23" disagrees with the configured separator: never swap it for another
    assert suggested_format(["1,234", "1,23"], "spend", DataConfig(thousands=",")) is None
    assert suggested_format(["$5"], "spend", DataConfig(currency=["EUR"])) == (
        "data.currency: ['$', 'EUR']"
    )


@pytest.mark.parametrize("token", ["-", "+", "K", "<", "%", "1"])
def test_currency_tokens_that_would_change_a_number_are_refused(tmp_path: Path, token) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"currency": [token]}}))
    with pytest.raises(ConfigError, match="currency"):
        load_config(path)
    for fine in ("$", "R$", "USD", "kr", "Fr.", "\u20ac"):
        assert DataConfig(currency=[fine]).currency == [fine]


def test_round_leaves_negative_fractions_to_the_contract() -> None:
    out, notes = plain_numbers(
        pd.DataFrame({"conversions": [-0.4, 0.4]}), DataConfig(round=["conversions"])
    )
    assert out["conversions"].tolist() == [-0.4, 0.0] and notes[0].startswith("1 row(s)")


def test_a_brand_named_total_is_not_a_totals_line(tmp_path: Path) -> None:
    message = _refusal(
        tmp_path,
        'TotalEnergies,2024-01-01,search,"1,234.50",5,1,10\n',
        "TotalEnergies,2024-01-02,search,900.00,5,1,10\n",
    )
    assert "fix: data.thousands: ','" in message and "totals line" not in message


def test_with_a_dot_separator_a_dot_decimal_is_refused_not_read(tmp_path: Path) -> None:
    # the comma is the decimal mark with thousands ".": "12.34" is neither twelve nor 1234
    (tmp_path / "x.csv").write_text(
        "brand_id,date,channel,spend,clicks,conversions,revenue\n"
        "acme,2024-01-01,search,12.34,1,0,0\n"
    )
    with pytest.raises(ContractError, match="a dot that is not a thousands group"):
        prepare_exports([tmp_path / "x.csv"], DataConfig(thousands="."))


def test_plain_counts_keep_their_missing_tokens(tmp_path: Path) -> None:
    # counts are read as numbers (fast); "#N/A N/A" stays a missing value, as before
    (tmp_path / "x.csv").write_text(
        "brand_id,date,channel,spend,clicks,conversions,revenue,impressions\n"
        "acme,2024-01-01,search,1,1,0,0,#N/A N/A\n"
    )
    with pytest.raises(ContractError, match="'impressions': must not be missing"):
        prepare_exports([tmp_path / "x.csv"], DataConfig())


def test_the_suggestion_reads_every_refused_value_not_only_the_examples(tmp_path: Path) -> None:
    # the five examples shown have no separator; a later row does: one fix must read both
    rows = [f"acme,2024-01-0{d},search,$9{d}.00,1,0,0\n" for d in range(1, 7)]
    message = _refusal(tmp_path, *rows, 'acme,2024-01-07,search,"$1,922.00",1,0,0\n')
    assert "fix: data.thousands: ',' and data.currency: ['$']" in message


def test_several_currency_symbols_in_a_brands_amounts_are_noted() -> None:
    """``currency: ["$", "€", "¥"]`` stripped $100, €100 and ¥10000 of one brand and added
    them up as one unit, without a word (exports red-team); "$" and "USD" are one currency."""
    data = DataConfig(currency=["$", "USD", "€", "¥"])
    mixed = pd.DataFrame({"brand_id": ["a", "a", "a"], "spend": ["$100", "€100", "¥10000"]})
    plain, notes = plain_numbers(mixed, data)
    assert plain["spend"].tolist() == [100.0, 100.0, 10000.0]
    assert notes == [
        "column 'spend': brand(s) a hold amounts in several currencies (EUR, JPY, USD; "
        "data.currency strips every one), added up as one; convert them to one currency "
        "before loading"
    ]
    one = pd.DataFrame({"brand_id": ["a", "a", "b"], "spend": ["$1", "2 USD", "€3"]})
    assert "the brands' amounts are in 2 currencies (EUR, USD)" in plain_numbers(one, data)[1][0]
    same = pd.DataFrame({"brand_id": ["a", "b"], "spend": ["$1", "2 USD"]})
    assert plain_numbers(same, data)[1] == []


def test_indian_grouping_and_the_typographic_apostrophe_read() -> None:
    """``₹1,23,456.78`` (lakhs) and Swiss ``1’234.50`` were refused with skip as the only fix,
    which dropped the largest amounts (exports red-team)."""
    frame = pd.DataFrame({"spend": ["₹1,23,456.78", "12,34,567", "1,234.5", "₹500", "1,2345"]})
    plain, _ = plain_numbers(frame, DataConfig(thousands=",", currency=["₹"]))
    assert plain["spend"].tolist() == [123456.78, 1234567.0, 1234.5, 500.0, "1,2345"]
    assert suggested_format(["₹1,23,456.78"], "spend") == (
        "data.thousands: ',' and data.currency: ['₹']"
    )
    swiss = pd.DataFrame({"spend": ["1\u2019234.50", "1'234.5", "12\u201934"]})
    plain, _ = plain_numbers(swiss, DataConfig(thousands="'"))
    assert plain["spend"].tolist() == [1234.5, 1234.5, "12\u201934"]


@pytest.mark.parametrize(("thousands", "text"), [(",", "0,123"), (".", "0.500"), (",", "0,12,345")])
def test_a_leading_zero_is_no_thousands_group(thousands: str, text: str) -> None:
    # '0,123' read as 123 (and '0.500' as 500): no writer groups a number that starts with 0;
    # left for the contract to refuse, not stored as a thousand times the value
    assert all(isinstance(v, str) for v in _spend([text], thousands=thousands))
    assert _spend(["10,123"], thousands=",") == [10123]  # a zero inside a group still reads


def test_round_leaves_dot_grouped_counts_to_the_thousands_fix(tmp_path: Path) -> None:
    # round: [conversions] read '1.500' (one thousand five hundred, dot-grouped) as 1.5 and
    # stored 2, noted only as a rounded fraction; without round the refusal names the fix
    grouped = ["1.500", "2.000", "1.250", "980"]  # 980: a whole amount under a thousand
    out, notes = plain_numbers(
        pd.DataFrame({"conversions": grouped}), DataConfig(round=["conversions"])
    )
    assert out["conversions"].tolist() == grouped and notes == []
    (tmp_path / "x.csv").write_text(
        "brand_id,date,channel,spend,clicks,conversions,revenue\n"
        "acme,2024-01-01,search,5,9000,1.500,10\nacme,2024-01-02,search,5,9000,980,10\n"
    )
    with pytest.raises(ContractError, match=r"fix: data.thousands: '\.'"):
        prepare_exports([tmp_path / "x.csv"], DataConfig(round=["conversions"]))
    # real fractions are still rounded, three decimals too (review: 1.333 was refused)
    for fractions in (["1.5", "2.25"], ["1.333", "2.500", "1.000"]):
        out, notes = plain_numbers(
            pd.DataFrame({"conversions": fractions}), DataConfig(round=["conversions"])
        )
        assert out["conversions"].tolist()[:2] == [1.0 if "1.333" in fractions else 2.0, 2.0]
        assert len(notes) == 1
