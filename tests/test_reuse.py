"""The book baselines' runs reused across studies of the same data and settings: a second study on the same data
trains none of them again, neither in its search nor in its final evaluation, and says so."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from autodnn.study.reuse import REUSED

SEARCH = ("search", "--dataset", "iris", "--max-epochs", "3", "--n-trials", "2", "--seeds", "2", "--no-reference",
          "--timeout", "none", "--pruner", "none")


def _baselines(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    return {t.user_attrs["baseline"]: t for t in study.trials if "baseline" in t.user_attrs}


def test_a_second_study_on_the_same_data_reuses_the_book_baselines_runs_and_their_evaluation(
        run_cli, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    first = run_cli(*SEARCH, "--space", "quick", "--storage", storage, "--study", "a")
    assert first.code == 0, first.err
    second = run_cli(*SEARCH, "--space", "selu", "--storage", storage, "--study", "b")
    assert second.code == 0, second.err
    assert "Reused the book baselines' runs book-2e, book-3e, book-selu from study 'a'" in second.out
    a, b = (optuna.load_study(study_name=n, storage=storage) for n in ("a", "b"))
    theirs, mine = _baselines(a), _baselines(b)
    assert set(mine) == set(theirs) == {"book-2e", "book-3e", "book-selu"}
    for name, trial in mine.items():
        assert trial.user_attrs[REUSED]["study"] == "a" and trial.user_attrs[REUSED]["trial"] == theirs[name].number
        assert trial.value == theirs[name].value and trial.intermediate_values == theirs[name].intermediate_values
        assert trial.user_attrs["test_run"] == theirs[name].user_attrs["test_run"]
    evaluated = {e["name"]: e for e in b.user_attrs["evaluation"]["entries"][1:]}
    before = {e["name"]: e for e in a.user_attrs["evaluation"]["entries"][1:]}
    for name, entry in evaluated.items():
        assert entry["runs"] == before[name]["runs"], "every seed's run is the first study's: none trained again"
        assert entry["reused_from"] == "a" and entry["title"].endswith("(reused from study 'a')")
    trained = [line for line in second.out.splitlines() if line.strip().startswith("Trial") and "book-" in line]
    assert not any("started" in line for line in trained), "no baseline trial ran in the second search"


@pytest.mark.slow
def test_another_seed_or_other_data_trains_its_own_baselines(run_cli, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert run_cli(*SEARCH, "--space", "quick", "--no-final", "--storage", storage, "--study", "a").code == 0
    for study, flags in (("seed", ("--seed", "1")), ("data", ("--dataset", "wine"))):
        result = run_cli(*SEARCH, "--space", "quick", "--no-final", *flags, "--storage", storage, "--study", study)
        assert result.code == 0, result.err
        assert "Reused" not in result.out
        trials = _baselines(optuna.load_study(study_name=study, storage=storage))
        assert trials and not any(REUSED in t.user_attrs for t in trials.values())
