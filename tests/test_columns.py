"""A table's columns: roles and encoders decided on training rows only, identifiers and constants left out,
missing values imputed, rare and unseen categories grouped, ``--drop``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error

from autodnn.datasets import load_dataset
from autodnn.datasets._columns import encode, fit_encoder, plan_columns, rare_count
from autodnn.errors import DatasetError


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "row": rng.permutation(n),  # numbers the rows, in no order
        "name": [f"item-{i}" for i in range(n)],
        "same": ["x"] * n,
        "size": rng.normal(10, 2, n),
        "colour": rng.choice(["red", "green", "blue"], n),
    })


def test_roles_leave_out_identifiers_and_constants_with_a_note_each() -> None:
    frame = _frame()
    plan = plan_columns(frame, np.arange(150), (), "csv:t.csv")
    assert plan.numeric == ("size",) and plan.categorical == ("colour",)
    notes = " | ".join(plan.notes)
    assert "'row': an identifier (an integer numbering the rows)" in notes
    assert "'name': an identifier (one distinct value a row)" in notes and "'same': constant" in notes
    dropped = plan_columns(frame, np.arange(150), ("colour",), "csv:t.csv")
    assert dropped.categorical == () and "left out column 'colour' (--drop)" in dropped.notes


def test_a_float_column_of_distinct_values_is_a_feature_not_an_identifier() -> None:
    frame = pd.DataFrame({"weight": np.linspace(1.5, 99.5, 50), "y": [0, 1] * 25})
    assert plan_columns(frame[["weight"]], np.arange(40), (), "t").numeric == ("weight",)


def test_the_encoder_sees_training_rows_only() -> None:
    frame = pd.DataFrame({"size": [1.0, 2.0, np.nan, 4.0, 100.0, np.nan, 200.0],
                          "colour": ["red", "red", "blue", "blue", "violet", None, "red"]})
    train, test = np.arange(4), np.arange(4, 7)
    encoder = fit_encoder(frame, train, plan_columns(frame, train, (), "t"))
    names = list(encoder.get_feature_names_out())
    assert not any("violet" in name for name in names), "a category seen only in test rows is no feature"
    x = encode(encoder, frame, test)
    size, missing = names.index("numeric__size"), names.index("numeric__missingindicator_size")
    assert x[1, size] == 2.0, "imputed with the training median (1, 2, 4), not one that saw the test rows"
    assert list(x[:, missing]) == [0.0, 1.0, 0.0] and x[0, size] == 100.0


def test_rare_categories_are_grouped_and_unseen_ones_encode_without_error() -> None:
    rng = np.random.default_rng(1)
    colours = list(rng.choice(["red", "green"], 198)) + ["gold", "silver"]
    frame = pd.DataFrame({"colour": colours, "size": rng.normal(0, 1, 200)})
    train = np.arange(200)
    assert rare_count(200) == 5
    encoder = fit_encoder(frame, train, plan_columns(frame, train, (), "t"))
    names = list(encoder.get_feature_names_out())
    assert any("infrequent" in name for name in names) and not any("gold" in name for name in names)
    unseen = pd.DataFrame({"colour": ["platinum", None], "size": [0.0, 1.0]})
    assert encode(encoder, unseen, np.arange(2)).shape == (2, len(names))


def _csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    n = 300
    size = rng.normal(10, 2, n)
    size[rng.random(n) < 0.2] = np.nan
    frame = pd.DataFrame({"id": np.arange(1, n + 1), "size": size, "colour": rng.choice(["red", "blue", None], n),
                          "y": rng.choice(["a", "b"], n)})
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_table_with_missing_values_and_an_identifier_loads_with_its_notes(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    data = load_dataset(f"csv:{path}", target="y", scaling="none")
    assert any("'id': an identifier" in note for note in data.notes) and data.describe()["notes"] == list(data.notes)
    names = list(data.preprocessor.get_feature_names_out())
    size, missing = names.index("numeric__size"), names.index("numeric__missingindicator_size")
    median = np.median(data.x_train[data.x_train[:, missing] == 0, size])
    whole = pd.read_csv(path)["size"].median()
    assert abs(whole - median) > 1e-3, "the file's median differs from the training rows': the test can tell"
    for x in (data.x_train, data.x_valid, data.x_test):
        imputed = x[x[:, missing] == 1, size]
        assert len(imputed) and np.allclose(imputed, median, rtol=1e-6), "imputed with the training median"
    dropped = load_dataset(f"csv:{path}", target="y", scaling="none", drop=["colour"])
    assert dropped.n_features < data.n_features and dropped.fingerprint != data.fingerprint


def test_a_table_whose_every_column_goes_is_refused(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    with pytest.raises(DatasetError, match="no feature column is left"):
        load_dataset(f"csv:{path}", target="y", drop=["size", "colour"])


def test_an_integer_row_number_from_any_start_is_an_identifier_but_gapped_integers_are_kept() -> None:
    frame = pd.DataFrame({"customer": np.arange(1001, 1061)[::-1], "price": np.arange(60) * 7 + 3,
                          "y": [0, 1] * 30})
    plan = plan_columns(frame[["customer", "price"]], np.arange(48), (), "t")
    assert plan.numeric == ("price",) and "'customer': an identifier" in plan.notes[0]


@pytest.mark.parametrize("value", ["2020-01-{day:02d}", "2020/01/{day:02d}", "{day:02d}.01.2020",
                                   "2020-01-{day:02d}T10:30:00Z", "10:{day:02d}:00"])
def test_a_date_or_time_column_is_refused_with_the_fix(tmp_path: Path, value: str) -> None:
    path = tmp_path / "dates.csv"
    rows = [f"{i % 5},{value.format(day=i % 28 + 1)},{i % 2}" for i in range(40)]
    path.write_text("x,when,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"column 'when' holds dates or times .*--drop when") as info:
        load_dataset(f"csv:{path}", target="y")
    assert "\n" not in str(info.value)
    assert load_dataset(f"csv:{path}", target="y", drop="when").n_features == 1


def test_every_class_is_in_the_training_validation_and_test_parts(tmp_path: Path) -> None:
    path = tmp_path / "skewed.csv"
    labels = ["a"] * 200 + ["b"] * 200 + ["c"] * 4 + ["d"] * 3
    path.write_text("x,y\n" + "".join(f"{i % 17},{label}\n" for i, label in enumerate(labels)))
    for seed in range(5):
        data = load_dataset(f"csv:{path}", target="y", seed=seed, valid_fraction=0.1)
        for part in (data.y_train, data.y_valid, data.y_test):
            assert set(part.tolist()) == {0, 1, 2, 3}, (seed, np.bincount(part))
        assert data.sizes["valid"] == int(np.ceil(0.1 * (data.sizes["train"] + data.sizes["valid"])))


def test_a_class_too_small_for_three_parts_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "tiny_class.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(40)) + "7,rare\n")
    with pytest.raises(DatasetError, match=r"class 'rare' has 1 example, too few .* drop or merge that class"):
        load_dataset(f"csv:{path}", target="y")


def test_the_fingerprint_follows_the_raw_table_and_the_drop_list(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    first = load_dataset(f"csv:{path}", target="y")
    assert load_dataset(f"csv:{path}", target="y").fingerprint == first.fingerprint
    assert load_dataset(f"csv:{path}", target="y", drop=["colour"]).fingerprint != first.fingerprint
    frame = pd.read_csv(path)
    frame.loc[0, "colour"] = "green"
    frame.to_csv(path, index=False)
    assert load_dataset(f"csv:{path}", target="y").fingerprint != first.fingerprint


@pytest.mark.parametrize(("drop", "fragments"), [
    ("size,nope", ["--drop names no column 'nope'", "columns are: id, size, colour, y"]),
    ("size,colour", ["no feature column is left", "'id': an identifier", "(--drop)"]),
])
def test_search_refuses_a_bad_drop_in_one_line_and_writes_no_study(run_cli, tmp_path: Path, drop: str,
                                                                   fragments: list[str]) -> None:
    path = _csv(tmp_path)
    database = tmp_path / "cols.db"
    result = run_cli("search", "--dataset", f"csv:{path}", "--target", "y", "--drop", drop, "--study", "cols",
                     "--storage", f"sqlite:///{database}", "--n-trials", "1")
    assert_user_error(result, *fragments)
    assert not database.exists()


def test_search_prints_what_became_of_the_columns_before_the_study_line(run_cli, workdir: Path) -> None:
    path = _csv(workdir)
    (workdir / "tiny.yaml").write_text("params:\n  n_hidden: 1\n  n_units: 8\n  batch_size: 64\n"
                                       "  learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}\n")
    result = run_cli("search", "--dataset", f"csv:{path}", "--target", "y", "--drop", "colour", "--space",
                     "tiny.yaml", "--study", "cols", "--n-trials", "1", "--max-epochs", "1", "--no-baselines",
                     "--no-final", "--no-warm-start")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    identifier = "Left out column 'id': an identifier (an integer numbering the rows); a network cannot learn from it"
    assert lines[:2] == [identifier, "Left out column 'colour' (--drop)"], lines[:3]
    assert "cols" in lines[2], "the study line follows the notes"
