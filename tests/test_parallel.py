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
    fake.__spec__ = types.SimpleNamespace(name="__main__")  # a zip app: imported by name
    make_executor("process", n_workers=1).close()
    fake.__spec__ = None
    del fake.__file__  # an interactive session or a notebook: workers start
    with make_executor("process", n_workers=1) as ex:
        assert [(o.key, o.value) for o in ex.run(abs, {"a": (-1,)})] == [("a", 1)]


def test_workers_that_cannot_start_stop_the_run_with_the_reason(monkeypatch, tmp_path) -> None:
    # a script that starts the refresh at its top level runs it again in every spawned worker,
    # which dies there: every brand failed, each as "out of memory, or a crash"
    from tabtune.parallel import WorkerStartError

    script = tmp_path / "night.py"
    script.write_text("raise SystemExit('the refresh again, refused: another refresh runs')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    with make_executor("process", n_workers=2) as ex:
        with pytest.raises(WorkerStartError, match=r"no worker process could start.*__main__"):
            list(ex.run(abs, {"a": (-1,), "b": (-2,), "c": (-3,)}))
    script.write_text("")  # a script that only defines things: the workers start
    with make_executor("process", n_workers=2) as ex:
        assert sorted(o.value for o in ex.run(abs, {"a": (-1,), "b": (-2,)})) == [1, 2]
