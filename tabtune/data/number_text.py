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
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tabtune.data.contract import CONTRACT_COLUMNS

if TYPE_CHECKING:  # pragma: no cover - the config imports the data layer, not the reverse
    from tabtune.config import DataConfig

__all__ = [
    "dot_grouped_amounts",
    "NUMERIC_COLUMNS",
    "currency_problem",
    "looks_dot_grouped",
    "plain_numbers",
    "suggested_format",
]

#: The contract's numeric columns (the only ones these keys touch).
NUMERIC_COLUMNS: tuple[str, ...] = tuple(
    name for name, kind in CONTRACT_COLUMNS.items() if kind in ("float", "int")
)

# Text before (after a sign) or after an amount, for the suggestion; kept only when it is a
# currency token (:func:`currency_problem`) and, for letters alone, an ISO code such as USD.
_AFFIX = re.compile(r"^\s*[-+]?\s*([^\d\s.,+-][^\d.,]{0,3}?)\s*[\d.,]|[\d.,]\s*(\D{1,4})\s*$")
_ISO_CODE = re.compile(r"^[A-Z]{3}$")
_DOT_GROUPS = re.compile(r"^[-+]?[1-9]\d{0,2}(?:\.\d{3})+$")


def currency_problem(token: str) -> str | None:
    """Why ``token`` cannot be a currency token of ``data.currency`` (None when it can): a
    currency sign (Unicode category Sc: $ EUR-sign ...) with letters or not (``R$``, ``US$``),
    or 2-4 letters (``USD``, ``kr``, ``CHF``) with an optional final dot (``Fr.``). A sign, a
    single letter (``K`` is thousands, not a currency) or ``<`` would change what the number
    means once removed."""
    body = token[:-1] if token.endswith(".") and len(token) > 1 else token
    has_sign = any(unicodedata.category(ch) == "Sc" for ch in body)
    only_letters_and_signs = all(ch.isalpha() or unicodedata.category(ch) == "Sc" for ch in body)
    if body and only_letters_and_signs and (has_sign or 2 <= len(body) <= 4):
        return None
    return (
        "must be a currency sign ($, R$) or 2-4 letters (USD, kr): signs, units such as K and "
        "other marks change what the number means"
    )


#: What ``thousands: " "`` accepts as the space between groups: a space, a no-break space
#: and a narrow no-break space (French and Nordic exports write ``1 234,56``).
_SPACES = "[ \u00a0\u202f]"


def _separator(thousands: str) -> str:
    """The regular expression of the thousands separator ``thousands`` (``"'"``: the
    typographic apostrophe too, as Swiss reports write ``1’234.50``)."""
    if thousands == "'":
        return "['\u2019]"
    return _SPACES if thousands == " " else re.escape(thousands)


def _number_pattern(thousands: str) -> re.Pattern[str]:
    """A number whose groups are separated by ``thousands`` (optional), with the decimal mark
    the separator implies: the comma for ``"."``, the dot for ``","`` and ``"'"``, either for a
    space (``1 234,56`` and ``1 234.56``: neither mark can then be a separator). With ``","``
    Indian grouping reads too (``1,23,456.78``)."""
    dec = {".": ",", " ": "[.,]"}.get(thousands, r"\.")
    sep = _separator(thousands)
    # with ",": Indian grouping too (1,23,456.78: lakhs and crores), never a Western number
    indian = r"[1-9]\d?(?:,\d{2})+,\d{3}|" if thousands == "," else ""
    # a group never starts with 0 (0,123 is no thousand: left for the contract to refuse)
    return re.compile(rf"^([-+]?)({indian}[1-9]\d{{0,2}}(?:{sep}\d{{3}})+|\d+)({dec}\d+)?$")


def _strip_currency(text: pd.Series, currency: Sequence[str]) -> pd.Series:
    """``text`` without the currency tokens at its start (after a sign) or end."""
    tokens = "|".join(re.escape(c) for c in sorted(currency, key=len, reverse=True))
    text = text.str.replace(rf"^([-+]?)\s*(?:{tokens})\s*", r"\1", regex=True)
    return text.str.replace(rf"\s*(?:{tokens})$", "", regex=True)


