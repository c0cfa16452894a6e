"""``tabtune models gc``: delete the model versions the retention policy does not keep."""

from __future__ import annotations

import argparse
import json

from tabtune.cli.console import console
from tabtune.cli.exit_codes import EXIT_OK
from tabtune.config import Config
from tabtune.pipeline import registry_for
from tabtune.refresh.run import LOCK_NAME
from tabtune.registry import RegistryLockedError

__all__ = ["cmd_models_gc", "format_bytes"]

#: At most this many deleted ids are printed (all of them with --json).
_SHOWN = 20


def format_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KB"`` (powers of 1000, as ``du --si``)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover


def cmd_models_gc(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune models gc [--dry-run] [--keep N] [--json]``.

    Holds the refresh lock (a running refresh is refused, not waited for), then deletes what
    :meth:`tabtune.registry.ModelRegistry.gc` does not keep and prints what it freed.
    """
    reg = registry_for(cfg)
    keep = args.keep if args.keep is not None else cfg.registry.keep_versions
    try:
        with reg.lock(LOCK_NAME, timeout=0):
            result = reg.gc(keep, dry_run=args.dry_run)
    except RegistryLockedError as exc:
        raise RegistryLockedError(
            f"a refresh is running (or a command that writes: pretrain, bids, ...); try gc "
            f"after it ({exc})"
        ) from None
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return EXIT_OK
    con = console()
    verb = "would delete" if args.dry_run else "deleted"
    for model_id in result.deleted[:_SHOWN]:
        con.print(f"{verb} {model_id}")
    if len(result.deleted) > _SHOWN:
        con.print(f"... and {len(result.deleted) - _SHOWN} more (--json lists them all)")
    for note in result.notes:
        con.print(f"note: {note}")
    freed = "would free" if args.dry_run else "freed"
    con.print(
        f"{verb} {len(result.deleted)} versions, {freed} {format_bytes(result.freed_bytes)}; "
        f"kept {result.kept} (registry.keep_versions={keep}, plus champions, rollback targets "
        "and the bases of kept versions)"
    )
    return EXIT_OK
