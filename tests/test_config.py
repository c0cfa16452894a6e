"""Config loading: defaults, task files, and errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tabtune.config import AdaptationConfig, Config, ModelConfig, default_config, load_config
from tabtune.errors import ConfigError
from tabtune.params import PARAMETERS, section_params

REPO = Path(__file__).resolve().parents[1]


def test_shipped_default_config_loads_with_every_task() -> None:
    cfg = load_config(REPO / "configs" / "default.yaml")
    assert set(cfg.tasks) >= {"bid", "budget"}
    assert cfg.task("bid").target.denominator == "clicks"
    assert cfg.task("budget").monotone == {"relative_spend": 1}
    assert cfg.adaptation.min_rows_to_adapt == 100


def test_embedded_default_used_without_a_config_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg == default_config()
    assert "bid" in cfg.tasks


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("adaptation:\n  min_rows_to_adpt: 5\n", "adaptation.min_rows_to_adpt: unknown key"),
        ("bogus: 1\n", "bogus: unknown key"),
        ("adaptation:\n  validation_fraction: 0.9\n", "adaptation.validation_fraction"),
        ("backend: catboost\n", "backend"),
        ("model:\n  learning_rate: -1\n", "model.learning_rate"),
        ("tuning:\n  storage: 'redis://x'\n", "tuning.storage"),
        ("bids:\n  min_bid: 5\n  max_bid: 1\n", "min_bid (5.0) must be below max_bid"),
        ("data:\n  columns: {advertiser: brand_id}\n", "data.columns"),
        ("tasks:\n  t: {name: t, target: {numerator: revenue}}\n", "at least one feature"),
        ("tasks:\n  t: {name: t, target: {numerator: revenue}, calendar: [moon]}\n", "moon"),
        (
            "tasks:\n  t: {target: {numerator: conversions}, numeric: [conversions, clicks]}\n",
            "the target ('conversions') is also a feature",
        ),
        # a key column as a feature: `date` overwrote the time column, `brand_id` was dropped
        (
            "tasks:\n  t: {target: {numerator: revenue}, numeric: [date]}\n",
            "tasks.t: Value error, 'date' is the time column",
        ),
        (
            "tasks:\n  t: {target: {numerator: revenue}, categorical: [brand_id, channel]}\n",
            "'brand_id' is not a feature",
        ),
        ("data:\n  constants: {audience: NO}\n", "constants.audience: false is a flag"),
        ("data:\n  constants: {device: on}\n", "quote it"),
        ("bids:\n  target_roas: .inf\n", "bids.target_roas: Input should be a finite number"),
        ("budget:\n  relative_bounds: .nan\n", "budget.relative_bounds: Input should be a finite"),
        (
            "data:\n  store: out\noutputs_dir: out\n",
            "data.store (out) and outputs_dir (out) overlap",
        ),
        ("models_dir: m\ncache_dir: m/cache\n", "models_dir (m) and cache_dir (m/cache) overlap"),
        # synth.start was checked only by synth: "01/02/2024" read month-first, no key named
        ("synth:\n  start: 01/02/2024\n", "synth.start: Value error, '01/02/2024' is not an ISO"),
        ("synth:\n  start: 1980-01-01\n", "synth.start: Value error, 1980-01-01 is before 1995"),
        # a numeric brand id as a key: "Input should be a valid string (got 7)", no fix
        (
            "bids:\n  target_roas_by_brand: {007: 3}\n",
            "(got 7); YAML read the key as a number: quote it ('007': 3)",
        ),
        (
            "bids:\n  target_roas_by_brand: {yes: 3}\n",
            "(got True); YAML read the key as a flag (yes, no, on, off): quote it",
        ),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_write(tmp_path, "- 1\n- 2\n"))
    # an empty config was every default, its folders relative to where the command ran
    with pytest.raises(ConfigError, match="holds no settings .* leave --config out"):
        load_config(_write(tmp_path, "# nothing yet\n"))


def test_task_file_errors_name_the_task_file(tmp_path: Path) -> None:
    task = tmp_path / "t.yaml"
    task.write_text(
        "kind: regression\ntarget: {numerator: revenue}\nnumeric: [spend]\nfeatures: [x]\n"
    )
    path = _write(tmp_path, f"tasks:\n  mine: {task}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "features: unknown key" in str(info.value)
    assert str(task) in str(info.value)


def test_unknown_task_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="configured tasks"):
        default_config().task("nope")


def test_builtin_tasks_are_packaged_and_identical_to_the_user_copies() -> None:
    import tomllib
    from importlib import resources

    from tabtune.config import BUILTIN_TASKS, builtin_task, builtin_task_spec

    user_copies = REPO / "configs" / "tasks"
    assert sorted(p.stem for p in user_copies.glob("*.yaml")) == sorted(BUILTIN_TASKS)
    packaged_dir = resources.files("tabtune") / "configs" / "tasks"
    for name in BUILTIN_TASKS:
        packaged = (packaged_dir / f"{name}.yaml").read_text(encoding="utf-8")
        assert packaged == (user_copies / f"{name}.yaml").read_text(encoding="utf-8"), name
        task = builtin_task(name)
        assert task.name == name
        assert task == load_config(REPO / "configs" / "default.yaml").tasks.get(name, task)
    # the default config's bid task is the packaged one; each call gives a fresh object
    assert default_config().tasks["bid"] == builtin_task("bid")
    assert builtin_task("bid") is not builtin_task("bid")
    spec = builtin_task_spec("budget")
    spec["name"] = "changed"
    assert builtin_task_spec("budget")["name"] == "budget"
    with pytest.raises(ConfigError, match="unknown built-in task"):
        builtin_task("nope")
    # the wheel ships them: package-data names the folder that holds them
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "configs/tasks/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["tabtune"]


SECTIONS = {"model": ModelConfig, "adaptation": AdaptationConfig}


def test_config_sections_are_the_parameter_table() -> None:
    for section, cls in SECTIONS.items():
        rows = section_params(section)
        assert set(cls.model_fields) == set(rows)
        for name, field in cls.model_fields.items():
            row = rows[name]
            assert field.description == row.description
            if name == "backend_params":  # the table's None (none) is spelt {} in the config
                assert field.annotation == dict[str, Any] and cls().backend_params == {}
                continue
            assert field.annotation == row.type, name
            assert field.default == row.default, name


@pytest.mark.parametrize(
    "row", [p for p in PARAMETERS if p.section is not None], ids=lambda p: f"{p.section}.{p.name}"
)
def test_config_accepts_what_the_estimators_accept(row) -> None:
    if row.integer:
        values: list[Any] = [-2, -1, 0, 1, 2, 3, 11, 10**6]
    elif row.type in (float, float | None):
        values = [-0.5, 0.0, 1e-9, 0.2, 0.5, 0.7, 1.0, 1.5, 2.0]
    else:
        values = ["auto", "refit", "magic", {}, {"a": 1}]
    values.append(None)
    for value in values:
        try:
            SECTIONS[row.section].model_validate({row.name: value})
            accepted = True
        except ValidationError:
            accepted = False
        if row.name == "backend_params" and value is None:
            continue  # the config's spelling of "none"
        assert accepted == row.constraint.check(value), (row.name, value)


def test_default_yaml_agrees_with_the_parameter_table() -> None:
    raw = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    cfg = load_config(REPO / "configs" / "default.yaml")
    for section in SECTIONS:
        rows = section_params(section)
        for name, value in raw[section].items():
            assert value == rows[name].default, f"{section}.{name}"
        assert sorted(raw[section]) == sorted(rows), f"{section}: the yaml lists every key"
        loaded = getattr(cfg, section)
        for name, row in rows.items():
            expected = {} if name == "backend_params" and row.default is None else row.default
            assert getattr(loaded, name) == expected, f"{section}.{name}"
    assert default_config().model == cfg.model
    assert default_config().adaptation == cfg.adaptation


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("model", "n_estimators", True),
        ("model", "learning_rate", False),
        ("data", "skip_lines", True),
    ],
)
def test_true_or_false_where_a_number_belongs_is_refused(
    tmp_path: Path, section: str, key: str, value: bool
) -> None:
    # pydantic alone reads n_estimators: true as a model of 1 tree
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({section: {key: value}}))
    with pytest.raises(ConfigError, match=rf"{section}.{key}[\s\S]*must be a number, not"):
        load_config(path)
    path.write_text(yaml.safe_dump({"model": {"regrow_on_all_rows": False}}))
    assert load_config(path).model.regrow_on_all_rows is False  # a flag stays a flag


def test_true_inside_a_mapping_of_numbers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"scale": {"spend": True}}}))
    with pytest.raises(ConfigError, match="spend: must be a number, not true"):
        load_config(path)
    path.write_text(yaml.safe_dump({"data": {"constants": {"is_brand": True}}}))
    assert load_config(path).data.constants == {"is_brand": True}  # any value is allowed there


def test_default_yaml_lists_every_key_of_the_other_sections() -> None:
    # The yaml is where users look for a setting: every section's every key is in it.
    raw = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    defaults = Config().model_dump(mode="json")
    # tuning.storage is there as a comment: written, it pinned every copy of the file to
    # models/tuning.db, whatever its models_dir, and two clients' configs shared one study
    unset = {"tuning": {"storage"}}
    text = (REPO / "configs" / "default.yaml").read_text()
    assert "# storage: not given, sqlite:///<models_dir>/tuning.db" in text
    for section in ("refresh", "registry", "bids", "budget", "synth", "tuning"):
        listed = sorted(set(defaults[section]) - unset.get(section, set()))
        assert sorted(raw[section]) == listed, section
        for name, value in raw[section].items():
            assert value == defaults[section][name], f"{section}.{name}"


def test_a_config_without_tasks_has_the_built_in_bid_and_budget(
    tmp_path: Path, monkeypatch
) -> None:
    """A config that says only where the store is configured no task: pretrain did nothing
    and `--task bid` was unknown (new-user red-team)."""
    from tabtune.config import builtin_task

    monkeypatch.chdir(tmp_path)  # no configs/tasks/ here: the built-ins come from the package
    (tmp_path / "c.yaml").write_text("data: {store: st}\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.task("bid") == builtin_task("bid") and cfg.task("budget") == builtin_task("budget")
    assert cfg.task_file("bid") is None
    (tmp_path / "none.yaml").write_text("tasks: {}\n")
    assert load_config(tmp_path / "none.yaml").tasks == {}  # said so: none
    # the embedded default (no file) has the same tasks (it had bid only)
    from tabtune.config import default_config

    assert default_config().tasks == cfg.tasks


def test_built_in_tasks_by_name_and_a_missing_task_file(tmp_path: Path, monkeypatch) -> None:
    from tabtune.config import builtin_task

    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("tasks: {bid: bid, budget: 'builtin:budget'}\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.task("bid") == builtin_task("bid") and cfg.task("budget") == builtin_task("budget")
    # a built-in keeps its name: decisions and pooled responses are keyed on it (review)
    (tmp_path / "p.yaml").write_text("tasks: {plans: 'builtin:budget'}\n")
    with pytest.raises(ConfigError, match="is the built-in task 'budget', which keeps its name"):
        load_config(tmp_path / "p.yaml")
    (tmp_path / "bid").mkdir()  # a folder named like the task is no task file
    assert load_config(tmp_path / "c.yaml").task("bid") == builtin_task("bid")
    (tmp_path / "bid").rmdir()
    (tmp_path / "m.yaml").write_text("tasks: {bid: configs/tasks/bid.yaml}\n")
    with pytest.raises(
        ConfigError, match=r"tasks\.bid: task file configs/tasks/bid\.yaml not found"
    ):
        load_config(tmp_path / "m.yaml")
    with pytest.raises(ConfigError, match="tasks.bid: bid; built-in: audience, bid"):
        load_config(tmp_path / "m.yaml")
    (tmp_path / "u.yaml").write_text("tasks: {x: 'builtin:nope'}\n")
    with pytest.raises(ConfigError, match="unknown built-in task 'nope'"):
        load_config(tmp_path / "u.yaml")
    # a file named like a built-in task, where tabtune runs, is read as the file
    (tmp_path / "bid").write_text(
        yaml.safe_dump({**builtin_task("bid").model_dump(), "numeric": ["bid"]})
    )
    assert load_config(tmp_path / "c.yaml").task("bid").numeric == ["bid"]


def test_tuning_storage_follows_models_dir_unless_given() -> None:
    """Every config shared sqlite:///models/tuning.db: a study tuned on the simulator was
    applied to a client's pretraining under its own models_dir (docs audit)."""
    from tabtune.config import Config

    assert Config.model_validate({}).tuning.storage == "sqlite:///models/tuning.db"
    shop = Config.model_validate({"models_dir": "models/shop"})
    assert shop.tuning.storage == "sqlite:///models/shop/tuning.db"
    assert Config.model_validate(shop.model_dump(mode="json")) == shop  # workers' round trip
    given = {"models_dir": "models/shop", "tuning": {"storage": "sqlite:///t.db"}}
    assert Config.model_validate(given).tuning.storage == "sqlite:///t.db"
    example = load_config(REPO / "data" / "examples" / "shop_export.yaml")
    assert example.tuning.storage == "sqlite:///models/shop/tuning.db"