#: Appended to a value ``thousands: "."`` cannot read, so that the contract refuses it
#: (``12.34`` would otherwise read as twelve) and the message says why.
_STRAY_DOT = " (a dot that is not a thousands group)"


def _with_thousands(text: pd.Series, thousands: str) -> tuple[pd.Series, pd.Series]:
    """``text`` with numbers written with ``thousands`` (and the decimal mark it implies)
    written plain, other values unchanged; and the values marked unreadable: with ``"."``, a
    value holding a dot that is not a thousands group (``12.34``: the comma is the decimal
    mark there, so the dot cannot be one), which gets :data:`_STRAY_DOT` appended."""
    parts = text.str.extract(_number_pattern(thousands))
    matched = parts[1].notna()
    plain = parts[0].fillna("") + parts[1].fillna("").str.replace(
        _separator(thousands), "", regex=True
    )
    plain = plain + parts[2].fillna("").str.replace(",", ".", regex=False)
    out = text.where(~matched, plain)
    stray = pd.Series(False, index=text.index)
    if thousands == ".":
        stray = ~matched & text.str.contains(".", regex=False).fillna(False).astype(bool)
        out = out.where(~stray, text + _STRAY_DOT)
    return out, stray


def _plain_text(values: pd.Series, data: DataConfig) -> pd.Series:
    """A numeric column with its text values read as numbers under ``currency`` and
    ``thousands``; numbers (a workbook's number cells) as they are, and text that does not
    read as written (or marked, :func:`_with_thousands`), for the contract to refuse."""
    is_text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    text = values[is_text].astype("string").str.strip()
    if data.currency:
        text = _strip_currency(text, data.currency)
    stray = pd.Series(False, index=text.index)
    if data.thousands is not None:
        text, stray = _with_thousands(text, data.thousands)
    numbers = pd.to_numeric(text, errors="coerce")
    unread = values[is_text].where(~stray, text)
    converted = values.astype(object).copy()
    converted[is_text] = numbers.astype(object).where(numbers.notna(), unread)
    return converted


#: Money columns, whose currency tokens must agree within a brand.
_MONEY = ("spend", "revenue", "bid")
#: Currency symbols and the ISO code they stand for (``$1`` and ``1 USD`` are one currency).
_SYMBOL_CODES = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}


def _currency_mix(
    values: pd.Series, brands: pd.Series | None, currency: Sequence[str], column: str
) -> list[str]:
    """A note when the ``currency`` tokens ``values`` are written with name more than one
    currency: within a brand (its amounts would be added up as one) or across brands."""
    text = values[values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)].astype(str)
    tokens = "|".join(re.escape(c) for c in sorted(currency, key=len, reverse=True))
    found = text.str.strip().str.extract(rf"^[-+]?\s*({tokens})|({tokens})$")
    unit = found[0].fillna(found[1]).map(lambda t: _SYMBOL_CODES.get(t, t), na_action="ignore")
    unit = unit.dropna()
    if unit.nunique() < 2:
        return []
    shown = ", ".join(sorted(unit.unique()))
    owner = brands.loc[unit.index].astype(str) if brands is not None else pd.Series("", unit.index)
    per_brand = unit.groupby(owner).nunique()
    mixed = sorted(per_brand[per_brand > 1].index)
    if mixed:
        return [
            f"column {column!r}: brand(s) {', '.join(mixed[:5])} hold amounts in several "
            f"currencies ({shown}; data.currency strips every one), added up as one; convert "
            "them to one currency before loading"
        ]
    return [
        f"column {column!r}: the brands' amounts are in {unit.nunique()} currencies ({shown}), "
        "pooled in one global model beside absolute bid limits (bids.max_bid); a store per "
        "currency keeps them apart (data.store)"
    ]


