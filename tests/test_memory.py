"""Giving freed memory back between the phases of a large job (tabtune.memory)."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pytest

from tabtune import memory


def test_release_leaves_live_data_alone():
    kept = pa.array(np.arange(1_000_000, dtype=np.int64))
    dropped = pa.array(np.arange(2_000_000, dtype=np.float64))
    in_use = pa.default_memory_pool().bytes_allocated()
    del dropped
    memory.release_unused_memory()
    assert pa.default_memory_pool().bytes_allocated() <= in_use
    assert kept.to_numpy()[-1] == 999_999 and kept.sum().as_py() == 999_999 * 1_000_000 // 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_linux_trims_the_c_heap():
    assert memory._malloc_trim() is not None


def test_no_malloc_trim_elsewhere(monkeypatch):
    memory._malloc_trim.cache_clear()
    monkeypatch.setattr(sys, "platform", "darwin")
    try:
        assert memory._malloc_trim() is None
        memory.release_unused_memory()  # still releases Arrow's pool, no error
    finally:
        memory._malloc_trim.cache_clear()


def test_arrow_on_the_c_heap_restores_the_default_pool():
    before = pa.default_memory_pool().backend_name
    with memory.arrow_on_the_c_heap():
        assert pa.default_memory_pool().backend_name == "system"
        table = pa.table({"x": np.arange(10)})
    assert pa.default_memory_pool().backend_name == before
    assert table.column("x").to_pylist() == list(range(10))  # still readable after
    with pytest.raises(RuntimeError), memory.arrow_on_the_c_heap():
        raise RuntimeError("boom")
    assert pa.default_memory_pool().backend_name == before
