"""The best model of a study: kept in the study's database by the final evaluation, written as a ``.keras`` file.

The final evaluation (:func:`autodnn.evaluate.evaluate`) trains the best configuration with several seeds
and keeps the network of the seed of median validation accuracy: a typical run of the configuration, not its
luckiest, chosen without the test split. It is stored in the study's own
database (:mod:`autodnn.study.artifacts`), and the study's ``evaluation`` attribute records which trial and
seed it is, its test accuracy and the SHA-256 of its bytes, so any machine that reaches the database can
export it.

What is kept is an inference copy in Keras' own ``.keras`` format: the architecture and the trained weights,
uncompiled, without the optimizer that trained them. autodnn's optimizers and schedules (1cycle and the
others) are classes of its own, which Keras could not rebuild without autodnn, and their state is no use for
predicting. So ``keras.saving.load_model(path)`` loads the file in any Python with Keras 3; a network with one
of autodnn's activation layers (Mish, generalized Swish, RReLU) needs ``import autodnn.network.layers`` first, which
registers them under the package name ``autodnn`` (Keras imports no module outside its own to find a class).
The record says which imports a file needs (``imports``), and ``autodnn export`` prints the line to load it.

The kept network takes the data as it comes and answers in the data's own terms: images as arrays of
``(height, width, channels)`` pixel values, a table's encoded rows; its first layers scale the features with the
training statistics (a ``Normalization`` layer, as the book advises), and a regression's last
layer turns the standardized prediction back into the target's units (``Rescaling``). A table's columns are
encoded before that by the study's fitted ``ColumnTransformer`` (:mod:`autodnn.datasets._columns`: imputation,
one-hot codes), which no Keras layer rebuilds: it is kept beside the network and written next to the ``.keras``
file as ``NAME.columns.pkl`` (a pickle; loading it needs scikit-learn and autodnn). So in a fresh process::

    columns = pickle.load(open("best.columns.pkl", "rb"))
    model.predict(columns.transform(frame))   # frame: the raw feature columns, as read from the file
"""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodnn.errors import StudyError, UsageError
from autodnn.study.artifacts import TABLE, load_artifact, save_artifact
from autodnn.study.urls import redact

if TYPE_CHECKING:
    import keras
    import optuna

    from autodnn.datasets import Dataset

#: Name of the best model among the study's artifacts.
ARTIFACT = "best-model"
#: Name of a table's fitted column encoder among the study's artifacts.
COLUMNS_ARTIFACT = "best-model-columns"


def default_path(study_name: str) -> Path:
    """Where ``autodnn export`` writes when no ``-o`` is given: ``STUDY-best.keras`` in the current folder."""
    return Path(f"{study_name}-best.keras")


def model_bytes(model: keras.Model, dataset: Dataset | None = None) -> bytes:
    """The bytes of a ``.keras`` file holding an uncompiled copy of ``model`` with its current weights.

    The copy is rebuilt from the model's configuration, so the file holds no optimizer, loss or schedule.
    With ``dataset`` it is wrapped to take unscaled features and answer in the target's units (module docstring).
    """

    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    if dataset is not None:
        copy = _in_data_units(copy, dataset)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        copy.save(path)
        return path.read_bytes()


def _in_data_units(network: keras.Model, dataset: Dataset) -> keras.Model:
    """``network`` behind the dataset's feature scaling and, for a regression, before its target's units."""
    import keras
    import numpy as np

    if dataset.image_shape is not None:
        inputs = keras.Input(shape=tuple(dataset.image_shape), name="raw_images")
        x = keras.layers.Flatten(name="pixels")(inputs)
    else:
        inputs = keras.Input(shape=(dataset.n_features,), name="raw_features")
        x = inputs
    if dataset.feature_scale is not None:
        mean = np.zeros(dataset.n_features) if dataset.feature_mean is None else dataset.feature_mean
        x = keras.layers.Normalization(mean=mean.astype(np.float32).tolist(),
                                       variance=np.square(dataset.feature_scale).astype(np.float32).tolist(),
                                       name="scaling")(x)
    x = network(x)
    if dataset.is_regression:
        x = keras.layers.Rescaling(scale=dataset.target_std, offset=dataset.target_mean, name="target_units")(x)
    return keras.Model(inputs, x, name=f"{network.name}_in_data_units")


