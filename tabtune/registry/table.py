"""Plain-text table of :meth:`ModelRegistry.list` rows (``tabtune models list``)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_registry_table"]


def format_registry_table(rows: list[dict[str, Any]]) -> str:
    """Render :meth:`ModelRegistry.list` rows as a plain-text table (``tabtune models list``).

    Parameters
    ----------
    rows : list of dict
        Rows with ``brand``, ``task``, ``versions``, ``champion`` and ``latest``; with
        ``status`` (``ModelRegistry.list(verify=True)``) a ``STATUS`` column shows it.

    Returns
    -------
    str
        Aligned columns with a header; ``"(no models)"`` when ``rows`` is empty.
    """
    if not rows:
        return "(no models)"
    status = any("status" in row for row in rows)
    served = {r.get("task") for r in rows if r.get("brand") is None and r.get("champion")}
    header = ("BRAND", "TASK", "VERSIONS", "CHAMPION", "LATEST", *(("STATUS",) if status else ()))
    body = [
        (
            "(global)" if row.get("brand") is None else str(row["brand"]),
            str(row.get("task", "")),
            str(row.get("versions", 0)),
            row.get("champion") or _no_champion(row, served),
            row.get("latest") or "-",
            *((row.get("status") or "-",) if status else ()),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(w) if i == 2 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), fmt(tuple("-" * w for w in widths)), *map(fmt, body)])


def _no_champion(row: dict[str, Any], served: set[Any]) -> str:
    """A row without a champion: ``global`` for a brand the task's global champion serves
    (one token: the table splits on spaces), ``-`` otherwise."""
    return "global" if row.get("brand") is not None and row.get("task") in served else "-"
