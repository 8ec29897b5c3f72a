"""Optuna's own tools read the studies ``autodnn search`` makes: its command line and optuna-dashboard.

Optuna counts the book's baselines as trials like any other (they are trials of the study, with no searched
parameters), so its best trial may be a baseline where autodnn's best is the best searched trial.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from autodnn.cli import main

OPTUNA = Path(sys.executable).with_name("optuna")


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, optuna.Study]:
    """A study that ``autodnn search`` made: the three baselines, then three searched trials."""
    url = f"sqlite:///{tmp_path_factory.mktemp('optuna-tools') / 'o.db'}"
    code = main(["search", "--dataset", "digits", "--space", "quick", "--max-epochs", "2", "--n-trials", "3",
                 "--no-final", "--quiet", "--storage", url, "--study", "o", "--no-warm-start"])
    assert code == 0
    return url, optuna.load_study(study_name="o", storage=url)


def optuna_cli(*args: str, table: bool = False) -> Any:
    """Runs Optuna's command line and returns what it printed: parsed from ``-f json``, or its table as text."""
    if not OPTUNA.exists():
        pytest.skip(f"Optuna's command line is not installed beside {sys.executable}")
    done = subprocess.run([str(OPTUNA), *args, *([] if table else ["-f", "json"])], check=False,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout if table else json.loads(done.stdout)


def test_optuna_studies_lists_the_study_with_its_direction_and_trials(searched) -> None:
    url, study = searched
    (listed,) = optuna_cli("studies", "--storage", url)
    assert listed["name"] == "o"
    assert listed["direction"] == ["MAXIMIZE"]
    assert listed["n_trials"] == len(study.trials) == 6, "three baselines and three searched trials"
    assert listed["user_attrs"]["dataset"]["name"] == "digits"
    # The default table prints every study attribute too, the whole search space and settings included.
    header, row = [line for line in optuna_cli("studies", "--storage", url, table=True).splitlines()
                   if line.startswith("|")]
    assert [cell.strip() for cell in header.split("|")[1:4]] == ["name", "direction", "n_trials"]
    assert [cell.strip() for cell in row.split("|")[1:4]] == ["o", "('MAXIMIZE',)", "6"]


def test_optuna_trials_lists_every_trial_with_its_state_and_value(searched) -> None:
    url, study = searched
    listed = optuna_cli("trials", "--study-name", "o", "--storage", url)
    assert [t["number"] for t in listed] == [t.number for t in study.trials]
    for row, trial in zip(listed, study.trials):
        assert row["state"] == trial.state.name
        # autodnn names its objective, so Optuna prints each value under that name.
        assert row["value"] == {"val_accuracy": pytest.approx(trial.value)}
        assert row["params"] == pytest.approx(trial.params)
        assert row["user_attrs"].get("baseline") == trial.user_attrs.get("baseline")
    baselines = [row["user_attrs"]["baseline"] for row in listed[:3]]
    assert baselines == ["book-2e", "book-3e", "book-selu"] and all(not row["params"] for row in listed[:3])
    assert {row["state"] for row in listed} <= {"COMPLETE", "PRUNED"}


def test_optuna_best_trial_is_optunas_best_which_counts_the_baselines(searched) -> None:
    from autodnn.study.records import best_trial

    url, study = searched
    best = optuna_cli("best-trial", "--study-name", "o", "--storage", url)
    assert best["number"] == study.best_trial.number
    assert best["value"] == {"val_accuracy": pytest.approx(study.best_value)}
    assert best["params"] == pytest.approx(study.best_trial.params)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert study.best_value == max(t.value for t in complete)
    # autodnn's own best leaves the baselines out; Optuna's is the same trial only when no baseline beat it.
    ours = best_trial(study)
    assert ours is not None and "baseline" not in ours.user_attrs
    assert ours.value == max(t.value for t in complete if "baseline" not in t.user_attrs)
    assert (best["number"] == ours.number) == (study.best_value == ours.value)


def test_optuna_dashboard_lists_the_study_and_its_trials(searched) -> None:
    optuna_dashboard = pytest.importorskip("optuna_dashboard",
                                           reason="optuna-dashboard is not installed: pip install 'autodnn[dashboard]'")

    from autodnn.study.storage import open_storage

    url, study = searched
    app = optuna_dashboard.wsgi(open_storage(url, create=False))
    (summary,) = call_wsgi(app, "/api/studies")["study_summaries"]
    assert summary["study_name"] == "o" and summary["directions"] == ["maximize"]
    detail = call_wsgi(app, f"/api/studies/{summary['study_id']}")
    assert detail["objective_names"] == ["val_accuracy"]
    assert [t["number"] for t in detail["trials"]] == [t.number for t in study.trials]
    assert [t["state"] for t in detail["trials"]] == [t.state.name.capitalize() for t in study.trials]
    assert [t["number"] for t in detail["best_trials"]] == [study.best_trial.number]


def test_optunas_tools_still_read_a_database_holding_autodnns_own_table(tmp_path: Path) -> None:
    from autodnn.study.artifacts import TABLE, save_artifact
    from autodnn.study.storage import open_storage

    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = optuna.create_study(study_name="a", storage=open_storage(url), direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.5))
    save_artifact(study, "best-model", b"bytes")
    import sqlalchemy

    assert TABLE in sqlalchemy.inspect(sqlalchemy.create_engine(url)).get_table_names()
    (listed,) = optuna_cli("studies", "--storage", url)
    assert (listed["name"], listed["n_trials"]) == ("a", 1)
    assert optuna_cli("best-trial", "--study-name", "a", "--storage", url)["number"] == 0
    upgraded = subprocess.run([str(OPTUNA), "storage", "upgrade", "--storage", url], check=False, capture_output=True,
                              text=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr[-2000:]
    optuna.delete_study(study_name="a", storage=url)  # no foreign key of autodnn's stands in the way


def call_wsgi(app: Any, path: str) -> Any:
    """GETs ``path`` from a WSGI application in this process and returns its JSON answer."""
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status == ["200 OK"], (status, body[:500])
    return json.loads(body)