def columns_bytes(dataset: Dataset) -> bytes | None:
    """A table's fitted column encoder, pickled (None for data without one)."""
    import pickle

    return None if dataset.preprocessor is None else pickle.dumps(dataset.preprocessor)


def needed_imports(data: bytes) -> list[str]:
    """The modules outside Keras whose classes a ``.keras`` file's configuration names, e.g. ``autodnn.network.layers``.

    Keras finds its own classes by itself and any other only once its module is imported and registered it.
    """
    with zipfile.ZipFile(BytesIO(data)) as archive:
        config = json.loads(archive.read("config.json"))
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and "registered_name" in node and module.split(".")[0] != "keras":
                found.add(module)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return sorted(found)


def keep_model(study: optuna.Study, data: bytes, record: dict[str, Any], columns: bytes | None = None
               ) -> dict[str, Any]:
    """Stores a ``.keras`` file's bytes as the study's best model (and a table's column encoder beside it).

    Args:
        study: The study, in a SQL storage.
        data: The file, from :func:`model_bytes`.
        record: What to record of the model (trial number, seed, test accuracy, ...).
        columns: The table's fitted column encoder, from :func:`columns_bytes`.

    Returns:
        ``record`` with the artifact's name, size, SHA-256 and the imports loading it needs: the value of the
        ``model`` key of the study's ``evaluation`` attribute.

    Raises:
        StudyError: The study is not in a SQL storage, or the database refused the file.
    """
    digest = save_artifact(study, ARTIFACT, data)
    kept = {**record, "artifact": ARTIFACT, "format": "keras", "bytes": len(data), "sha256": digest,
            "imports": needed_imports(data), "inputs": "unscaled"}
    if columns is not None:
        kept["columns"] = {"artifact": COLUMNS_ARTIFACT, "sha256": save_artifact(study, COLUMNS_ARTIFACT, columns)}
    return kept


def kept_model(study: optuna.Study, storage: str | None = None) -> dict[str, Any]:
    """The record of the model the study's final evaluation kept (see :func:`keep_model`).

    Args:
        study: The study.
        storage: The storage URL the user named, for the command in the error message.

    Raises:
        StudyError: The study has no final evaluation, or its evaluation kept no model.
    """
    evaluation = study.user_attrs.get("evaluation")
    run = _evaluate_command(study.study_name, storage)
    if not evaluation:
        raise StudyError(f"study '{study.study_name}' has no final evaluation yet, so no model to export; run "
                         f"'{run}' first")
    record = evaluation.get("model")
    if not record:
        # No "model" key: evaluated by an autodnn that kept no models. None: every seed diverged, or the
        # database refused the file (that evaluation said so when it ran).
        why = " (it ran before autodnn kept models)" if "model" not in evaluation else ""
        raise StudyError(f"the final evaluation of study '{study.study_name}' kept no model{why}; run "
                         f"'{run}' again")
    return record


def best_model_bytes(study: optuna.Study, storage: str | None = None) -> tuple[dict[str, Any], bytes]:
    """The kept model's record and the bytes of its ``.keras`` file, checked against the recorded SHA-256.

    Raises:
        StudyError: No model was kept, or its bytes are missing from the database or differ from the record.
    """
    import hashlib

    record = kept_model(study, storage)
    data = load_artifact(study, record.get("artifact", ARTIFACT))
    if data is None or hashlib.sha256(data).hexdigest() != record.get("sha256"):
        state = "missing from" if data is None else "changed in"
        raise StudyError(f"the model kept by the final evaluation of study '{study.study_name}' is {state} its "
                         f"database (table {TABLE}); run '{_evaluate_command(study.study_name, storage)}' again")
    return record, data


