"""Tests for tabtune.atomic: atomic file writes and staged directories."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from tabtune import atomic
from tabtune.atomic import (
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    publish_dir,
    staging_dir,
    write_durable,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_bytes_replaces_and_returns_the_digest(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.bin"
    assert atomic_write_bytes(target, b"old") == hashlib.sha256(b"old").hexdigest()
    assert atomic_write_text(target, "néw") == hashlib.sha256("néw".encode()).hexdigest()
    assert target.read_text(encoding="utf-8") == "néw"
    assert os.listdir(target.parent) == ["b.bin"]


def test_a_failed_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write(b"half")
        seen = sorted(os.listdir(tmp_path))
        raise RuntimeError("crash")
    assert len(seen) == 2 and seen[0].startswith(".f.txt.") and seen[0].endswith(".tmp")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_mode_and_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    old_umask = os.umask(0o077)
    try:
        atomic_write_bytes(tmp_path / "cache", b"x", mode=0o644, durable=False)
        assert synced == []
        atomic_write_bytes(tmp_path / "plain", b"x")
        assert len(synced) == 2  # the file, then its folder
    finally:
        os.umask(old_umask)
    assert _mode(tmp_path / "cache") == 0o644  # whatever the umask
    assert _mode(tmp_path / "plain") == 0o600  # 0o666 less the umask


def test_staging_dir_is_removed_unless_published(tmp_path: Path) -> None:
    with pytest.raises(ValueError), staging_dir(tmp_path, prefix=".tmp-x-") as tmp:
        write_durable(tmp / "m.txt", b"half")
        assert tmp.name.startswith(".tmp-x-") and tmp.parent == tmp_path
        raise ValueError
    assert os.listdir(tmp_path) == []

    with staging_dir(tmp_path / "scope", prefix=".tmp-", mode=0o700) as tmp:
        write_durable(tmp / "m.txt", b"v1")
        assert _mode(tmp) == 0o700
        publish_dir(tmp, tmp_path / "scope" / "v0001")
    assert os.listdir(tmp_path / "scope") == ["v0001"]
    assert (tmp_path / "scope" / "v0001" / "m.txt").read_bytes() == b"v1"


def test_publish_dir_refuses_or_replaces_an_existing_directory(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "m.txt").write_bytes(b"old")
    with staging_dir(tmp_path, prefix=".new-") as tmp:
        write_durable(tmp / "m.txt", b"new")
        with pytest.raises(OSError):
            publish_dir(tmp, target)  # not replace: an existing directory stays
        assert (target / "m.txt").read_bytes() == b"old"
        publish_dir(tmp, target, replace=True)
    assert (target / "m.txt").read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["model"]  # nothing moved aside is left


def test_publish_dir_puts_the_old_directory_back_if_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "m.txt").write_bytes(b"old")
    real_replace = os.replace

    def failing_replace(src: object, dst: object) -> None:
        if Path(str(dst)) == target and ".new-" in str(src):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with staging_dir(tmp_path, prefix=".new-") as tmp:
        write_durable(tmp / "m.txt", b"new")
        with pytest.raises(OSError, match="disk full"):
            publish_dir(tmp, target, replace=True)
    assert (target / "m.txt").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model"]