def test_budget_grid_points_are_bounded() -> None:
    """grid_points: 100000 ran a budget plan for minutes (red-team): at most 501."""
    from tabtune.config import Config

    assert Config.model_validate({"budget": {"grid_points": 501}}).budget.grid_points == 501
    with pytest.raises(ValidationError, match="less than or equal to 501"):
        Config.model_validate({"budget": {"grid_points": 100_000}})


def test_a_task_named_otherwise_than_its_key_is_refused(tmp_path: Path) -> None:
    """A copy of audience.yaml registered as ``aud_campaign`` kept ``name: audience``: its
    refresh published over the audience task's brand models and outputs (tasks red-team)."""
    copy = yaml.safe_load((REPO / "configs/tasks/audience.yaml").read_text())
    copy["categorical"] = [*copy["categorical"], "campaign_id"]
    (tmp_path / "aud_campaign.yaml").write_text(yaml.safe_dump(copy))
    text = f"tasks:\n  audience: audience\n  aud_campaign: {tmp_path / 'aud_campaign.yaml'}\n"
    with pytest.raises(ConfigError, match="name 'audience' is not the task's key 'aud_campaign'"):
        load_config(_write(tmp_path, text))
    with pytest.raises(ConfigError, match="fix: name: t2"):
        load_config(_write(tmp_path, "tasks:\n  t2: {name: t, target: {numerator: revenue}}\n"))
    copy["name"] = "aud_campaign"
    (tmp_path / "aud_campaign.yaml").write_text(yaml.safe_dump(copy))
    assert load_config(_write(tmp_path, text)).task("aud_campaign").name == "aud_campaign"
    del copy["name"]
    (tmp_path / "aud_campaign.yaml").write_text(yaml.safe_dump(copy))
    assert load_config(_write(tmp_path, text)).task("aud_campaign").name == "aud_campaign"
    from tabtune.config import TaskConfig  # the Python API's path (review)

    misnamed = TaskConfig(name="audience", target={"numerator": "conversions"}, numeric=["bid"])
    with pytest.raises(ValidationError, match="not named by their keys"):
        Config(tasks={"aud_campaign": misnamed})