def export_best(study_name: str, path: str | Path, storage: str | None = None) -> dict[str, Any]:
    """Writes the best model of a study to a ``.keras`` file.

    Args:
        study_name: The study.
        path: The file to write; its name must end with ``.keras`` (Keras reads the format from it) and its
            folder must exist. An existing file is replaced.
        storage: Storage URL; defaults to ``sqlite:///studies/<study_name>.db``.

    Returns:
        The kept model's record (``trial_number``, ``seed``, ``test_accuracy``, ``bytes``, ``imports``, ...)
        with ``path``, the file written.

    Raises:
        UsageError: The path cannot be written.
        StudyError: No such study, or it kept no model (run ``autodnn evaluate STUDY``).
    """
    from autodnn.study.storage import load_study

    target = Path(path)
    _check_target(target)
    study = load_study(study_name, storage)
    record, data = best_model_bytes(study, storage)
    written = {**record, "path": str(target)}
    columns = _columns_file(study, record)
    try:
        target.write_bytes(data)
        if columns is not None:
            written["columns_path"] = str(columns_path(target))
            columns_path(target).write_bytes(columns)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}; choose another output path") from None
    return written


def columns_path(model_path: str | Path) -> Path:
    """Where the column encoder of a table's model is written: ``NAME.columns.pkl`` beside ``NAME.keras``."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.columns.pkl")


def _columns_file(study: optuna.Study, record: dict[str, Any]) -> bytes | None:
    import hashlib

    columns = record.get("columns")
    if not columns:
        return None
    data = load_artifact(study, columns["artifact"])
    if data is None or hashlib.sha256(data).hexdigest() != columns.get("sha256"):
        raise StudyError(f"the column encoder kept with the model of study '{study.study_name}' is missing or "
                         f"changed in its database; run '{_evaluate_command(study.study_name, None)}' again")
    return data


def load_best(study_name: str, storage: str | None = None) -> keras.Model:
    """The best model of a study as an uncompiled ``keras.Model`` (see the module's docstring).

    Args:
        study_name: The study.
        storage: Storage URL; defaults to ``sqlite:///studies/<study_name>.db``.

    Raises:
        StudyError: No such study, or it kept no model (run ``autodnn evaluate STUDY``).
    """
    from autodnn.study.storage import load_study

    _, data = best_model_bytes(load_study(study_name, storage), storage)
    return load_model_bytes(data)


def load_model_bytes(data: bytes) -> keras.Model:
    """Loads a ``.keras`` file's bytes with ``keras.saving.load_model``, autodnn's layers registered."""
    if "keras" not in sys.modules:
        from autodnn.backend import select_backend

        select_backend("auto")
    import keras

    import autodnn.network.layers  # noqa: F401 - registers autodnn's layers, which the file may name

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "best.keras"
        path.write_bytes(data)
        return keras.saving.load_model(path)


def load_hint(record: dict[str, Any], path: str | Path) -> str:
    """The Python line that loads an exported file in a fresh process, e.g.
    ``import keras; model = keras.saving.load_model('best.keras')``."""
    modules = ", ".join(["keras", *record.get("imports", [])])
    line = f"import {modules}; model = keras.saving.load_model({str(path)!r})"
    if record.get("columns"):
        line += (f"; import pickle; columns = pickle.load(open({str(columns_path(path))!r}, 'rb'))"
                 "; model.predict(columns.transform(frame))")
    return line


def _check_target(target: Path) -> None:
    """Refuses a path that cannot become a loadable ``.keras`` file, before the database is opened."""
    if target.suffix != ".keras":
        raise UsageError(f"{target}: the file name must end with .keras (keras.saving.load_model reads the format "
                         "from it); e.g. -o best.keras")
    if target.is_dir():
        raise UsageError(f"{target} is a folder; name a .keras file in it")
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {target}: folder {parent} does not exist; create it or choose another "
                         "output path")


def _evaluate_command(study_name: str, storage: str | None) -> str:
    return f"autodnn evaluate {study_name}" + (f" --storage {redact(storage)}" if storage else "")
