"""The best model, kept by the final evaluation in the study's database and exported as a ``.keras`` file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import REPO, assert_user_error
from test_storage_servers import BOTH, mysql_url, postgres_url  # noqa: F401 - the server fixtures

SEARCH = ("search", "--dataset", "digits", "--space", "quick", "--max-epochs", "3", "--n-trials", "2",
          "--no-baselines")


def fresh_python(code: str, cwd: Path) -> str:
    """Runs ``code`` in a new interpreter (nothing of this process's Keras state) and returns its last line."""
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_the_exported_model_reproduces_the_recorded_test_accuracy_in_a_fresh_process(run_cli, tmp_path: Path) -> None:
    import numpy as np

    import autodnn
    from autodnn.evaluate import median_run
    from autodnn.export import load_hint

    url = f"sqlite:///{tmp_path / 'e.db'}"
    searched = run_cli(*SEARCH, "--seeds", "2", "--storage", url, "--study", "e")
    assert searched.code == 0, searched.err
    assert f"'autodnn export e --storage {url}' writes it" in searched.out
    study = optuna.load_study(study_name="e", storage=url)
    evaluation = study.user_attrs["evaluation"]
    record = evaluation["model"]
    runs = evaluation["entries"][0]["runs"]
    kept = runs[median_run([run["val_accuracy"] for run in runs])]
    assert (record["seed"], record["test_accuracy"]) == (kept["seed"], kept["test_accuracy"])
    assert record["trial_number"] == evaluation["entries"][0]["trial_number"]

    path = tmp_path / "best.keras"
    exported = run_cli("export", "e", "--storage", url, "-o", path)
    assert exported.code == 0, exported.err
    assert path.stat().st_size == record["bytes"] and "keras.saving.load_model" in exported.out
    assert load_hint(record, path) in exported.out

    settings = study.user_attrs["settings"]
    # The line the export printed, then the test split of the study's own dataset, in a new interpreter.
    correct = fresh_python(
        f"{load_hint(record, path)}\nimport autodnn\n"
        f"data = autodnn.load_dataset('digits', seed={settings['seed']}, valid_fraction={settings['valid_fraction']!r})\n"
        "raw = data.x_test * data.feature_scale + data.feature_mean\n"
        "print(int((model.predict(raw, verbose=0).argmax(axis=1) == data.y_test).sum()), len(data.y_test))",
        tmp_path)
    n_correct, n_test = map(int, correct.split())
    assert n_correct == round(record["test_accuracy"] * n_test)
    assert n_correct / n_test == pytest.approx(record["test_accuracy"], abs=1e-6)

    model = autodnn.load_best("e", storage=url)
    data = autodnn.load_dataset("digits", seed=settings["seed"], valid_fraction=settings["valid_fraction"])
    raw = data.x_test * data.feature_scale + data.feature_mean
    predicted = np.asarray(model.predict(raw, verbose=0)).argmax(axis=1)
    assert int((predicted == data.y_test).sum()) == n_correct
    assert not model.compiled, "an inference copy: no optimizer of autodnn's to rebuild"


def test_a_study_without_a_final_evaluation_says_how_to_run_it(run_cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    assert run_cli(*SEARCH, "--no-final", "--storage", url, "--study", "n").code == 0
    refused = run_cli("export", "n", "--storage", url, "-o", tmp_path / "n.keras")
    assert_user_error(refused, "no final evaluation", "autodnn evaluate n")
    assert not (tmp_path / "n.keras").exists()
    import autodnn
    from autodnn.errors import StudyError

    with pytest.raises(StudyError, match="autodnn evaluate n"):
        autodnn.load_best("n", storage=url)


@pytest.mark.parametrize(("output", "fragment"), [("missing/best.keras", "folder missing does not exist"),
                                                  ("best.h5", "must end with .keras"),
                                                  (".", "must end with .keras")])
def test_an_output_path_that_cannot_be_written_is_one_line(run_cli, workdir: Path, output: str, fragment: str) -> None:
    assert_user_error(run_cli("export", "any", "-o", output), fragment)


def test_the_default_output_is_named_after_the_study(run_cli) -> None:
    from autodnn.export import default_path

    assert default_path("digits-quick") == Path("digits-quick-best.keras")
    assert "STUDY-best.keras" in run_cli("export", "--help").out


def _tiny_model_with_autodnn_layers():
    import keras

    from autodnn.network.layers import GeneralizedSwish, Mish, RReLU

    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((8,), name="features"), keras.layers.Dense(16, name="hidden_1"),
                             Mish(name="act_1"), keras.layers.Dense(16, name="hidden_2"),
                             GeneralizedSwish(1.702, name="act_2"), keras.layers.Dense(16, name="hidden_3"),
                             RReLU(name="act_3"), keras.layers.Dense(3, activation="softmax", name="output")])