def test_an_unquoted_synth_start_date_is_read(tmp_path: Path) -> None:
    """``synth.start: 2024-01-01`` (a YAML date) was refused as "a valid string" (config
    red-team)."""
    assert (
        load_config(_write(tmp_path, "synth:\n  start: 2024-03-01\n")).synth.start == "2024-03-01"
    )


def test_a_tilde_in_a_path_is_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``store: ~/tabtune/store`` made a folder named "~" in the working directory (config
    red-team)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    text = "data:\n  store: ~/tt/store\nmodels_dir: ~/tt/models\ncache_dir: ~/tt/cache\n"
    cfg = load_config(_write(tmp_path, text))
    assert cfg.data.store == tmp_path / "tt" / "store"
    assert (
        cfg.models_dir == tmp_path / "tt" / "models" and cfg.cache_dir == tmp_path / "tt" / "cache"
    )

    with pytest.raises(ConfigError, match="models_dir"):  # an unknown user: refused, no crash
        load_config(_write(tmp_path, "models_dir: ~nosuchuser_tabtune/m\n"))
    # an empty HOME (cron) put ~/m at /m: refused by key
    monkeypatch.setenv("HOME", "")
    with pytest.raises(ConfigError, match="data.store.*HOME is empty"):
        load_config(_write(tmp_path, "data:\n  store: ~/tt/store\n"))


