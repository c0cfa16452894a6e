"""Store locks: a read waits for an append (and its merge) in another process to finish, and a
read inside the same thread's append does not wait for itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tabtune.data import locking
from tabtune.data.store import CampaignStore
from tabtune.data.synth import simulate

pytest.importorskip("fcntl")


@pytest.fixture()
def store(tmp_path: Path) -> CampaignStore:
    obs = simulate(n_brands=2, n_days=20, seed=4).observations
    store = CampaignStore(tmp_path / "store")
    store.append(obs)
    return store


def _read_in_thread(store: CampaignStore) -> tuple[threading.Thread, dict[str, pd.DataFrame]]:
    got: dict[str, pd.DataFrame] = {}
    thread = threading.Thread(target=lambda: got.update(rows=store.read()), daemon=True)
    thread.start()
    return thread, got


def test_a_read_waits_while_another_process_holds_the_append_lock(store, tmp_path) -> None:
    held, release = tmp_path / "held", tmp_path / "release"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import pathlib, time
                from tabtune.data import locking
                with locking.exclusive(pathlib.Path({str(store.root)!r})):
                    pathlib.Path({str(held)!r}).touch()
                    while not pathlib.Path({str(release)!r}).exists():
                        time.sleep(0.02)
                """
            ),
        ]
    )
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert holder.poll() is None, "the lock holder exited early"
            assert time.monotonic() < deadline, "the lock holder never took the lock"
            time.sleep(0.02)
        thread, got = _read_in_thread(store)
        thread.join(0.5)
        assert thread.is_alive(), "the read did not wait for the append lock"
        release.touch()
        thread.join(60)
        assert not thread.is_alive()
        assert len(got["rows"]) == len(store.read())
    finally:
        release.touch()
        holder.wait(60)


def test_a_read_inside_the_same_threads_append_lock_does_not_wait(store) -> None:
    done: dict[str, int] = {}

    def read_while_appending() -> None:
        with locking.exclusive(store.root):
            done["rows"] = len(store.read())

    thread = threading.Thread(target=read_while_appending, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "a read inside the thread's own append lock deadlocked"
    assert done["rows"] > 0


def test_a_read_in_another_thread_waits_for_the_append_lock(store) -> None:
    with locking.exclusive(store.root):
        thread, got = _read_in_thread(store)
        thread.join(0.5)
        assert thread.is_alive(), "a read in another thread did not wait for the append lock"
    thread.join(60)
    assert not thread.is_alive() and len(got["rows"]) > 0


def test_a_store_without_its_lock_file_is_read_unlocked(store) -> None:
    rows = store.read()
    (store.root / locking.LOCK_FILE).unlink()
    pd.testing.assert_frame_equal(store.read(), rows)
    assert not (store.root / locking.LOCK_FILE).exists()  # a read creates nothing
