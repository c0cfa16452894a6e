"""The optional-dependency helper, and that importing tabtune imports none of them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tabtune.optional import (
    OptionalDependencyError,
    install_hint,
    is_available,
    optional_import,
    require,
)

HEAVY = ("cupy", "dask", "distributed", "mlflow", "matplotlib", "gpboost")


def test_import_tabtune_imports_no_optional_dependency() -> None:
    code = (
        "import sys, tabtune, tabtune.optional, tabtune.boosting, tabtune.estimators, "
        "tabtune.transfer, tabtune.parallel, tabtune.registry, tabtune.report, "
        "tabtune.data.synth, tabtune.tasks.plots; "
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_missing_module_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tabtune_missing_dep", None)
    hint = install_hint("tabtune_missing_dep", extra="plot", purpose="plotting")
    assert hint == "plotting needs tabtune_missing_dep: pip install tabtune[plot]"
    with pytest.raises(OptionalDependencyError) as info:
        optional_import("tabtune_missing_dep", extra="plot", purpose="plotting")
    assert str(info.value) == hint
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)
    with pytest.raises(ImportError, match=r"pip install tabtune\[plot\]"):
        require("tabtune_missing_dep", extra="plot", purpose="plotting")
    assert not is_available("tabtune_missing_dep")
    assert not is_available("tabtune_surely_not_installed_anywhere")


def test_available_module_is_imported_only_on_request() -> None:
    code = (
        "import sys; from tabtune.optional import is_available, optional_import, require; "
        "assert is_available('json') and is_available('sys'); "
        "assert is_available('wave') and 'wave' not in sys.modules; "
        "require('wave', extra='x', purpose='y'); assert 'wave' not in sys.modules; "
        "assert optional_import('wave', extra='x', purpose='y') is sys.modules['wave']"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