def _dot_grouped_text(values: pd.Series, data: DataConfig) -> bool:
    """Whether ``values``' text reads as thousands grouped by dots (``1.500``; with the
    evidence :func:`dot_grouped_amounts` asks for: a whole three-digit value beside them,
    two groups, or five such values) while ``data.thousands`` is unset: not fractions for
    ``round`` (1.500 conversions became 2), left for the contract to refuse with the
    ``thousands`` fix. Three-decimal fractions alone (1.333, 2.500) are still rounded."""
    if data.thousands is not None or pd.api.types.is_numeric_dtype(values.dtype):
        return False
    text = values[values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)].astype(str)
    return bool(dot_grouped_amounts(text))


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
        formatted = data.thousands is not None or data.currency
        if formatted and not pd.api.types.is_numeric_dtype(out[column].dtype):
            if name in _MONEY and len(data.currency) > 1:
                brand = data.columns.get("brand_id", "brand_id")
                notes += _currency_mix(out[column], out.get(brand), data.currency, column)
            out[column] = _plain_text(out[column], data)
        if name in data.round and not _dot_grouped_text(df[column], data):
            numbers = pd.to_numeric(out[column], errors="coerce")
            # a negative value is left for the contract to refuse (-0.4 must not become 0)
            fractional = numbers.notna() & (numbers >= 0) & (numbers != np.round(numbers))
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


def suggested_format(
    values: Sequence[object], column: str, data: DataConfig | None = None
) -> str | None:
    """The ``data:`` keys that would read ``values`` (refused as numbers of ``column``) as
    numbers: ``thousands`` and/or ``currency``, added to what ``data`` already sets; None when
    no such key reads every value (a configured separator is never swapped for another: the
    values would then disagree with the rows it reads)."""
    texts = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if not texts:
        return None
    configured = list(data.currency) if data is not None else []
    thousands = data.thousands if data is not None else None
    found: set[str] = set()
    for text in texts:
        match = _AFFIX.search(text)
        token = None if match is None else (match.group(1) or match.group(2) or "").strip()
        if token and token not in configured:
            if currency_problem(token) is not None:
                return None
            if token.isalpha() and not _ISO_CODE.match(token):
                return None
            found.add(token)
    currency = sorted(set(configured) | found)
    stripped = pd.Series(texts, dtype="string")
    if currency:
        stripped = _strip_currency(stripped, currency)
    separators = (thousands,) if thousands is not None else (",", ".", " ", "'")
    for sep in separators:
        plain, _ = _with_thousands(stripped, sep)
        if pd.to_numeric(plain, errors="coerce").notna().all():
            keys = (
                [f"data.thousands: {sep!r}"]
                if sep != thousands and (plain != stripped).any()
                else []
            )
            break
    else:
        return None
    if found:
        keys.append(f"data.currency: {currency}")
    return " and ".join(keys) if keys else None


def looks_dot_grouped(values: Sequence[object]) -> bool:
    """Whether every value reads as a whole number grouped by dots (``1.500``, ``12.345.678``):
    thousands written the European way, not fractions to round."""
    texts = [str(v).strip() for v in values if v is not None and str(v).strip()]
    return bool(texts) and all(_DOT_GROUPS.match(t) for t in texts)


def dot_grouped_amounts(values: Sequence[object] | pd.Series) -> list[str]:
    """Amounts read as numbers whose every fraction is a group of three digits after a
    leading group (``1.250``, ``1.000``, ``12.345.678``; never ``0.125``): thousands grouped by
    dots, which a number reader takes for decimals (1.25). Returns such values as written;
    empty when one value with a dot does not look so, when none has a dot, or when nothing
    else says the dots group thousands: a whole amount of three digits beside them (980:
    grouped, 1000 and up would have a dot), a value of two groups (1.234.567), or five such
    values (amounts with three real decimals are rare, and ``data.thousands: ','`` reads them).
    Vectorised: the values of a big export are looked at in a few passes."""
    texts = pd.Series(values, dtype="string").str.strip().dropna()
    dotted = texts[texts.str.contains(".", regex=False)]
    if not len(dotted):
        return []
    if not dotted.str.fullmatch(r"[-+]?[1-9]\d{0,2}(?:\.\d{3})+").all():
        return []
    hundreds = bool(texts.str.fullmatch(r"[-+]?[1-9]\d{2}").any())
    several = bool((dotted.str.count(r"\.") > 1).any()) or len(dotted) >= 5
    return dotted.tolist() if hundreds or several else []
