"""Numbers as ad platforms write them in exports: thousands separators, currency and
fractional conversions, made plain before the contract reads them.

Three declarative keys of the config's ``data:`` section (:class:`tabtune.config.DataConfig`),
applied to the export columns mapped to the contract's numeric columns (``spend``, ``clicks``,
``conversions``, ``revenue``, ``bid``, ``impressions``), after ``rename``/``drop``/``constants``
and before ``scale``:

* ``thousands: ","`` (or ``"."``, ``" "``, ``"'"``): ``1,234.50`` reads as ``1234.5``. A value is
  read only when its groups are whole thousands (``12,345,678``), so ``1,5`` is never taken for
  15; with ``"."`` the decimal mark is the comma (``1.234,50``).
* ``currency: ["$", "USD"]``: symbols or codes written before or after amounts
  (``$1,234.50``, ``-$3``, ``1234.50 USD``) are removed.
* ``round: [conversions]``: whole-number columns whose export holds fractions (data-driven
  attribution credits 2.33 conversions) are rounded to the nearest whole number, and the load
  says how many rows were.

A value that still does not read as a number is left as it is, so the contract refuses it,
naming the column, instead of losing it. :func:`suggested_format` looks at values the contract
refused as numbers and says which of these keys would read them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - the config imports the data layer, not the reverse
    from tabtune.config import DataConfig

__all__ = ["NUMERIC_COLUMNS", "plain_numbers", "suggested_format"]

#: The contract's numeric columns (the only ones these keys touch).
NUMERIC_COLUMNS: tuple[str, ...] = (
    "spend",
    "clicks",
    "conversions",
    "revenue",
    "bid",
    "impressions",
)

# Currency signs (Unicode category Sc) and ISO codes, for the suggestion only.
_CURRENCY_HINT = re.compile(r"^\s*[-+]?\s*([^\d\s.,+-]{1,3})|([^\d\s.,%]{1,3})\s*$")


def _number_pattern(thousands: str) -> re.Pattern[str]:
    """A number whose groups are separated by ``thousands`` (optional), with the decimal mark
    the separator implies."""
    sep, dec = re.escape(thousands), ("," if thousands == "." else r"\.")
    return re.compile(rf"^([-+]?)(\d{{1,3}}(?:{sep}\d{{3}})+|\d+)({dec}\d+)?$")


def _strip_currency(text: pd.Series, currency: Sequence[str]) -> pd.Series:
    """``text`` without the currency tokens at its start (after a sign) or end."""
    tokens = "|".join(re.escape(c) for c in sorted(currency, key=len, reverse=True))
    text = text.str.replace(rf"^([-+]?)\s*(?:{tokens})\s*", r"\1", regex=True)
    return text.str.replace(rf"\s*(?:{tokens})$", "", regex=True)


def _with_thousands(text: pd.Series, thousands: str) -> pd.Series:
    """``text`` with grouped numbers written plain; other values unchanged."""
    parts = text.str.extract(_number_pattern(thousands))
    matched = parts[1].notna()
    plain = parts[0].fillna("") + parts[1].fillna("").str.replace(thousands, "", regex=False)
    plain = plain + parts[2].fillna("").str.replace(",", ".", regex=False)
    return text.where(~matched, plain)


def plain_numbers(df: pd.DataFrame, data: DataConfig) -> tuple[pd.DataFrame, list[str]]:
    """The export with its numeric columns' text made plain (``thousands``, ``currency``) and
    the ``round`` columns rounded; notes on what was rounded. ``df`` is not modified.

    Parameters
    ----------
    df : pandas.DataFrame
        The export after rename, drop and constants (its own column names).
    data : DataConfig
        The config's ``data:`` section.

    Returns
    -------
    (pandas.DataFrame, list of str)
    """
    if data.thousands is None and not data.currency and not data.round:
        return df, []
    out = df.copy()
    notes: list[str] = []
    for name in NUMERIC_COLUMNS:
        column = data.columns.get(name, name)
        if column not in out.columns or isinstance(out[column], pd.DataFrame):
            continue
        values = out[column]
        if (data.thousands is not None or data.currency) and not pd.api.types.is_numeric_dtype(
            values.dtype
        ):
            text = values.astype("string").str.strip()
            if data.currency:
                text = _strip_currency(text, data.currency)
            if data.thousands is not None:
                text = _with_thousands(text, data.thousands)
            numbers = pd.to_numeric(text, errors="coerce")
            readable = numbers.notna()
            values = values.astype(object).where(~readable.to_numpy(), numbers.astype(object))
            out[column] = values
        if name in data.round:
            numbers = pd.to_numeric(out[column], errors="coerce")
            fractional = numbers.notna() & (numbers != np.round(numbers))
            if fractional.any():
                rounded = out[column].astype(object).copy()
                rounded[fractional] = np.round(numbers[fractional])
                out[column] = rounded
                notes.append(
                    f"{int(fractional.sum()):,} row(s) of {name!r} held fractions (e.g. "
                    f"{numbers[fractional].iloc[0]:g}): rounded to the nearest whole number "
                    "(data.round)"
                )
    return out, notes


def suggested_format(values: Sequence[object], column: str) -> str | None:
    """The ``data:`` keys that would read ``values`` (refused as numbers of ``column``) as
    numbers: ``thousands`` and/or ``currency``; None when neither would."""
    texts = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if not texts:
        return None
    currency: set[str] = set()
    for text in texts:
        found = _CURRENCY_HINT.search(text)
        if found:
            currency.add((found.group(1) or found.group(2)).strip())
    keys = []
    if currency:
        stripped = _strip_currency(pd.Series(texts, dtype="string"), sorted(currency))
    else:
        stripped = pd.Series(texts, dtype="string")
    for sep in (",", ".", " ", "'"):
        plain = _with_thousands(stripped, sep)
        if pd.to_numeric(plain, errors="coerce").notna().all():
            if (plain != stripped).any():
                keys.append(f"data.thousands: {sep!r}")
            break
    else:
        return None
    if currency:
        keys.append(f"data.currency: {sorted(currency)}")
    return " and ".join(keys) if keys else None