def test_refused_assignment_leaves_the_section_as_it_was() -> None:
    # pydantic stores an assigned value before the cross-field checks: a refused
    # min_bid (above max_bid) or an overlapping models_dir stayed in the config
    cfg = Config.model_validate({})
    with pytest.raises(ValidationError, match="min_bid"):
        cfg.bids.min_bid = 1e6
    assert cfg.bids.min_bid == Config.model_validate({}).bids.min_bid
    assert "min_bid" not in cfg.bids.model_fields_set
    with pytest.raises(ValidationError, match="overlap"):
        cfg.models_dir = cfg.data.store
    assert cfg.models_dir == Config.model_validate({}).models_dir
    cfg.bids.min_bid = 0.5  # an accepted assignment still lands
    assert cfg.bids.min_bid == 0.5


def test_tuning_storage_follows_a_models_dir_assigned_later() -> None:
    cfg = Config.model_validate({})
    cfg.models_dir = Path("elsewhere")
    assert cfg.tuning.storage == "sqlite:///elsewhere/tuning.db"
    cfg.tuning.storage = "sqlite:///mine.db"  # given by the user: kept
    cfg.models_dir = Path("again")
    assert cfg.tuning.storage == "sqlite:///mine.db"


def test_folder_overlap_resolves_dots_and_links(tmp_path: Path) -> None:
    # `store/../models` is beside the store, not inside it (it was refused); a link into the
    # store is inside it (it was missed)
    (tmp_path / "store").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "store")
    beside = _write(
        tmp_path, f"data: {{store: {tmp_path}/store}}\nmodels_dir: {tmp_path}/store/../models\n"
    )
    assert load_config(beside).models_dir == Path(f"{tmp_path}/store/../models")
    inside = _write(
        tmp_path, f"data: {{store: {tmp_path}/store}}\nmodels_dir: {tmp_path}/link/models\n"
    )
    with pytest.raises(ConfigError, match="overlap"):
        load_config(inside)


