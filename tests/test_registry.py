"""Tests for tabtune.registry: versions, champions, manifests, checksums, locks."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.registry import (
    ModelRef,
    ModelRegistry,
    RegistryLockedError,
    format_registry_table,
    library_versions,
)

REPO = Path(__file__).resolve().parents[1]


def text_writer(content: str = "tree 0\n", name: str = "model.txt"):
    """Return a writer that stores one text file (stand-in for a native model file)."""

    def write(directory: Path) -> None:
        (directory / name).write_text(content)

    return write


def run_python(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports tabtune from this checkout."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def reg(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------- publish and versions


def test_publish_numbers_versions_and_lays_out_files(reg: ModelRegistry) -> None:
    refs = [reg.publish("bid", text_writer(f"tree {i}\n")) for i in range(3)]

    assert [r.version for r in refs] == ["v0001", "v0002", "v0003"]
    assert refs[2].id == "global/bid/v0003"
    assert refs[2].path == reg.root / "global" / "bid" / "v0003"
    assert (refs[0].path / "model.txt").read_text() == "tree 0\n"
    assert sorted(p.name for p in refs[0].path.iterdir()) == ["manifest.json", "model.txt"]
    assert reg.versions("bid") == refs
    assert reg.versions("budget") == []
    assert reg.champion("bid") is None  # publishing alone promotes nothing
    # Nothing temporary is left behind in the task folder.
    assert sorted(p.name for p in (reg.root / "global" / "bid").iterdir()) == [
        "v0001",
        "v0002",
        "v0003",
    ]


def test_version_numbers_never_reused_and_sort_numerically(reg: ModelRegistry) -> None:
    scope = reg.scope_dir("bid")
    scope.mkdir(parents=True)
    (scope / "v9999").mkdir()  # e.g. a version restored from a backup
    (scope / "v9999" / "manifest.json").write_text("{}")
    (scope / "v10001").mkdir()  # an empty folder made by hand: not a version, not reused
    ref = reg.publish("bid", text_writer())
    assert ref.version == "v10002"
    assert [r.version for r in reg.versions("bid")] == ["v9999", "v10002"]
    # it was listed as the newest version (registry red-team)
    assert reg.list()[0]["latest"] == "v10002"


def test_manifest_contents(reg: ModelRegistry) -> None:
    def writer(d: Path) -> None:
        (d / "model.json").write_bytes(b'{"trees": []}')
        (d / "extra").mkdir()
        (d / "extra" / "categories.json").write_text('["a", "b"]')

    user = {
        "params": {"num_leaves": np.int64(31), "learning_rate": np.float32(0.5)},
        "metrics": {
            "rmse": np.float64(1.25),
            "auc": float("nan"),
            "gain": np.float64("inf"),
            "ok": np.bool_(True),
        },
        "importances": np.array([1, 2, 3]),
        "data_window": (dt.date(2025, 1, 1), dt.date(2025, 3, 31)),
        "base_model": Path("models/global/bid/v0001"),
        "id": "user value is overridden",
    }
    ref = reg.publish("bid", writer, brand="b001", manifest=user)
    man = reg.manifest(ref)

    assert man["format_version"] == 2  # 2: sealed manifests
    assert man["id"] == "brands/b001/bid/v0001"
    assert (man["task"], man["brand"], man["version"]) == ("bid", "b001", "v0001")
    created = dt.datetime.fromisoformat(man["created_at"])
    assert created.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60
    assert man["files"] == {
        "extra/categories.json": hashlib.sha256(b'["a", "b"]').hexdigest(),
        "model.json": hashlib.sha256(b'{"trees": []}').hexdigest(),
    }
    libs = man["library_versions"]
    assert libs["python"] == ".".join(map(str, sys.version_info[:3]))
    assert libs["numpy"] == np.__version__
    assert {"pandas", "lightgbm", "xgboost", "scikit-learn", "tabtune"} <= set(libs)
    assert libs == library_versions()
    assert man["params"] == {"num_leaves": 31, "learning_rate": 0.5}
    assert man["metrics"] == {"rmse": 1.25, "auc": None, "gain": None, "ok": True}
    assert man["importances"] == [1, 2, 3]
    assert man["data_window"] == ["2025-01-01", "2025-03-31"]
    assert man["base_model"] == "models/global/bid/v0001"
    # manifest() is JSON-ready and is exactly what is on disk.
    assert json.loads(json.dumps(man)) == man
    assert json.loads((ref.path / "manifest.json").read_text()) == man


def test_library_versions_do_not_import_heavy_modules() -> None:
    proc = run_python(
        """
        import sys
        from tabtune.registry import library_versions
        v = library_versions()
        assert "python" in v, v
        heavy = {"numpy", "pandas", "lightgbm", "xgboost", "sklearn"} & set(sys.modules)
        assert not heavy, heavy
        """
    )
    assert proc.returncode == 0, proc.stderr


def test_non_json_manifest_value_is_a_type_error_naming_the_key(reg: ModelRegistry) -> None:
    called = []
    with pytest.raises(TypeError, match=r"manifest\['params'\]\['callback'\].*object"):
        reg.publish(
            "bid",
            lambda d: called.append(d),
            manifest={"params": {"callback": object()}},
        )
    with pytest.raises(TypeError, match=r"key 3 of type int"):
        reg.publish("bid", text_writer(), manifest={"metrics": {3: 1.0}})
    assert called == []  # rejected before any model was written
    assert reg.versions("bid") == []


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=8,
        ),
        max_size=4,
    )
)
def test_json_manifest_values_round_trip(user: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        reg = ModelRegistry(tmp)
        man = reg.manifest(reg.publish("bid", text_writer(), manifest=user))
    reserved = {"format_version", "id", "task", "brand", "version", "created_at", "files"}
    for key, value in user.items():
        if key not in reserved | {"library_versions"}:
            assert man[key] == value


# ---------------------------------------------------------------------- failures while publishing


def test_writer_failure_publishes_nothing_and_keeps_champion(reg: ModelRegistry) -> None:
    good = reg.publish("bid", text_writer(), promote=True)

    def broken(d: Path) -> None:
        (d / "model.txt").write_text("half a mod")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        reg.publish("bid", broken, promote=True)

    assert reg.versions("bid") == [good]
    assert reg.champion("bid") == good
    assert sorted(p.name for p in good.path.parent.iterdir()) == ["CHAMPION", "v0001"]
    # The failed attempt did not burn a version number.
    assert reg.publish("bid", text_writer()).version == "v0002"


@pytest.mark.parametrize(
    ("writer", "message"),
    [
        (lambda d: None, "wrote no files"),
        (lambda d: (d / "manifest.json").write_text("{}"), "registry owns"),
        (lambda d: (d / "link").symlink_to("/etc/hostname"), "symlink"),
    ],
)
def test_bad_writer_output_is_rejected(reg: ModelRegistry, writer, message: str) -> None:
    with pytest.raises(TabTuneInputError, match=message):
        reg.publish("bid", writer)
    assert reg.versions("bid") == []
    assert [p.name for p in reg.scope_dir("bid").iterdir()] == []


def test_crashed_publish_leaves_temp_dir_that_is_ignored_then_cleaned(reg: ModelRegistry) -> None:
    reg.publish("bid", text_writer(), promote=True)
    # A process dies in the middle of writing a model (no cleanup code can run).
    proc = run_python(
        """
        import os, sys
        from tabtune.registry import ModelRegistry

        def dies(d):
            (d / "model.txt").write_text("half")
            os._exit(7)

        ModelRegistry(sys.argv[1]).publish("bid", dies, promote=True)
        """,
        str(reg.root),
    )
    assert proc.returncode == 7, proc.stderr
    scope = reg.scope_dir("bid")
    stale = [p for p in scope.iterdir() if p.name.startswith(".")]
    assert len(stale) == 1 and (stale[0] / "model.txt").exists()

    assert [r.version for r in reg.versions("bid")] == ["v0001"]
    assert reg.champion("bid").version == "v0001"
    assert reg.list()[0]["versions"] == 1

    # A live publish in another thread/process must not be swept away: its pid is alive.
    live = scope / f".tmp-{stale[0].name.split('-')[1]}-{os.getpid()}-inprogress"
    live.mkdir()
    assert reg.publish("bid", text_writer("v2")).version == "v0002"
    assert not stale[0].exists()
    assert live.exists()


# ---------------------------------------------------------------------- champions


def test_champion_promote_and_pointer_format(reg: ModelRegistry) -> None:
    v1 = reg.publish("bid", text_writer("1"), promote=True)
    v2 = reg.publish("bid", text_writer("2"))
    pointer = reg.scope_dir("bid") / "CHAMPION"

    assert reg.champion("bid") == v1
    assert pointer.read_text() == "v0001\n"
    reg.promote(v2)
    assert reg.champion("bid") == v2
    assert pointer.read_text() == "v0002\n"
    assert not (pointer.parent / "CHAMPION.tmp").exists()
    v3 = reg.publish("bid", text_writer("3"), promote=True)
    assert reg.champion("bid") == v3 == reg.resolve("bid")


def test_promote_refuses_corrupt_version_and_foreign_refs(
    reg: ModelRegistry, tmp_path: Path
) -> None:
    v1 = reg.publish("bid", text_writer("1"), promote=True)
    v2 = reg.publish("bid", text_writer("2"))
    flip_byte(v2.path / "model.txt")
    with pytest.raises(ModelIntegrityError, match="model.txt"):
        reg.promote(v2)
    assert reg.champion("bid") == v1

    other = ModelRegistry(tmp_path / "elsewhere")
    foreign = other.publish("bid", text_writer())
    with pytest.raises(TabTuneInputError, match="not in registry"):
        reg.promote(foreign)
    assert reg.champion("bid") == v1


def test_champion_pointing_at_missing_version_is_an_integrity_error(reg: ModelRegistry) -> None:
    reg.publish("bid", text_writer())
    (reg.scope_dir("bid") / "CHAMPION").write_text("v0042\n")
    with pytest.raises(ModelIntegrityError, match="v0042.*does not exist"):
        reg.champion("bid")
    (reg.scope_dir("bid") / "CHAMPION").write_text("garbage")
    with pytest.raises(ModelIntegrityError, match="corrupt"):
        reg.champion("bid")


# ---------------------------------------------------------------------- verification


def test_verify_passes_on_intact_version(reg: ModelRegistry) -> None:
    ref = reg.publish("bid", text_writer("x" * 5000))
    reg.verify(ref)


def test_verify_detects_flipped_byte_naming_file_and_hashes(reg: ModelRegistry) -> None:
    ref = reg.publish("bid", text_writer("tree 0 leaf 0.25\n"))
    expected = hashlib.sha256(b"tree 0 leaf 0.25\n").hexdigest()
    flip_byte(ref.path / "model.txt", offset=7)
    actual = hashlib.sha256((ref.path / "model.txt").read_bytes()).hexdigest()

    with pytest.raises(ModelIntegrityError) as info:
        reg.verify(ref)
    message = str(info.value)
    assert "model.txt" in message and expected in message and actual in message
    assert "global/bid/v0001" in message


def test_verify_detects_missing_file_extra_file_and_bad_manifest(reg: ModelRegistry) -> None:
    ref = reg.publish("bid", text_writer())
    (ref.path / "model.txt").unlink()
    with pytest.raises(ModelIntegrityError, match="'model.txt' is missing"):
        reg.verify(ref)

    ref = reg.publish("bid", text_writer())
    (ref.path / "sneaky.txt").write_text("added later")
    with pytest.raises(ModelIntegrityError, match="sneaky.txt"):
        reg.verify(ref)

    ref = reg.publish("bid", text_writer())
    (ref.path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        reg.verify(ref)

    ref = reg.publish("bid", text_writer())
    (ref.path / "manifest.json").unlink()
    with pytest.raises(ModelIntegrityError, match="manifest.json is missing"):
        reg.verify(ref)


def test_verify_rejects_copied_version_and_newer_format(reg: ModelRegistry) -> None:
    v1 = reg.publish("bid", text_writer())
    man = reg.manifest(v1)
    man["format_version"] = 3
    (v1.path / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelIntegrityError, match="newer"):
        reg.verify(v1)

    v2 = reg.publish("bid", text_writer())
    clone = v2.path.parent / "v0003"
    clone.mkdir()
    for f in v2.path.iterdir():
        (clone / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ModelIntegrityError, match="moved or copied"):
        reg.verify(reg.ref("bid", "v0003"))


# ---------------------------------------------------------------------- resolve and rollback


def test_resolve_falls_back_to_newest_good_older_version(
    reg: ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    v1 = reg.publish("bid", text_writer("1"))
    v2 = reg.publish("bid", text_writer("2"))
    v3 = reg.publish("bid", text_writer("3"), promote=True)
    reg.publish("bid", text_writer("4 (newer, never promoted)"))
    assert reg.resolve("bid") == v3 and reg.resolve("bid").fallback_from is None

    flip_byte(v3.path / "model.txt")
    with caplog.at_level(logging.WARNING, logger="tabtune.registry"):
        got = reg.resolve("bid")
    assert got == v2  # not v0004: a fallback never jumps to an unpromoted newer model
    assert got.fallback_from == "v0003"
    assert "v0003" in caplog.text and "serving global/bid/v0002" in caplog.text
    assert reg.champion("bid") == v3  # resolve reads; it does not move the pointer

    (v2.path / "model.txt").unlink()
    assert reg.resolve("bid") == v1
    flip_byte(v1.path / "model.txt")
    with caplog.at_level(logging.ERROR, logger="tabtune.registry"):
        assert reg.resolve("bid") is None
    assert "nothing to serve" in caplog.text


def test_resolve_without_champion_and_with_broken_pointer(reg: ModelRegistry) -> None:
    assert reg.resolve("bid") is None  # empty registry
    reg.publish("bid", text_writer("1"))
    v2 = reg.publish("bid", text_writer("2"))
    assert reg.resolve("bid") is None  # versions but none promoted
    (reg.scope_dir("bid") / "CHAMPION").write_text("\x00\x01junk")
    got = reg.resolve("bid")
    assert got == v2 and got.fallback_from == "<unreadable>"


def test_rollback_moves_champion_back(reg: ModelRegistry) -> None:
    v1 = reg.publish("bid", text_writer("1"), promote=True)
    v2 = reg.publish("bid", text_writer("2"), promote=True)
    v3 = reg.publish("bid", text_writer("3"), promote=True)

    assert reg.rollback("bid") == v2
    assert reg.champion("bid") == v2
    assert reg.rollback("bid", to="v0003") == v3
    assert reg.champion("bid") == v3

    flip_byte(v2.path / "model.txt")  # a corrupt previous version is skipped
    assert reg.rollback("bid") == v1
    with pytest.raises(ModelIntegrityError):
        reg.rollback("bid", to="v0002")
    assert reg.champion("bid") == v1
    with pytest.raises(TabTuneInputError, match="no version v0009"):
        reg.rollback("bid", to="v0009")


def test_rollback_with_nothing_earlier_is_a_clear_error(reg: ModelRegistry) -> None:
    with pytest.raises(TabTuneInputError, match="no champion to roll back from"):
        reg.rollback("bid")
    v1 = reg.publish("bid", text_writer(), promote=True)
    with pytest.raises(TabTuneInputError, match="nothing earlier to roll back to"):
        reg.rollback("bid")
    assert reg.champion("bid") == v1


# ---------------------------------------------------------------------- scopes and names


def test_global_and_brand_scopes_do_not_mix(reg: ModelRegistry) -> None:
    g = reg.publish("bid", text_writer("global"), promote=True)
    a1 = reg.publish("bid", text_writer("a"), brand="acme", promote=True)
    a2 = reg.publish("bid", text_writer("a2"), brand="acme")
    b1 = reg.publish("budget", text_writer("b"), brand="beta")

    assert (g.version, a1.version, b1.version) == ("v0001", "v0001", "v0001")
    assert a1.id == "brands/acme/bid/v0001"
    assert a1.path == reg.root / "brands" / "acme" / "bid" / "v0001"
    assert reg.versions("bid") == [g]
    assert reg.versions("bid", brand="acme") == [a1, a2]
    assert reg.versions("bid", brand="beta") == []
    assert reg.champion("bid", brand="beta") is None
    assert reg.champion("bid", brand="acme") == a1

    reg.promote(a2)
    assert reg.champion("bid") == g
    reg.rollback("bid", brand="acme")
    assert reg.champion("bid", brand="acme") == a1
    assert reg.from_id("global/bid/v0001") == g
    assert reg.from_id("brands/acme/bid/v0002") == a2


def test_list_rows_and_table(reg: ModelRegistry) -> None:
    assert reg.list() == []
    assert format_registry_table([]) == "(no models)"
    reg.publish("bid", text_writer(), promote=True)
    reg.publish("bid", text_writer())
    reg.publish("bid", text_writer(), brand="acme")
    reg.publish("budget", text_writer(), brand="acme", promote=True)

    rows = reg.list()
    assert rows == [
        {
            "id": "global/bid",
            "scope": "global",
            "brand": None,
            "task": "bid",
            "versions": 2,
            "champion": "v0001",
            "latest": "v0002",
        },
        {
            "id": "brands/acme/bid",
            "scope": "brand",
            "brand": "acme",
            "task": "bid",
            "versions": 1,
            "champion": None,
            "latest": "v0001",
        },
        {
            "id": "brands/acme/budget",
            "scope": "brand",
            "brand": "acme",
            "task": "budget",
            "versions": 1,
            "champion": "v0001",
            "latest": "v0001",
        },
    ]
    assert json.loads(json.dumps(rows)) == rows
    lines = format_registry_table(rows).splitlines()
    assert lines[0].split() == ["BRAND", "TASK", "VERSIONS", "CHAMPION", "LATEST"]
    assert lines[2].split() == ["(global)", "bid", "2", "v0001", "v0002"]
    # a brand without a champion is served by the global model: said, in one token (it
    # showed "-"); "-" where the task has no global champion either
    assert lines[3].split() == ["acme", "bid", "1", "global", "v0001"]
    orphan = [{**rows[1], "task": "budget"}]
    assert format_registry_table(orphan).splitlines()[2].split()[3] == "-"
    assert len({len(line) for line in lines[:2]}) == 1


def test_list_with_verify_flags_a_corrupt_champion_without_failing(reg: ModelRegistry) -> None:
    # `models list` showed a champion whose model file no longer matched its checksum as if
    # it were healthy; the listing checks each champion and reports, never raises
    reg.publish("bid", text_writer(), promote=True)
    bad = reg.publish("bid", text_writer("tree 0 leaf 0.25\n"), promote=True)
    flip_byte(bad.path / "model.txt", offset=7)
    reg.publish("bid", text_writer(), brand="acme", promote=True)
    reg.publish("bid", text_writer(), brand="zed")  # no champion
    reg.publish("budget", text_writer(), brand="acme", promote=True)
    (reg.scope_dir("budget", "acme") / "CHAMPION").write_text("v0009\n")

    rows = {row["id"]: row for row in reg.list(verify=True)}
    glob = rows["global/bid"]
    assert glob["status"] == "corrupt" and glob["champion"] == "v0002"
    assert "'model.txt' is corrupt: expected sha256" in glob["problem"]
    assert (rows["brands/acme/bid"]["status"], rows["brands/acme/bid"]["problem"]) == ("ok", None)
    assert (rows["brands/zed/bid"]["status"], rows["brands/zed/bid"]["problem"]) == (None, None)
    assert rows["brands/acme/budget"]["status"] == "broken pointer"
    assert "v0009" in rows["brands/acme/budget"]["problem"]
    assert "status" not in reg.list()[0]  # checking is asked for: it reads every champion

    lines = format_registry_table(list(rows.values())).splitlines()
    assert lines[0].split() == ["BRAND", "TASK", "VERSIONS", "CHAMPION", "LATEST", "STATUS"]
    assert lines[2].split() == ["(global)", "bid", "2", "v0002", "v0002", "corrupt"]


@pytest.mark.parametrize("bad", ["", " ", "a/b", "..", "a..b", ".hidden", "a\\b", "x\x00"])
def test_invalid_names_are_rejected(reg: ModelRegistry, bad: str) -> None:
    with pytest.raises(TabTuneInputError, match=f"invalid task {bad!r}".replace("\\", "\\\\")):
        reg.publish(bad, text_writer())
    with pytest.raises(TabTuneInputError, match="invalid brand"):
        reg.publish("bid", text_writer(), brand=bad)
    with pytest.raises(TabTuneInputError, match="invalid brand"):
        reg.versions("bid", brand=bad)
    with pytest.raises(TabTuneInputError, match="invalid lock name"):
        with reg.lock(bad):
            pass
    assert not reg.root.exists() or reg.list() == []


def test_invalid_version_and_ids_are_rejected(reg: ModelRegistry) -> None:
    with pytest.raises(TabTuneInputError, match="invalid version"):
        reg.rollback("bid", to="../v0001")
    with pytest.raises(TabTuneInputError, match="model id"):
        reg.from_id("bid/v0001")
    with pytest.raises(TabTuneInputError, match="invalid version"):
        reg.verify(ModelRef("bid", None, "latest", reg.root / "global" / "bid" / "latest"))


# ---------------------------------------------------------------------- locks

_TRY_LOCK = """
import sys, time
from tabtune.registry import ModelRegistry, RegistryLockedError
start = time.monotonic()
try:
    with ModelRegistry(sys.argv[1]).lock(timeout=float(sys.argv[2])):
        print("acquired")