def _round_trip(url: str, tmp_path: Path, *, fresh: bool) -> None:
    import numpy as np

    import autodnn
    from autodnn.export import keep_model, load_hint, model_bytes
    from autodnn.study.artifacts import CHUNK_BYTES, load_artifact, save_artifact
    from autodnn.study.storage import open_storage

    study = optuna.create_study(study_name="a", storage=open_storage(url), direction="maximize")
    other = optuna.create_study(study_name="b", storage=open_storage(url))
    # Several rows, the last one partial, and bytes of every value.
    blob = bytes(range(256)) * (2 * CHUNK_BYTES // 256) + b"tail"
    assert len(save_artifact(study, "blob", blob)) == 64
    save_artifact(study, "blob", blob[::-1])  # replaces, never mixes rows of the two
    assert load_artifact(study, "blob") == blob[::-1]
    assert load_artifact(other, "blob") is None and load_artifact(study, "nothing") is None

    model = _tiny_model_with_autodnn_layers()
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    expected = np.asarray(model.predict(x, verbose=0))
    record = keep_model(study, model_bytes(model), {"trial_number": 0, "seed": 1, "test_accuracy": 0.5})
    assert record["imports"] == ["autodnn.network.layers"]
    study.set_user_attr("evaluation", {"entries": [], "model": record})

    np.testing.assert_allclose(autodnn.load_best("a", storage=url).predict(x, verbose=0), expected, atol=1e-6)
    path = tmp_path / "a.keras"
    assert autodnn.export_best("a", path, storage=url)["path"] == str(path)
    if not fresh:
        return
    np.save(tmp_path / "x.npy", x)
    # Keras alone cannot load it (it never imports autodnn.network.layers itself); the line the export prints can.
    keras_alone = (f"import keras\ntry:\n    keras.saving.load_model({str(path)!r})\nexcept Exception:\n    pass\n"
                   "else:\n    raise SystemExit('loaded without autodnn.network.layers')\n")
    predicted = fresh_python(
        f"{keras_alone}{load_hint(record, path)}\nimport json, numpy as np\n"
        f"print(json.dumps(model.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0).tolist()))", tmp_path)
    np.testing.assert_allclose(np.array(json.loads(predicted)), expected, atol=1e-6)


def test_the_artifact_round_trips_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, fresh=True)


@pytest.mark.parametrize("server", BOTH)
def test_the_artifact_round_trips_on_database_servers(server: str, request: pytest.FixtureRequest,
                                                      tmp_path: Path) -> None:
    _round_trip(request.getfixturevalue(f"{server}_url"), tmp_path, fresh=False)


def test_a_changed_artifact_is_refused(tmp_path: Path) -> None:
    from autodnn.errors import StudyError
    from autodnn.export import ARTIFACT, best_model_bytes
    from autodnn.study.artifacts import save_artifact
    from autodnn.study.storage import open_storage

    study = optuna.create_study(study_name="c", storage=open_storage(f"sqlite:///{tmp_path / 'c.db'}"))
    digest = save_artifact(study, ARTIFACT, b"one file")
    study.set_user_attr("evaluation", {"model": {"artifact": ARTIFACT, "sha256": digest}})
    assert best_model_bytes(study)[1] == b"one file"
    save_artifact(study, ARTIFACT, b"another")
    with pytest.raises(StudyError, match="changed in its database"):
        best_model_bytes(study)


def _messy_table(path: Path) -> None:
    """A table as people bring them: text categories, missing numbers and categories, a row id."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(4)
    n = 240
    size = rng.normal(10, 3, n)
    colour = rng.choice(["red", "green", "blue"], n)
    frame = pd.DataFrame({"id": np.arange(n), "size": size, "colour": colour,
                          "weight": size * 2 + rng.normal(0, 1, n)})
    frame["label"] = np.where((size > 10) ^ (colour == "red"), "yes", "no")
    frame["price"] = 3 * size + 5 * (colour == "blue") + rng.normal(0, 1, n)
    frame.loc[rng.choice(n, 20, replace=False), "weight"] = np.nan
    frame.loc[rng.choice(n, 15, replace=False), "colour"] = None
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(("target", "drop", "metric"), [("label", "price", "test_accuracy"),
                                                         ("price", "label", "test_rmse")])
def test_a_tables_exported_model_reproduces_its_test_figure_on_the_raw_rows_in_a_fresh_process(
        run_cli, tmp_path: Path, target: str, drop: str, metric: str) -> None:
    import numpy as np

    import autodnn
    from autodnn.export import columns_path, load_hint

    table = tmp_path / "messy.csv"
    _messy_table(table)
    url = f"sqlite:///{tmp_path / 't.db'}"
    searched = run_cli("search", "--dataset", f"csv:{table}", "--target", target, "--drop", drop, "--space", "quick",
                       "--max-epochs", "3", "--n-trials", "2", "--no-baselines", "--no-reference", "--seeds", "2",
                       "--storage", url, "--study", "t")
    assert searched.code == 0, searched.err
    study = optuna.load_study(study_name="t", storage=url)
    record = study.user_attrs["evaluation"]["model"]
    assert record["metric"] == metric and record["columns"]
    path = tmp_path / "best.keras"
    exported = run_cli("export", "t", "--storage", url, "-o", path)
    assert exported.code == 0, exported.err
    assert columns_path(path).is_file() and load_hint(record, path) in exported.out

    settings = study.user_attrs["settings"]
    data = autodnn.load_dataset(f"csv:{table}", target=target, drop=drop, seed=settings["seed"],
                                valid_fraction=settings["valid_fraction"])
    np.save(tmp_path / "rows.npy", data.test_rows)
    # The raw rows of the test split, read from the file as a user would, through the exported files alone.
    answer = fresh_python(
        f"{load_hint(record, path).replace('; model.predict(columns.transform(frame))', '')}\n"
        "import json, numpy as np, pandas as pd\n"
        f"frame = pd.read_csv({str(table)!r}).iloc[np.load({str(tmp_path / 'rows.npy')!r})]\n"
        f"truth = frame.pop({target!r}).tolist()\n"
        f"print(json.dumps([truth, model.predict(columns.transform(frame.drop(columns=[{drop!r}])), "
        "verbose=0).tolist()]))", tmp_path)
    truth, predicted = json.loads(answer)
    predicted = np.asarray(predicted)
    if metric == "test_accuracy":
        figure = np.mean(np.asarray(data.class_names)[predicted.argmax(axis=1)] == np.asarray(truth))
    else:
        figure = float(np.sqrt(np.mean((predicted[:, 0] - np.asarray(truth)) ** 2)))
    assert figure == pytest.approx(record[metric], rel=1e-4, abs=1e-6)
