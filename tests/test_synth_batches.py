"""The simulator in brand batches: exactly the whole simulation, written batch by batch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabtune.data.synth import load_truth, simulate, simulate_batches, write_synth_batches


@pytest.mark.parametrize(("max_rows", "min_batches"), [(1, 7), (4_000, 2), (10**9, 1)])
def test_batches_concatenate_to_the_whole_simulation(max_rows, min_batches):
    whole = simulate(n_brands=7, n_days=120, seed=4)
    params, batches = simulate_batches(n_brands=7, n_days=120, seed=4, max_rows=max_rows)
    parts = list(batches)
    assert len(parts) >= min_batches
    assert params == whole.params
    seen: set[str] = set()
    for part in parts:  # whole brands per batch
        brands = set(part.observations["brand_id"])
        assert not brands & seen
        seen |= brands
        assert len(part.observations) <= max(
            max_rows, part.observations.groupby("brand_id").size().max()
        )
    obs = pd.concat([p.observations for p in parts], ignore_index=True)
    truth = pd.concat([p.truth for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(obs, whole.observations)
    pd.testing.assert_frame_equal(truth, whole.truth)


def test_truth_written_batch_by_batch_reads_back_whole(tmp_path: Path):
    whole = simulate(n_brands=5, n_days=60, seed=2)
    params, batches = simulate_batches(n_brands=5, n_days=60, seed=2, max_rows=300)
    seen = []
    write_synth_batches(params, batches, tmp_path, each=lambda b: seen.append(len(b.observations)))
    assert len(seen) > 1 and sum(seen) == len(whole.observations)
    truth, ground = load_truth(tmp_path)
    pd.testing.assert_frame_equal(truth, whole.truth)
    assert ground.params == whole.params
