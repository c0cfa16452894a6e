"""Load a user's export into the campaign store: read, transform, map, validate, append.

:func:`load_exports` is ``tabtune load``: each file is read
(:func:`~tabtune.data.schema.read_table`), transformed (:mod:`tabtune.data.transforms`), mapped
(``data.columns``) and checked against the contract with the config's policies; then every file's
rows are appended at once (:meth:`~tabtune.data.store.CampaignStore.append`, which skips rows
whose key is already stored, so loading the same file twice changes nothing). A bad row refuses the whole
load (``data.invalid_rows: reject``, the default) with a message that names the column, the rule
and the config key to change, and nothing is written; with ``skip`` the bad rows are left out
and counted in the summary.

:func:`prepare_exports` is everything before the append; ``tabtune validate FILE``,
``refresh --input`` and ``predict --input`` use it too, so a file that ``load`` refuses is
refused by them, with the same message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tabtune.data import schema
from tabtune.data.clock_times import shifted_midnight_error
from tabtune.data.contract import RULE_CONFLICTING_FILES
from tabtune.data.export_files import export_files
from tabtune.data.folders import folder_values, with_contract_columns, with_export_columns
from tabtune.data.limits import brand_id_problem, spelling_key
from tabtune.data.load_fixes import (
    TOTAL_NAME,
    TOTALS_CELL,
    config_key,
    footer_rows,
    number_key,
    placeholder_measures,
    shape_key,
    subtotal_problems,
)
from tabtune.data.number_text import NUMERIC_COLUMNS
from tabtune.data.parse import nfc_text
from tabtune.data.periods import (
    period_rows_error,
    running_day_note,
    summary_problem,
    weekly_beside_store_error,
    weekly_rows_error,
)
from tabtune.data.renamed_rows import refuse_renamed_across_files, refuse_renamed_beside_store
from tabtune.data.restated import (
    check_restated,
    replace_restated,
    restated_days,
    stored_differently,
)
from tabtune.data.schema import (
    CONTRACT_COLUMNS,
    KEY_COLUMNS,
    MAX_EXAMPLES,
    REQUIRED_COLUMNS,
    STRING_COLUMNS,
    Violation,
    apply_column_mapping,
    find_violations,
    key_columns,
    read_table,
    validate_campaigns,
)
from tabtune.data.store import CampaignStore
from tabtune.data.tables import CSV_SUFFIXES, NumberText
from tabtune.data.transforms import (
    RowProblem,
    apply_transforms,
    date_column_of,
    refuse_monthly_days,
    refuse_swapped_beside_store,
)
from tabtune.data.units import (
    bid_unit_jump,
    currency_notes,
    money_unit_notes,
    spend_spike_notes,
    unscaled_micros_error,
)
from tabtune.errors import ContractError
from tabtune.progress import ProgressFactory, track

if TYPE_CHECKING:  # pragma: no cover - the config imports the data layer, not the reverse
    from tabtune.config import DataConfig

__all__ = [
    "LoadSummary",
    "SkippedRows",
    "check_against_store",
    "config_key",
    "export_files",
    "load_exports",
    "prepare_exports",
]


@dataclass(frozen=True)
class SkippedRows:
    """Rows left out of a load: how many, which rule they broke, and the key to change."""

    source: str
    column: str
    rule: str
    count: int
    key: str


@dataclass
class LoadSummary:
    """What ``tabtune load`` read, wrote and left out.

    Attributes
    ----------
    files : list of Path
        The files read, in order.
    rows_read : int
        Rows in the files.
    rows_written : int
        New rows appended to the store (0 with ``dry_run``).
    rows_already_stored : int
        Rows whose brand and date the store already holds (not written again).
    restated : dict
        Brand -> days (``YYYY-MM-DD``) of the rows already stored whose values in the files
        differ from the stored ones (:func:`~tabtune.data.restated.stored_differently`): the
        stored values were kept, or with ``data.restated_rows: replace`` replaced.
    rows_restated : int
        How many such rows.
    rows_replaced : int
        How many of them were written over the stored values (``data.restated_rows:
        replace``; 0 with ``dry_run``).
    replace_restated : bool
        Whether ``data.restated_rows`` is ``replace``.
    rows_skipped : int
        Rows left out under ``data.invalid_rows: skip`` (one row may break several rules).
    rows_repeated : int
        Rows that an earlier file already held with the same key and the same values (rolling
        or overlapping exports): kept once.
    brands : pandas.DataFrame
        Per brand: ``brand_id``, ``rows`` (loaded), ``new_rows``, ``first`` and ``last`` date.
    skipped : list of SkippedRows
        Rows left out under ``data.invalid_rows: skip``.
    notes : list of str
        Policies applied (conversions above clicks kept or clipped) and columns not stored.
    dry_run : bool
        True when nothing was written.
    """

    files: list[Path]
    rows_read: int = 0
    rows_written: int = 0
    rows_already_stored: int = 0
    rows_restated: int = 0
    restated: dict[str, list[str]] = field(default_factory=dict)
    rows_replaced: int = 0
    replace_restated: bool = False
    rows_skipped: int = 0
    rows_repeated: int = 0
    brands: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: list[SkippedRows] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False


def _problems(
    frame: pd.DataFrame, data: DataConfig, transformed: list[RowProblem], required: Sequence[str]
) -> list:
    """Contract violations of the mapped frame, minus rows a transform already flagged."""
    flagged = np.zeros(len(frame), dtype=bool)
    for problem in transformed:
        flagged |= problem.mask
    found: list[tuple[Violation, np.ndarray | None, str]] = [
        (p.violation, p.mask, p.key) for p in transformed
    ]
    for violation, mask in find_violations(
        frame,
        extra_columns=data.extra_columns,
        conversions_above_clicks=data.conversions_above_clicks,
        required=required,
    ):
        if mask is not None and flagged.any():
            mask = mask & ~flagged
            if violation.rule == schema.RULE_DUPLICATE_KEY:  # among the rows not flagged?
                keys = key_columns(frame.columns)
                if not frame.loc[~flagged, keys].duplicated().any():
                    continue
            elif not mask.any():
                continue
        key = config_key(violation.column, violation.rule, data, list(frame.columns))
        found.append((violation, mask, key))
    found += subtotal_problems(frame, flagged)
    return [
        (v, m, number_key(v, data, frame, m) or shape_key(v, m, frame, data) or k)
        for v, m, k in found
    ]


def _refusal(
    source: str,
    found: list,
    *,
    every_row: bool = False,
    skip_lines: int = 0,
    formatted: bool = False,
) -> ContractError:
    count = len(found)
    lines = [f"{source}: {count} problem{'' if count == 1 else 's'}; nothing was written"]
    if every_row:
        lines[0] += (
            " (every row breaks a rule below, so data.invalid_rows: skip leaves none to load)"
        )
    if formatted:
        lines[0] += (
            " (data.invalid_rows: skip does not leave out numbers written in another format "
            "or measures left empty ('--'): it would drop the largest amounts, every fractional "
            "count or every day without conversions, and keep the rest as if complete; the fix "
            "below reads them)"
        )
    for violation, _, key in found:
        first, *rest = violation.describe().splitlines()
        lines.append(f"  - {first}")
        lines.extend(f"  {line}" for line in rest)
        lines.append(f"    fix: {key}")
    if source.lower().endswith(CSV_SUFFIXES):
        lines.append(
            f"  (row = 0-based data row of the file; line in the CSV file = row + {2 + skip_lines})"
        )
    return ContractError("\n".join(lines), [v for v, _, _ in found])


def _prepare(
    path: Path,
    data: DataConfig,
    required: Sequence[str],
    folders: Mapping[str, str | None],
    alone: bool = True,
) -> tuple[pd.DataFrame | None, int, list[SkippedRows], list[str]]:
    """One export file -> validated contract rows, rows read, the rows skipped, and notes.
    ``folders`` (:func:`folder_values`) adds the columns its partition folders name and the
    file lacks. A file of a header and no row among others (``alone`` False: a paused
    account's nightly export) gives None and a note; alone, it is refused."""
    source = str(path)
    raw = _read_export(path, data)
    if len(raw) == 0 and not alone:
        return None, 0, [], [f"{path.name}: a header and no data row: nothing to load from it"]
    notes_read = [f"{path.name}: {note}" for note in raw.attrs.pop("notes", [])]
    sheets = raw.attrs.pop("sheets", None)
    done = apply_transforms(with_export_columns(raw, folders, data), data, source=source)
    try:
        frame = apply_column_mapping(done.frame, data.columns, source=source)
    except ContractError as exc:
        fix = (
            "\n  fix: data.columns (contract name: export column); an export column that "
            "already has a contract name can be removed with data.drop or renamed with "
            "data.rename; nothing was written"
        )
        hint = sheets if "which is not in the data" in str(exc) else None
        raise _with_sheet_hint(ContractError(str(exc) + fix, exc.violations), hint, None) from None
    frame = with_contract_columns(frame, folders, data, path)
    summary = summary_problem(frame, date_column_of(data), data.date_format)  # Meta's totals
    done.problems.extend([summary] if summary is not None else [])
    daily = frame if summary is None else frame.loc[~summary.mask]
    longer = period_rows_error(daily, source, date_column_of(data), data.date_format)
    if longer is None and "date" in frame.columns and not isinstance(frame["date"], pd.DataFrame):
        brands = frame.get("brand_id")  # a DataFrame for a name given twice: not per brand
        longer = shifted_midnight_error(frame["date"], source, date_column_of(data), data, brands)
    longer = longer or weekly_rows_error(
        frame, source, date_column_of(data), data.date_format, notes_read
    )
    if longer is not None:
        raise longer
    repeated = set(frame.columns[frame.columns.duplicated()])  # refused by the contract
    for name in STRING_COLUMNS:  # one spelling per name (composed and decomposed accents)
        if name in frame.columns and name not in repeated:
            frame[name] = nfc_text(frame[name])
    found = _problems(frame, data, done.problems, required)
    skippable = all(
        mask is not None and v.rule != schema.RULE_DUPLICATE_KEY for v, mask, _ in found
    )
    formatted = _formatted_numbers(found, data, frame) or placeholder_measures(found, frame)
    if found and (data.invalid_rows == "reject" or not skippable or formatted):
        refusal = _refusal(
            source,
            found,
            skip_lines=data.skip_lines,
            formatted=formatted and data.invalid_rows == "skip",
        )
        raise _with_sheet_hint(refusal, sheets, found)
    skipped = [SkippedRows(source, v.column, v.rule, int(m.sum()), k) for v, m, k in found]
    notes = notes_read + [f"{path.name}: {note}" for note in done.notes]
    if found:
        bad = np.logical_or.reduce([m for _, m, _ in found])
        if bad.all():
            raise _refusal(source, found, every_row=True, skip_lines=data.skip_lines)
        notes.extend(_vanished_brands(frame, bad, path.name))
        frame = frame.loc[~bad].reset_index(drop=True)
    keep = [c for c in frame.columns if c in CONTRACT_COLUMNS or c in data.extra_columns]
    ignored = [c for c in frame.columns if c not in keep]
    if ignored:
        more = f" and {len(ignored) - 20:,} more" if len(ignored) > 20 else ""  # 3,000: 21 kB
        notes.append(
            f"{path.name}: columns not stored: {', '.join(map(str, ignored[:20]))}{more} "
            "(map them in data.columns or list them in data.extra_columns to keep them)"
        )
        notes.extend(currency_notes(frame, ignored, path.name))
    rows = validate_campaigns(
        frame[keep], extra_columns=data.extra_columns, source=source, required=required
    )
    notes.extend(_conversions_above_clicks(rows, data, path.name))
    return rows, len(raw), skipped, notes


def _formatted_numbers(found: list, data: DataConfig, frame: pd.DataFrame) -> bool:
    """Whether some refused values are numbers written in another format (``$1,234.50``, 2.5
    clicks: :func:`~tabtune.data.load_fixes.number_key`) on rows that break no other rule.

    Such rows are never skipped: that would leave out the largest amounts or every fractional
    count, and keep the rest as if complete. A row that breaks another rule too (a totals or
    average line, without a date or channel) is skipped under ``invalid_rows: skip`` anyway.
    """
    numbers = (schema.RULE_NOT_NUMBER, schema.RULE_NOT_WHOLE_NUMBER)
    other = np.zeros(len(frame), dtype=bool)  # rows that break a rule about something else
    for violation, mask, _ in found:
        if mask is not None and violation.rule not in numbers:
            other |= mask
    return any(
        number_key(v, data, frame, None if mask is None else mask & ~other) is not None
        for v, mask, _ in found
        if v.rule in numbers and (mask is None or (mask & ~other).any())
    )


def _with_sheet_hint(
    refusal: ContractError, sheets: tuple[str, list[str]] | None, found: list | None
) -> ContractError:
    """A refusal of missing columns in a workbook (``found`` None: of a column the mapping
    names), with the sheet read and its other sheets (a summary sheet first, the daily rows
    on another: ``data.sheet`` chooses)."""
    missing = found is None or any(v.rule == schema.RULE_MISSING_COLUMN for v, _, _ in found)
    if sheets is None or not missing or not sheets[1]:
        return refusal
    read, others = sheets
    shown = ", ".join(repr(s) for s in others[:8]) + (", ..." if len(others) > 8 else "")
    hint = (
        f"\n  (the workbook's sheet {read!r} was read; it also has {shown}: "
        f"data.sheet: {others[0]!r} reads another)"
    )
    return ContractError(str(refusal) + hint, refusal.violations)


def _read_export(path: Path, data: DataConfig) -> pd.DataFrame:
    """The export file as read: the contract's text columns as text (an id such as "007"
    stays "007"), numbers kept as written where the config reads their format."""
    before_rename = {new: old for old, new in data.rename.items()}

    def export_names(columns: Sequence[str]) -> tuple[str, ...]:
        # the export's names of contract columns (before rename)
        return tuple(before_rename.get(n, n) for n in (data.columns.get(c, c) for c in columns))

    counts = [c for c, kind in CONTRACT_COLUMNS.items() if kind == "int"]
    formatted = data.thousands is not None or bool(data.currency)
    return read_table(
        path,
        string_columns=set(export_names(STRING_COLUMNS)),
        skip_lines=data.skip_lines,
        sheet=data.sheet if "sheet" in data.model_fields_set else None,  # others checked
        number_text=NumberText(
            always=export_names(NUMERIC_COLUMNS) if formatted else (),
            when_fractional=export_names(counts),
            money=_checked_amounts(data, export_names(["spend", "revenue"])),
        ),
    )


def _checked_amounts(data: DataConfig, names: Sequence[str]) -> tuple[str, ...]:
    """The export's amount columns checked for thousands grouped by dots (read as decimals):
    none once ``data.thousands`` says how the export groups them; never a dropped column."""
    if data.thousands is not None:
        return ()
    return tuple(n for n in names if n not in data.drop and data.rename.get(n, n) not in data.drop)


def _conversions_above_clicks(rows: pd.DataFrame, data: DataConfig, name: str) -> list[str]:
    """The note for rows with more conversions than clicks; ``clip`` lowers them in place."""
    above = 0
    if "conversions" in rows and "clicks" in rows:
        above = int((rows["conversions"] > rows["clicks"]).sum())
    if not above:
        return []
    if data.conversions_above_clicks == "clip":
        rows["conversions"] = np.minimum(rows["conversions"], rows["clicks"])
    action = {"allow": "kept as reported", "clip": "conversions lowered to the clicks"}
    return [
        f"{name}: {above} row(s) with more conversions than clicks (post-view "
        f"conversions?): {action[data.conversions_above_clicks]} "
        "(data.conversions_above_clicks: allow | clip | reject)"
    ]


def _vanished_brands(frame: pd.DataFrame, bad: np.ndarray, name: str) -> list[str]:
    """A note naming the brands of which every row is skipped (none of their rows is loaded)."""
    if "brand_id" not in frame.columns or isinstance(frame["brand_id"], pd.DataFrame):
        return []
    ids, footer = frame["brand_id"], footer_rows(frame)  # a footer line names no brand
    kept, gone = set(ids[~bad].dropna()), ids[bad & ~footer].dropna()
    counts = gone[~gone.isin(kept)].astype(str).value_counts().sort_index()
    # "Total: Account" names no brand; "Total Wine & More" does (its rows are a brand's)
    named = [b for b in counts.index if TOTAL_NAME.match(b)]
    no_brand = [b for b in counts.index if TOTALS_CELL.match(b) and b not in named]
    no_brand += [str(b) for b in ids[bad & footer].dropna().unique() if b not in kept]
    counts = counts.drop(no_brand, errors="ignore")
    notes = []
    if no_brand:
        notes.append(
            f"{name}: {len(no_brand)} skipped line(s) name no brand ({', '.join(map(repr, no_brand[:3]))}"
            f"{', ...' if len(no_brand) > 3 else ''}): totals or footer lines"
        )
    if counts.empty:
        return notes
    shown = [  # a name tabtune cannot keep a folder for says why ('Acme US/CA')
        f"{brand} ({n:,} row(s){'' if (why := brand_id_problem(brand)) is None else ': it ' + why})"
        for brand, n in counts.iloc[:MAX_EXAMPLES].items()
    ]
    more = f" and {len(counts) - len(shown)} more" if len(counts) > len(shown) else ""
    return [
        f"{name}: every row of brand(s) {', '.join(shown)}{more} is skipped, so none of their "
        "rows is loaded; the skipped rows below say which rule they break",
        *notes,
    ]


def spelling_groups(new: Sequence[str], known: Sequence[str] = ()) -> list[list[str]]:
    """Groups of ids that differ only in case or spacing (surrounding spaces, a double space,
    a no-break space for a space), each with a spelling that ``known`` lacks (spellings stored
    already are not raised again at each load)."""
    groups: dict[str, set[str]] = {}
    for value in {*map(str, new), *map(str, known)}:
        groups.setdefault(spelling_key(value), set()).add(value)
    fresh = set(map(str, new)) - set(map(str, known))
    return [sorted(g) for _, g in sorted(groups.items()) if len(g) > 1 and g & fresh]


def _shown_spellings(groups: list[list[str]]) -> str:
    shown = "; ".join(" vs ".join(repr(v) for v in g) for g in groups[:MAX_EXAMPLES])
    more = len(groups) - MAX_EXAMPLES
    return shown + (f"; and {more} more" if more > 0 else "")


def _near_duplicate_ids(store: CampaignStore, rows: pd.DataFrame) -> list[str]:
    """Refuse brand ids, and note channels, that differ from stored or loaded ones only in case
    or spacing (``ACME`` beside ``acme``, ``Acme  Shoes`` beside ``Acme Shoes``).

    A brand id is refused: the store keeps a folder per brand, and on a case-insensitive file
    system (macOS, Windows) ``brand_id=ACME`` and ``brand_id=acme`` are one folder, so the two
    brands' rows would mix; and two brands spelled alike are almost always one brand. A channel
    is noted: it is a value, not a folder, but the models take ``Search`` and ``search`` for two
    channels.

    Raises
    ------
    ContractError
        Naming the brand ids and the fix.
    """
    stored = store.brands() if store.exists() else []
    brands = spelling_groups(list(rows["brand_id"].unique()), stored)
    if brands:
        violation = Violation("brand_id", "must not differ from another only in case", len(brands))
        raise ContractError(
            f"column 'brand_id': {len(brands)} brand id(s) of the exports differ from a stored "
            f"or loaded one only in case or spacing: {_shown_spellings(brands)}; "
            "nothing was written\n  fix: spell each brand one way in the exports (as it is "
            "stored; for an export of one brand whose account name you cannot change, "
            "data.constants.brand_id gives every row the stored spelling); the store keeps a "
            "folder per brand id, and on a case-insensitive file system (macOS, Windows) such "
            "folders are one folder",
            [violation],
        )
    known: list[str] = []
    if stored:
        channels = store.dataset().to_table(columns=["channel"]).column("channel")
        known = [str(v) for v in channels.unique().to_pylist() if v is not None]
    found = spelling_groups(list(rows["channel"].unique()), known)
    if not found:
        return []
    return [
        f"{len(found)} channel(s) differ from a stored or loaded one only in case or spacing: "
        f"{_shown_spellings(found)}; the models take them for different channels; if they "
        "are one, spell it as stored in the exports before loading (--dry-run shows this note "
        "and writes nothing)"
    ]


def check_against_store(
    store: CampaignStore,
    rows: pd.DataFrame,
    data: DataConfig | None = None,
    known: np.ndarray | None = None,
) -> list[str]:
    """What ``load`` refuses or notes in prepared rows because of what the store holds, for
    ``load``, ``validate FILE`` and ``refresh --input`` alike: columns its first load fixed
    (:meth:`~tabtune.data.store.CampaignStore.check_columns`), brand ids (refused) and
    channels (noted) that differ from a stored or loaded one only in case or spacing, and with
    ``data`` an account-level export given one ``campaign_id`` by ``data.constants`` on days
    whose campaigns are stored (refused: counted twice) and days read day-and-month swapped.

    Returns
    -------
    list of str
        The notes. Raises ``ContractError`` for a refusal; nothing is written.
    """
    store.check_columns(rows)
    notes = _near_duplicate_ids(store, rows)
    if data is not None:
        _refuse_constant_campaign_overlap(store, rows, data)
        newest = lambda b: store.date_range(b)[1] if store.files(b) else None  # noqa: E731
        refuse_swapped_beside_store(rows, data.date_format, newest)
    refuse_renamed_beside_store(store, rows, known)  # known: the rows stored already
    return notes + _spend_spikes(store, rows)


def _spend_spikes(store: CampaignStore, rows: pd.DataFrame) -> list[str]:
    """:func:`~tabtune.data.units.spend_spike_notes` of the rows beside the brands' stored
    days of the 90 before them (a nightly day is compared with its channel's usual); bids in
    another unit than the stored ones are refused (:func:`~tabtune.data.units.bid_unit_jump`)."""
    if not {"channel", "spend"} <= set(rows.columns) or not len(rows):
        return []
    stored = sorted(set(rows["brand_id"].astype(str)) & set(store.brands()))
    start = pd.Timestamp(rows["date"].min()) - pd.Timedelta(days=90)
    history = None
    if stored:
        end, columns = rows["date"].max(), ["brand_id", "date", "channel", "spend"]
        schema = store.schema()
        bids = "bid" in rows.columns and schema is not None and "bid" in schema.names
        columns += ["bid"] if bids else []
        history = store.read(brands=stored, start=start, end=end, columns=columns)
    if (jump := bid_unit_jump(rows, history)) is not None:
        raise ContractError(jump, [Violation("bid", "must be in the stored bids' unit", len(rows))])
    if (weekly := weekly_beside_store_error(rows, history)) is not None:
        raise weekly
    return spend_spike_notes(rows, history)


#: The rule rows given one campaign id by ``data.constants`` break beside stored campaigns.
RULE_CONSTANT_CAMPAIGN = (
    "must not be a constant (data.constants) on days whose campaigns are stored by their own ids"
)


def _refuse_constant_campaign_overlap(
    store: CampaignStore, rows: pd.DataFrame, data: DataConfig
) -> None:
    """Refuse rows given one ``campaign_id`` by ``data.constants`` (an account-level export)
    on a brand's day and channel whose campaigns the store holds by their own ids: the
    account's totals would be added to its campaigns' rows, counting the day twice."""
    if "campaign_id" not in data.constants or "campaign_id" not in rows.columns:
        return
    constant = data.constants["campaign_id"]
    given = set(rows["campaign_id"].astype(str).unique())  # the constant as stored (stripped)
    keys = ["date", "channel", "campaign_id"]
    clashes: list[tuple[str, pd.DataFrame, list[str]]] = []
    for brand, part in rows.groupby("brand_id", sort=True, observed=True):
        stored = store.stored_rows(str(brand), part, ["brand_id", *keys])
        if stored is None:
            continue
        others = stored[~stored["campaign_id"].astype(str).isin(given)]
        both = (
            part[["date", "channel"]]
            .drop_duplicates()
            .merge(others[["date", "channel"]].drop_duplicates(), on=["date", "channel"])
        )
        if len(both):
            clashes.append((str(brand), both, sorted(others["campaign_id"].astype(str).unique())))
    if not clashes:
        return
    count = sum(len(both) for _, both, _ in clashes)
    brand, both, campaigns = clashes[0]
    shown = ", ".join(repr(c) for c in campaigns[:3]) + (", ..." if len(campaigns) > 3 else "")
    violation = Violation("campaign_id", RULE_CONSTANT_CAMPAIGN, count)
    raise ContractError(
        f"the exports: {count} brand day(s) and channel(s) (e.g. {brand!r} "
        f"{both['date'].iloc[0]:%Y-%m-%d} {both['channel'].iloc[0]!r}) already hold rows of "
        f"their campaigns ({shown}), and these rows all have campaign_id {constant!r} "
        "(data.constants.campaign_id): an account-level export's totals would be added to "
        "them, counting those days twice; nothing was written\n"
        "  fix: load the campaign-level export for these days (map data.columns.campaign_id), "
        "or keep account-level rows in another store (data.store)",
        [violation],
    )


def _per_brand(rows: pd.DataFrame, new: np.ndarray) -> pd.DataFrame:
    table = rows.assign(new_rows=new.astype(int)).groupby("brand_id", sort=True)
    return pd.DataFrame(
        {
            "rows": table.size(),
            "new_rows": table["new_rows"].sum(),
            "first": table["date"].min(),
            "last": table["date"].max(),
        }
    ).reset_index()


def _combine(files: list[Path], parts: list[pd.DataFrame]) -> tuple[pd.DataFrame, int]:
    """Every file's rows, a row repeated with the same values in a later file kept once.

    Each part is one file's validated rows (so its keys are unique). The same key with
    different values in two files is refused: which file is right is the user's call.
    """
    frame = pd.concat(parts, ignore_index=True)
    origin = np.concatenate([np.full(len(part), i) for i, part in enumerate(parts)])
    repeated = frame.duplicated(keep="first").to_numpy()
    frame, origin = frame.loc[~repeated].reset_index(drop=True), origin[~repeated]
    keys = key_columns(frame.columns)
    clash = frame.duplicated(keys, keep=False).to_numpy()
    if clash.any():
        raise _conflict(files, frame.loc[clash], origin[clash], keys)
    refuse_renamed_across_files(frame, origin, files)
    return frame, int(repeated.sum())


def _conflict(
    files: list[Path], rows: pd.DataFrame, origin: np.ndarray, keys: list[str]
) -> ContractError:
    """The refusal of keys that two files give different values."""
    groups = list(rows.assign(_file=origin).groupby(keys, sort=True, dropna=False))
    lines = [
        f"the exports: {len(groups)} row key(s) ({', '.join(keys)}) appear in more than one "
        "file with different values; nothing was written"
    ]
    for key, group in groups[:MAX_EXAMPLES]:
        values = dict(zip(keys, key, strict=True))
        shown = " ".join(f"{k}={_text(v)}" for k, v in values.items())
        differ = [c for c in rows.columns if c not in keys and group[c].nunique(dropna=False) > 1]
        lines.append(f"  - {shown}:")
        for position, row in zip(group["_file"], group.itertuples(index=False), strict=True):
            given = ", ".join(f"{c}={_text(getattr(row, c))}" for c in differ)
            lines.append(f"      {files[position]}: {given}")
    if len(groups) > MAX_EXAMPLES:
        lines.append(f"  ... and {len(groups) - MAX_EXAMPLES} more key(s)")
    lines.append(
        "  fix: keep one version of these rows: remove them from the file that is out of date "
        "(usually the older export) and load again; loading the files one at a time keeps the "
        "values of the first one loaded (a load skips rows whose key is already stored), or "
        "with data.restated_rows: replace those of the last one"
    )
    violation = Violation(", ".join(keys), RULE_CONFLICTING_FILES, len(groups))
    return ContractError("\n".join(lines), [violation])


def _text(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    return str(value)


def prepare_exports(
    paths: Sequence[str | Path] | str | Path,
    data: DataConfig,
    *,
    require_measures: bool = True,
    progress: ProgressFactory | None = None,
) -> tuple[pd.DataFrame, LoadSummary]:
    """Read exports and apply the config's transforms, mapping and policies, writing nothing.

    What ``load`` does before it appends, and ``validate FILE``, ``refresh --input`` and
    ``predict --input`` to their file: they accept and refuse the same rows.

    Parameters
    ----------
    paths : str, Path or sequence of them
        CSV/Parquet files or folders of them (see :func:`export_files`).
    data : DataConfig
        The config's ``data:`` section: transforms, mapping and policies.
    require_measures : bool, default True
        False for prediction inputs: only the row key (``brand_id``, ``date``, ``channel``)
        must be present; measures are checked when there (the model names its features).
    progress : ProgressFactory, optional
        Called with ``("load", n_files)``; advanced once per file read.

    Returns
    -------
    (pandas.DataFrame, LoadSummary)
        The validated rows of every file, and a summary (``files``, ``rows_read``,
        ``rows_skipped``, ``skipped``, ``notes``); nothing written.

    Raises
    ------
    ContractError
        A file breaks the contract (or a transform cannot apply) and the policy refuses it,
        naming the file, column, rule and config key; a money column mapped from micros.
    TabTuneInputError
        A path is missing or unreadable.
    """
    required = tuple(REQUIRED_COLUMNS) if require_measures else KEY_COLUMNS
    listing_notes: list[str] = []
    paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)  # one path
    files = export_files(paths, listing_notes)
    if (micros := unscaled_micros_error(data, "the config")) is not None:
        raise micros
    summary = LoadSummary(files=files, notes=listing_notes)
    parts: list[pd.DataFrame] = []
    given: list[Path] = []
    with track(progress, "load", len(files)) as update:
        for path in files:
            update(status=path.name)
            rows, n_read, skipped, notes = _prepare(
                path, data, required, folder_values(path, paths), alone=len(files) == 1
            )
            summary.notes.extend(notes)
            update(advance=1)
            if rows is None:
                continue
            summary.rows_read += n_read
            summary.rows_skipped += n_read - len(rows)
            summary.skipped.extend(skipped)
            parts.append(rows)
            given.append(path)  # the files of parts (messages name the file of a row)
    if not parts:  # every file a header only: refused as one alone is
        _prepare(files[0], data, required, folder_values(files[0], paths))
    combined, summary.rows_repeated = _combine(given, parts)
    if summary.rows_repeated:
        summary.notes.append(
            f"{summary.rows_repeated:,} row(s) appear in more than one file with the same key "
            "and the same values (overlapping exports): kept once"
        )
    try:  # what only the files together break (a column of numbers in one, text in another)
        rows = validate_campaigns(combined, extra_columns=data.extra_columns, required=required)
    except ContractError as exc:
        names = list(combined.columns)
        found = [(v, None, config_key(v.column, v.rule, data, names)) for v in exc.violations]
        raise _refusal("the exports", found) from None
    if len(files) > 1:  # day and month swapped across a folder of one-day files
        refuse_monthly_days(rows["date"], data.date_format, "date", "the exports")
    summary.notes.extend(running_day_note(rows) + money_unit_notes(rows))
    return rows, summary


def load_exports(
    paths: Sequence[str | Path] | str | Path,
    data: DataConfig,
    *,
    dry_run: bool = False,
    progress: ProgressFactory | None = None,
) -> LoadSummary:
    """Read exports, apply the config's transforms and mapping, validate and append them.

    Parameters
    ----------
    paths : str, Path or sequence of them
        CSV/Parquet files or folders of them (see :func:`export_files`).
    data : DataConfig
        The config's ``data:`` section: store, transforms, mapping and policies.
    dry_run : bool, default False
        Do everything but write.
    progress : ProgressFactory, optional
        Called with ``("load", n_files)``; advanced once per file read.

    Returns
    -------
    LoadSummary

    Raises
    ------
    ContractError
        A file breaks the contract (or a transform cannot apply) and the policy refuses it; the
        message names the file, the column, the rule and the config key. Nothing is written.
    TabTuneInputError
        A path is missing or unreadable.
    """
    rows, summary = prepare_exports(paths, data, progress=progress)
    summary.dry_run = dry_run
    summary.replace_restated = data.restated_rows == "replace"
    store = CampaignStore(data.store)
    store.check_columns(rows)  # before reading keys: a column the store lacks is refused
    known = store.already_stored(rows)  # what append skips
    summary.notes.extend(check_against_store(store, rows, data, known))
    summary.rows_already_stored = int(known.sum())
    restated = rows.iloc[0:0]
    if known.any():
        restated = rows[known][stored_differently(store, rows[known])]
        summary.rows_restated, summary.restated = len(restated), restated_days(restated)
    summary.brands = _per_brand(rows, ~known)
    if len(restated) and summary.replace_restated:
        check_restated(store, restated)  # refused before anything is written, dry run too
    if not dry_run and (~known).any():
        result = store.append(rows, extra_columns=data.extra_columns)
        summary.rows_written = result.rows_written
    if not dry_run and len(restated) and summary.replace_restated:
        summary.rows_replaced = replace_restated(store, restated).rows_replaced
    return summary