except RegistryLockedError as exc:
    print(f"locked after {time.monotonic() - start:.2f}: {exc}")
    sys.exit(3)
"""


def test_lock_excludes_a_second_process_until_released(reg: ModelRegistry) -> None:
    with reg.lock() as path:
        assert path == reg.root / ".locks" / "registry.lock"
        assert json.loads(path.read_text())["pid"] == os.getpid()
        held = run_python(_TRY_LOCK, str(reg.root), "0")
        waited = run_python(_TRY_LOCK, str(reg.root), "0.3")
        # Another lock name is independent.
        with reg.lock("other", timeout=0):
            pass
    free = run_python(_TRY_LOCK, str(reg.root), "0")

    assert held.returncode == 3, held.stderr
    assert "another run holds the lock" in held.stdout
    assert f"pid {os.getpid()}" in held.stdout
    assert waited.returncode == 3, waited.stderr
    assert float(waited.stdout.split()[2].rstrip(":")) >= 0.3
    assert free.returncode == 0, free.stderr
    assert free.stdout.strip() == "acquired"


def test_lock_is_released_when_the_holder_dies(reg: ModelRegistry) -> None:
    proc = run_python(
        """
        import os, sys
        from tabtune.registry import ModelRegistry
        ctx = ModelRegistry(sys.argv[1]).lock()
        ctx.__enter__()
        os._exit(0)  # no cleanup: the kernel drops the flock with the process
        """,
        str(reg.root),
    )
    assert proc.returncode == 0, proc.stderr
    with reg.lock(timeout=0):
        pass


def test_lock_timeout_in_process_and_error_type(reg: ModelRegistry) -> None:
    with reg.lock("refresh"):
        start = time.monotonic()
        # flock conflicts between open file descriptions even within one process.
        with pytest.raises(RegistryLockedError, match="another run holds the lock") as info:
            with reg.lock("refresh", timeout=0):
                pass
        assert time.monotonic() - start < 0.5
        assert isinstance(info.value, TabTuneInputError)
        # Publishing takes the registry's internal write lock, not the caller's run lock.
        reg.publish("bid", text_writer(), promote=True)
    with pytest.raises(TabTuneInputError, match="timeout"):
        with reg.lock(timeout=-1):
            pass


def test_concurrent_publishes_from_processes_get_distinct_versions(reg: ModelRegistry) -> None:
    code = """
    import sys
    from tabtune.registry import ModelRegistry
    reg = ModelRegistry(sys.argv[1])
    for i in range(4):
        reg.publish("bid", lambda d: (d / "m.txt").write_text(sys.argv[2] + str(i)),
                    promote=True)
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(reg.root), tag],
            env=env,
            stderr=subprocess.PIPE,
        )
        for tag in "ab"
    ]
    for p in procs:
        assert p.wait(timeout=30) == 0, p.stderr.read()

    refs = reg.versions("bid")
    assert [r.version for r in refs] == [f"v{i:04d}" for i in range(1, 9)]
    contents = sorted((r.path / "m.txt").read_text() for r in refs)
    assert contents == sorted(f"{t}{i}" for t in "ab" for i in range(4))
    for r in refs:
        reg.verify(r)
    assert reg.resolve("bid") is not None


