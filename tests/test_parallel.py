"""Tests of tabtune.parallel beyond the refresh's use of it (tests/test_refresh.py)."""

from __future__ import annotations

import sys
import types

import pytest

from tabtune.errors import TabTuneInputError
from tabtune.parallel import make_executor


def test_process_executor_refuses_a_main_script_read_from_stdin(monkeypatch) -> None:
    # `python - < night.py`: every spawned worker died re-importing '<stdin>', and every brand
    # failed as "out of memory, or a crash in a native library"
    fake = types.ModuleType("__main__")
    fake.__file__ = "<stdin>"
    monkeypatch.setitem(sys.modules, "__main__", fake)
    with pytest.raises(TabTuneInputError, match=r"not read from a file \(<stdin>\).*'inline'"):
        make_executor("process", n_workers=1)
    del fake.__file__  # an interactive session or a notebook: workers start
    with make_executor("process", n_workers=1) as ex:
        assert [(o.key, o.value) for o in ex.run(abs, {"a": (-1,)})] == [("a", 1)]
