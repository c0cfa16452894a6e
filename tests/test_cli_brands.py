"""Which brands a command covers (tabtune.cli.brands)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabtune.cli.brands import select_brands, split_brands
from tabtune.data.store import CampaignStore
from tabtune.errors import TabTuneInputError


@pytest.fixture
def store(tmp_path: Path) -> CampaignStore:
    store = CampaignStore(tmp_path / "store")
    rows = [
        {"brand_id": b, "date": pd.Timestamp("2024-01-01"), "channel": "search", "spend": 1.0,
         "clicks": 1, "conversions": 0, "revenue": 0.0}
        for b in ("Acme, Inc.", "Acme", "globex")
    ]  # fmt: skip
    store.append(pd.DataFrame(rows))
    return store


def test_split_brands() -> None:
    assert split_brands(" a, b,") == ["a", "b"]
    assert split_brands("b,a,b") == ["b", "a"]  # a brand named twice is decided once
    assert split_brands(None) is None  # the option not given: every brand
    for empty in ("", ",", " , "):  # given, naming none (an empty shell variable): refused
        with pytest.raises(TabTuneInputError, match="names no brand"):
            split_brands(empty)


def test_a_brand_id_holding_a_comma_is_selected_whole(store: CampaignStore) -> None:
    assert select_brands(store, "Acme, Inc.") == ["Acme, Inc."]
    assert select_brands(store, " Acme, Inc. ") == ["Acme, Inc."]
    assert select_brands(store, "Acme,globex") == ["Acme", "globex"]
    assert sorted(select_brands(store, None)) == ["Acme", "Acme, Inc.", "globex"]
    with pytest.raises(TabTuneInputError, match=r"unknown brand\(s\) \['Inc.'\]"):
        select_brands(store, "Acme, Inc., globex")
