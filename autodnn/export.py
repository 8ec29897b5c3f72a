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

#: Name of the best model among the study's artifacts.
ARTIFACT = "best-model"


def default_path(study_name: str) -> Path:
    """Where ``autodnn export`` writes when no ``-o`` is given: ``STUDY-best.keras`` in the current folder."""
    return Path(f"{study_name}-best.keras")


def model_bytes(model: keras.Model) -> bytes:
    """The bytes of a ``.keras`` file holding an uncompiled copy of ``model`` with its current weights.

    The copy is rebuilt from the model's configuration, so the file holds no optimizer, loss or schedule.
    """
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        copy.save(path)
        return path.read_bytes()


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


def keep_model(study: optuna.Study, data: bytes, record: dict[str, Any]) -> dict[str, Any]:
    """Stores a ``.keras`` file's bytes as the study's best model.

    Args:
        study: The study, in a SQL storage.
        data: The file, from :func:`model_bytes`.
        record: What to record of the model (trial number, seed, test accuracy, ...).

    Returns:
        ``record`` with the artifact's name, size, SHA-256 and the imports loading it needs: the value of the
        ``model`` key of the study's ``evaluation`` attribute.

    Raises:
        StudyError: The study is not in a SQL storage, or the database refused the file.
    """
    digest = save_artifact(study, ARTIFACT, data)
    return {**record, "artifact": ARTIFACT, "format": "keras", "bytes": len(data), "sha256": digest,
            "imports": needed_imports(data)}


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
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}; choose another output path") from None
    return {**record, "path": str(target)}


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
    return f"import {modules}; model = keras.saving.load_model({str(path)!r})"


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