def test_the_truth_dir_is_checked_only_where_the_simulator_writes_it(tmp_path: Path) -> None:
    # a real store at `data` (truth_dir data/truth, as configs/default.yaml sets it) is no
    # overlap until the simulator writes its truth there; outputs beside the truth are fine
    text = "data: {store: data, truth_dir: data/truth}\n"
    cfg = load_config(_write(tmp_path, text))
    assert cfg.folder_overlap() is None
    assert "data.store (data) and data.truth_dir (data/truth) overlap" in str(
        cfg.folder_overlap(truth=True)
    )
    beside = load_config(
        _write(tmp_path, "data: {store: data/campaigns}\noutputs_dir: data/truth\n")
    )
    assert beside.folder_overlap(truth=True) is None


def test_a_config_wide_error_does_not_print_the_whole_config(tmp_path: Path) -> None:
    # an overlap (a <top level> error) printed "(got {<every section, both tasks>})"
    path = _write(tmp_path, "data: {store: s}\nmodels_dir: s/models\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "overlap" in str(info.value) and "(got {" not in str(info.value)


def test_a_copy_given_other_models_keeps_the_originals_studies_apart() -> None:
    # the derived tuning.storage was written into the tuning section both copies share: the
    # original then pointed at the copy's tuning.db (Python red-team)
    original = default_config()
    original.models_dir = Path("/tmp/client-a/models")
    copy = original.model_copy()
    copy.models_dir = Path("/tmp/client-b/models")
    assert original.tuning.storage == "sqlite:////tmp/client-a/models/tuning.db"
    assert copy.tuning.storage == "sqlite:////tmp/client-b/models/tuning.db"