# ---------------------------------------------------------------------- MLflow (optional)


def test_mlflow_not_configured_is_never_imported(
    reg: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry makes any `import mlflow` raise: publishing must not try.
    monkeypatch.setitem(sys.modules, "mlflow", None)
    ref = reg.publish("bid", text_writer(), promote=True)
    reg.verify(ref)
    with pytest.raises(ImportError, match=r"pip install tabtune\[mlflow\]"):
        ModelRegistry(reg.root, mlflow_uri="file:///tmp/mlruns")


def test_mlflow_configured_logs_manifest_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a client of its own: the process's tracking URI and a caller's active run were
    replaced (the caller's next log_metric failed), and a caller's active run made the mirror
    log nothing (config red-team)."""
    import types

    calls: list[tuple] = []

    class Client:
        def __init__(self, tracking_uri: str) -> None:
            calls.append(("uri", tracking_uri))

        def get_experiment_by_name(self, name: str) -> None:
            return None

        def create_experiment(self, name: str) -> str:
            calls.append(("experiment", name))
            return "7"

        def create_run(self, exp_id: str, run_name: str, tags: dict) -> object:
            calls.append(("run", exp_id, run_name, tags["tabtune.id"]))
            return types.SimpleNamespace(info=types.SimpleNamespace(run_id="r1"))

        def log_dict(self, run_id: str, d: dict, name: str) -> None:
            calls.append(("dict", d["id"], name))

        def log_artifacts(self, run_id: str, path: str, artifact_path: str) -> None:
            calls.append(("files", sorted(os.listdir(path))))

        def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
            calls.append(("end", status))

    fake = types.ModuleType("mlflow")
    fake.MlflowClient = Client
    fake.set_tracking_uri = lambda uri: 1 / 0  # process-wide state: never touched
    fake.start_run = lambda **kw: 1 / 0
    monkeypatch.setitem(sys.modules, "mlflow", fake)

    reg = ModelRegistry(tmp_path / "models", mlflow_uri="http://mlflow:5000")
    ref = reg.publish("bid", text_writer(), brand="acme")
    assert ("uri", "http://mlflow:5000") in calls and ("experiment", "tabtune") in calls
    assert ("run", "7", ref.id, ref.id) in calls
    assert ("dict", ref.id, "manifest.json") in calls
    assert ("files", ["manifest.json", "model.txt"]) in calls and calls[-1] == ("end", "FINISHED")

    # A failing tracking server is logged, never undoes a publish that already happened.
    Client.log_dict = lambda self, run_id, d, name: 1 / 0
    assert reg.publish("bid", text_writer(), brand="acme").version == "v0002"
    assert calls[-1] == ("end", "FAILED")


def test_rollback_of_a_brand_follows_the_champion_it_replaced(tmp_path: Path) -> None:
    """A refresh publishes losing challengers too: rolling back moves to the champion the
    current one replaced (refresh.champion_before), never to a version that never served;
    when the global model served before, the brand goes back to the global model."""
    reg = ModelRegistry(tmp_path)

    def pub(before: str | None, **extra) -> ModelRef:
        manifest = {"refresh": {"date": "2024-01-01", "champion_before": before, **extra}}
        return reg.publish("bid", text_writer(), brand="acme", manifest=manifest)

    first = pub(None)  # won against the global model
    reg.promote(first)
    pub(first.id)  # a challenger that lost: never served
    third = pub(first.id)  # won against the first
    reg.promote(third)
    assert reg.rollback("bid", "acme") == first  # not the loser in between (v0002)
    assert reg.rollback("bid", "acme") is None  # the global model served before the first
    assert reg.champion("bid", brand="acme") is None
    with pytest.raises(TabTuneInputError, match="no champion to roll back from"):
        reg.rollback("bid", "acme")
    # `tabtune finetune` records it at the top level: back to the global model, not to the
    # newest older version (v0003)
    reg.promote(reg.publish("bid", text_writer(), brand="acme", manifest={"champion_before": None}))
    assert reg.rollback("bid", "acme") is None
    # without the record (a version published otherwise): the newest older version
    reg.promote(reg.publish("bid", text_writer(), brand="acme"))
    assert reg.rollback("bid", "acme").version == "v0004"


def test_a_corrupt_brand_champion_falls_back_to_the_champion_it_replaced(
    reg: ModelRegistry,
) -> None:
    """Serving fell back to the newest older version, a challenger that lost its contest and
    never served, where a rollback returns to the champion before (config red-team)."""
    v1 = reg.publish("bid", text_writer("1"), brand="b", manifest={"champion_before": None})
    reg.promote(v1)
    reg.publish("bid", text_writer("2 (lost)"), brand="b")
    v3 = reg.publish("bid", text_writer("3"), brand="b", manifest={"champion_before": v1.id})
    reg.promote(v3)
    reg.publish("bid", text_writer("4 (lost, newer)"), brand="b")
    flip_byte(v3.path / "model.txt")
    got = reg.resolve("bid", brand="b")
    assert got == v1 and got.fallback_from == "v0003"
    # the champion replaced the global model: the global model serves again, not v0001's loser
    w1 = reg.publish("bid", text_writer("1 (lost)"), brand="c")
    w2 = reg.publish("bid", text_writer("2"), brand="c", manifest={"champion_before": None})
    reg.promote(w2)
    flip_byte(w2.path / "model.txt")
    assert reg.resolve("bid", brand="c") is None and w1.version == "v0001"


def test_a_brand_champion_whose_base_is_damaged_is_not_listed_ok(reg: ModelRegistry) -> None:
    """``models list`` said ``ok`` for a brand delta whose global model was corrupt, though it
    could not load (config red-team)."""
    base = reg.publish("bid", text_writer("global"), promote=True)
    delta = reg.publish(
        "bid", text_writer("delta"), brand="b", manifest={"depends_on": [base.id]}, promote=True
    )
    assert reg.champion_status("bid", "b") == ("ok", None)
    flip_byte(base.path / "model.txt")
    status, problem = reg.champion_status("bid", "b")
    assert status == "corrupt base" and f"its base {base.id} does not verify" in str(problem)
    assert delta.version == "v0001"


def test_a_lock_path_in_the_way_is_refused_naming_it(tmp_path: Path) -> None:
    # models/.locks as a file was a FileExistsError traceback; a lock that is a folder was
    # blamed on tuning.storage (refresh red-team)
    from tabtune.errors import TabTuneInputError
    from tabtune.registry import ModelRegistry

    root = tmp_path / "models"
    root.mkdir()
    (root / ".locks").write_text("")
    reg = ModelRegistry(root)
    with pytest.raises(TabTuneInputError, match=r"\.locks is a file, not a folder.*remove"):
        with reg.lock("refresh", timeout=0):
            pass
    (root / ".locks").unlink()
    (root / ".locks" / "refresh.lock").mkdir(parents=True)
    with pytest.raises(TabTuneInputError, match=r"refresh\.lock is a folder; fix: remove it"):
        with reg.lock("refresh", timeout=0):
            pass
    (root / ".locks" / "refresh.lock").rmdir()
    with reg.lock("refresh", timeout=0) as path:  # repaired: it locks
        assert path.is_file()
