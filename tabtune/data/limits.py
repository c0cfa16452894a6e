"""Limits at the input boundary: the rules every layer applies to brand ids and dates.

One rule each, used everywhere a user's value enters tabtune, so that what ``tabtune
validate`` accepts is what an append, the store and the model registry accept:

* :func:`brand_id_problem` / :func:`check_brand_id`: a brand id names a store folder
  (``brand_id=<percent-encoded id>``) and a registry folder (``models/brands/<id>/``), so it
  must be a safe, short folder name;
* :data:`MAX_ABS_NUMBER`: a number of a campaign row (spend, clicks, a bid) is at most 1e15 in
  absolute value: larger than any account spends or serves, far below what the models' 32-bit
  floats overflow on (about 3.4e38) once summed and squared, so a sentinel such as ``1e300``
  is refused instead of turning into ``inf`` inside the features;
* :func:`latest_allowed_date`: campaign rows are observed history, so a row dated after today
  (plus a day of slack for time zones) is a typo or a placeholder such as ``9999-12-31``, and
  would poison every later "latest day" computation; :data:`EARLIEST_DATE` bounds the other
  end.

Only the standard library is imported here: the registry uses it without loading pandas.
"""

from __future__ import annotations

import datetime as _dt
import os
from urllib.parse import quote

from tabtune.errors import TabTuneInputError

__all__ = [
    "BRAND_ID_MAX_BYTES",
    "BRAND_ID_MAX_CHARS",
    "DEFAULT_MAX_FUTURE_DAYS",
    "EARLIEST_DATE",
    "iso_day",
    "MAX_ABS_NUMBER",
    "MAX_FUTURE_DAYS_ENV",
    "RULE_TOO_LARGE",
    "RULE_BAD_BRAND_ID",
    "brand_id_problem",
    "check_brand_id",
    "default_max_future_days",
    "encode_brand_id",
    "spelling_key",
    "latest_allowed_date",
]

BRAND_ID_MAX_CHARS = 128
"""Longest brand id, in characters."""

BRAND_ID_MAX_BYTES = 240
"""Longest brand id once percent-encoded for the store's folder name (file systems allow 255
bytes per name; ``brand_id=`` takes 9)."""

RULE_BAD_BRAND_ID = (
    f"must be a folder-safe name: 1-{BRAND_ID_MAX_CHARS} printable characters "
    f"(at most {BRAND_ID_MAX_BYTES} bytes percent-encoded), without "
    '"/", "\\", "=" or "..", not starting with "."'
)
"""The brand-id rule, as a contract rule text (``column 'brand_id': <rule>``)."""

MAX_ABS_NUMBER = 1e15
"""The largest absolute value of a number of a campaign row (see the module docstring)."""

RULE_TOO_LARGE = f"must be at most {MAX_ABS_NUMBER:.0e} in absolute value"
"""The size rule of numbers, as a contract rule text (``column 'spend': <rule>``)."""

EARLIEST_DATE = _dt.date(1995, 1, 1)
"""No campaign row is dated before this day (online ads began in late 1994): a 1970-01-01 is
a missing date written as a zero Unix time, and was stored decades before the brand's rows."""

DEFAULT_MAX_FUTURE_DAYS = 1
"""Rows may be dated at most this many days after today (UTC), by default."""

MAX_FUTURE_DAYS_ENV = "TABTUNE_MAX_FUTURE_DAYS"
#: The largest ``TABTUNE_MAX_FUTURE_DAYS`` accepted.
MAX_FUTURE_DAYS_LIMIT = 3650
"""Environment variable that overrides :data:`DEFAULT_MAX_FUTURE_DAYS` (a whole number >= 0)."""


def iso_day(value: object) -> str:
    """``value`` (a date, or text) as a ``YYYY-MM-DD`` day from :data:`EARLIEST_DATE`.

    Raises
    ------
    ValueError
        Not an ISO date (``01/02/2024`` could be either of two days), or before the earliest.
    """
    if isinstance(value, _dt.date):
        day = value if not isinstance(value, _dt.datetime) else value.date()
    else:
        try:
            day = _dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO date: write it as YYYY-MM-DD, e.g. 2024-01-01 "
                "(01/02/2024 could be either of two days)"
            ) from None
    if day < EARLIEST_DATE:
        raise ValueError(f"{day} is before {EARLIEST_DATE}, the earliest date a row may have")
    return day.isoformat()


