"""The development suite (benchmarks/suite.py): what it holds, read offline from the packages that ship it."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import suite


def test_the_suite_holds_the_tasks_it_must() -> None:
    tasks = [d.task for d in suite.DATASETS]
    assert len(suite.DATASETS) >= 10 and len({d.name for d in suite.DATASETS}) == len(suite.DATASETS)
    assert tasks.count("regression") >= 3 and "images" in tasks
    for dataset in suite.DATASETS:
        assert dataset.name in suite.__doc__, f"{dataset.name}: its source and licence are not named"


@pytest.mark.parametrize("dataset", [d for d in suite.DATASETS if d.write is not None], ids=lambda d: d.name)
def test_every_table_is_written_offline_with_its_target(dataset: suite.SuiteDataset, tmp_path: Path) -> None:
    path = tmp_path / f"{dataset.name}.csv"
    target = dataset.write(path)
    frame = pd.read_csv(path)
    assert target in frame.columns and len(frame) >= 100
    assert frame[target].notna().all(), "a target with missing values is refused; the suite gives none"
    assert set(dataset.drop) <= set(frame.columns)
    if dataset.task == "regression":
        assert frame[target].nunique() > 20 and pd.api.types.is_float_dtype(frame[target])


def test_two_tables_have_a_minority_class_under_ten_percent(tmp_path: Path) -> None:
    minorities = {}
    for dataset in suite.DATASETS:
        if dataset.write is None or dataset.task != "classification":
            continue
        path = tmp_path / f"{dataset.name}.csv"
        target = dataset.write(path)
        minorities[dataset.name] = pd.read_csv(path)[target].value_counts(normalize=True).min()
    assert sum(share < 0.10 for share in minorities.values()) >= 2, minorities


def test_a_whole_number_quantity_is_searched_as_the_regression_it_is(tmp_path: Path) -> None:
    import autodnn
    from autodnn.errors import DatasetError

    mass = next(d for d in suite.DATASETS if d.name == "penguins-mass")
    argv = suite.command(mass, tmp_path, tmp_path, ["--timeout", "1m"])
    path = argv[argv.index("--dataset") + 1]
    with pytest.raises(DatasetError, match="--task regression or --task classification"):
        autodnn.load_dataset(path, target="body_mass_g")
    assert argv[argv.index("--task") + 1] == "regression" and argv[-2:] == ["--timeout", "1m"]
    assert autodnn.load_dataset(path, target="body_mass_g", task="regression").is_regression
    table = next(d for d in suite.DATASETS if d.name == "penguins")
    argv = suite.command(table, tmp_path, tmp_path, [])
    assert argv[argv.index("--target") + 1] == "species" and "--task" not in argv


def test_the_suite_row_counts_ahead_level_and_behind_by_the_paired_spread(tmp_path: Path) -> None:
    import json

    from quality_tables import suite_table

    def row(name: str, metric: str, mean: float, std: float) -> dict:
        return {"dataset": name, "metric": metric, "entries": {"best": {"mean": 0.9, "std": 0.01}},
                "start_alone": {"start": "s", "mean": 0.9, "std": 0.01,
                                "search_minus_start": {"mean": mean, "std": std}}}

    rows = [row("a", "test_accuracy", 0.02, 0.01), row("b", "test_accuracy", 0.0, 0.0),
            row("c", "test_accuracy", -0.005, 0.01), row("d", "test_accuracy", -0.03, 0.01),
            row("e", "test_rmse", -0.1, 0.05)]  # an RMSE lower by 0.1: the search is ahead
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"machine": "m", "rows": rows}))
    summary = suite_table([str(path)]).splitlines()[-1]
    assert summary.startswith("search ahead on 2 of 5, level on 1, behind within the spread on 1, behind beyond it on 1")
