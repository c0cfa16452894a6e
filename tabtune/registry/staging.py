"""Temporary directories of publishes in progress: their names, and sweeping the dead ones.

A publish writes into ``<scope>/.tmp-<host>-<pid>-<random>`` and renames it to ``vNNNN``. A
process that dies first leaves that directory behind; the next publish in the scope removes it
once its process is known dead (same host) or it is a day old (another host, on a shared file
system, whose pids cannot be checked).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from tabtune.registry.locks import host_tag, pid_alive

__all__ = ["TMP_PREFIX", "clean_stale_tmp", "staging_prefix"]

# One logger for the whole registry package, named as before it was split into modules.
logger = logging.getLogger("tabtune.registry")

TMP_PREFIX = ".tmp-"
# A temporary directory from another host (shared file system) cannot be checked for a live
# pid; it is treated as stale once it is this old.
_FOREIGN_TMP_MAX_AGE_S = 24 * 3600.0


def staging_prefix() -> str:
    """Return the name prefix of this process's temporary directories: ``.tmp-<host>-<pid>-``."""
    return f"{TMP_PREFIX}{host_tag()}-{os.getpid()}-"


def clean_stale_tmp(scope: Path, *, keep: Path) -> None:
    """Remove temporary directories of publishes whose process died (called under the lock).

    Parameters
    ----------
    scope : Path
        The task folder.
    keep : Path
        The caller's own temporary directory, never removed.
    """
    now = time.time()
    for entry in os.scandir(scope):
        if not entry.name.startswith(TMP_PREFIX) or entry.path == str(keep):
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        host, _, rest = entry.name[len(TMP_PREFIX) :].rpartition("-")
        host, _, pid_text = host.rpartition("-")
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        if host == host_tag() and pid_text.isdigit():
            stale = not pid_alive(int(pid_text))
        else:
            stale = age > _FOREIGN_TMP_MAX_AGE_S
        if stale:
            logger.info("removing stale temporary directory %s", entry.path)
            shutil.rmtree(entry.path, ignore_errors=True)