def encode_brand_id(brand: str) -> str:
    """Percent-encode a brand id the way the store names its folder (after ``brand_id=``).

    Parameters
    ----------
    brand : str
        The brand id.

    Returns
    -------
    str
    """
    return quote(brand, safe="")


def brand_id_problem(value: object) -> str | None:
    """Why ``value`` cannot be a brand id, or None when it can.

    Parameters
    ----------
    value : object
        A candidate brand id.

    Returns
    -------
    str or None
        E.g. ``"contains '..'"``; None for a valid id.
    """
    if not isinstance(value, str):
        return f"is a {type(value).__name__}, not a string"
    problem = None
    if not value or not value.strip():
        problem = "is empty"
    elif value != value.strip():
        problem = "has leading or trailing whitespace"
    elif value.startswith("."):
        problem = "starts with '.'"
    elif "/" in value or "\\" in value:
        problem = "contains a path separator"
    elif "=" in value:
        problem = "contains '='"
    elif ".." in value:
        problem = "contains '..'"
    elif not value.isprintable():
        problem = "contains a control or non-printable character"
    elif len(value) > BRAND_ID_MAX_CHARS:
        problem = f"is longer than {BRAND_ID_MAX_CHARS} characters ({len(value)})"
    elif len(encode_brand_id(value)) > BRAND_ID_MAX_BYTES:
        problem = f"is longer than {BRAND_ID_MAX_BYTES} bytes once percent-encoded"
    return problem


def check_brand_id(value: object, what: str = "brand") -> str:
    """Return ``value`` if it is a valid brand id, else raise.

    Parameters
    ----------
    value : object
        A candidate brand id.
    what : str, default "brand"
        What it is called in the message.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    TabTuneInputError
        ``"invalid brand 'a..b': it contains '..' (a brand id <rule>)"``.
    """
    problem = brand_id_problem(value)
    if problem is not None:
        raise TabTuneInputError(
            f"invalid {what} {value!r}: it {problem} (a brand id {RULE_BAD_BRAND_ID})"
        )
    return value  # type: ignore[return-value]


def default_max_future_days() -> int:
    """Days after today a row may be dated: ``$TABTUNE_MAX_FUTURE_DAYS`` or 1.

    Returns
    -------
    int

    Raises
    ------
    TabTuneInputError
        The environment variable is set but is not a whole number >= 0.
    """
    text = os.environ.get(MAX_FUTURE_DAYS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_FUTURE_DAYS
    try:
        days = int(text)
    except ValueError:
        days = -1
    if not 0 <= days <= MAX_FUTURE_DAYS_LIMIT:
        raise TabTuneInputError(
            f"{MAX_FUTURE_DAYS_ENV}={text!r}: must be a whole number of days from 0 to "
            f"{MAX_FUTURE_DAYS_LIMIT} (ten years; a larger one overflows the calendar)"
        )
    return days


def latest_allowed_date(
    max_future_days: int | None = None, today: _dt.date | None = None
) -> _dt.date:
    """The last day a campaign row may be dated: today (UTC) plus ``max_future_days``.

    Parameters
    ----------
    max_future_days : int, optional
        Days of slack after today; :func:`default_max_future_days` when omitted.
    today : datetime.date, optional
        Today, for tests; the current UTC date when omitted.

    Returns
    -------
    datetime.date
    """
    days = default_max_future_days() if max_future_days is None else int(max_future_days)
    if days < 0:
        raise TabTuneInputError(f"max_future_days must be >= 0, got {days}")
    base = _dt.datetime.now(_dt.UTC).date() if today is None else today
    return base + _dt.timedelta(days=days)


def spelling_key(text: str) -> str:
    """An id as its spellings meet: runs of spaces as one (no-break spaces too), outer spaces
    dropped, case folded (``"Acme  Shoes "`` and ``"acme shoes"`` share one key)."""
    return " ".join(str(text).split()).casefold()
