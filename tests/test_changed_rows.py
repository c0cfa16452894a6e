"""Run order across nights: :mod:`tabtune.refresh.changed_rows`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tabtune.errors import TabTuneInputError
from tabtune.refresh.changed_rows import check_run_order, unfinished_runs_note
from tabtune.refresh.state import REPORT_NAME, STATE_NAME

D, L = dt.date(2024, 4, 18), dt.date(2024, 4, 19)


def _run(runs: Path, day: dt.date, finished: bool) -> Path:
    folder = runs / day.isoformat()
    folder.mkdir(parents=True)
    (folder / STATE_NAME).write_text("{}")
    if finished:
        (folder / REPORT_NAME).write_text("{}")
    return folder


def test_an_interrupted_night_does_not_resume_after_a_later_one_finished(tmp_path: Path) -> None:
    # it resumed, decided from models that had learnt the later day and reported a brand's
    # history as shrunk (refresh red-team)
    runs = tmp_path / "runs"
    folder = _run(runs, D, finished=False)
    _run(runs, L, finished=True)
    with pytest.raises(TabTuneInputError, match=rf"interrupted.*move {folder}"):
        check_run_order(runs, "bid", [D])
    check_run_order(runs, "bid", [L])  # the finished one reports
    (folder / REPORT_NAME).write_text("{}")
    check_run_order(runs, "bid", [D])  # finished: returns its report


def test_a_date_before_a_finished_night_names_the_folder_to_move(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    late = _run(runs, dt.date(2025, 4, 17), finished=True)  # a year typed wrong
    with pytest.raises(TabTuneInputError, match=rf"next one is 2025-04-18.*move its folder {late}"):
        check_run_order(runs, "bid", [D])


def test_the_night_after_an_interrupted_one_says_so(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert unfinished_runs_note(runs, "bid", L) == []
    _run(runs, D, finished=False)
    (note,) = unfinished_runs_note(runs, "bid", L)
    assert f"refresh of {(runs / '2024-04-18').absolute()} was interrupted" in note
    assert "to clear this note" in note
    assert unfinished_runs_note(runs, "bid", D) == []  # itself: it resumes
    assert unfinished_runs_note(runs, "budget", L) == []  # another task's runs
