"""Renders gathered report data as one self-contained HTML page (Jinja2, plotly.js embedded once)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from autodnn.config import TrialConfig
from autodnn.defaults import ASSUMPTIONS, CHAPTER_10, TABLE_11_3, TABLE_11_4
from autodnn.evaluate import in_points
from autodnn.report import _figures
from autodnn.report._data import ReportData, generated_at
from autodnn.report._measures import format_units, format_value, title_of
from autodnn.space import stored_family
from autodnn.study.strategy import engine_label, pruning_rule

TEMPLATES = Path(__file__).parent / "templates"
#: How many parameters the trials table shows per trial (the rest are in the cell's tooltip).
KEY_PARAMS = 6

_ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "prelu": "PReLU", "rrelu": "RReLU", "elu": "ELU",
                "selu": "SELU", "gelu": "GELU", "swish": "Swish", "mish": "Mish", "tanh": "tanh",
                "sigmoid": "sigmoid"}
_INITIALIZERS = {"auto": "Matched to the activation (Table 11-1)", "glorot": "Glorot initialization",
                 "he": "He initialization", "lecun": "LeCun initialization"}
_NORMALIZATIONS = {"none": "None", "batch_norm_before": "Batch norm before the activation",
                   "batch_norm_after": "Batch norm after the activation"}
_OPTIMIZERS = {"sgd": "Plain SGD", "momentum": "Momentum optimization",
               "nesterov": "Nesterov accelerated gradients", "adagrad": "AdaGrad", "rmsprop": "RMSProp",
               "adam": "Adam", "adamax": "Adamax", "nadam": "Nadam", "adamw": "AdamW"}
_SCHEDULES = {"constant": "Constant learning rate", "power": "Power scheduling",
              "exponential": "Exponential scheduling", "piecewise": "Piecewise constant scheduling",
              "performance": "Performance scheduling", "1cycle": "1cycle", "cosine": "Cosine decay"}


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}%"


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "—"
    return f"{100 * mean:.1f} ± {100 * std:.1f}%" if std is not None else _pct(mean)


def _points(difference: float | None, spread: float | None = None) -> str:
    if difference is None:
        return "—"
    return f"{difference:+.1f} ± {spread:.1f}" if spread is not None else f"{difference:+.1f}"


def _score(value: float | None, metric: str, digits: int = 2) -> str:
    """A trial's objective value: a share in percent, anything else (a regression's R² ...) as a number."""
    if value is None:
        return ""
    return _pct(value, digits) if in_points(metric) else f"{value:.4f}"


def _upper_first(text: str) -> str:
    """``text`` with its first letter in capitals and the rest as it is (Jinja's ``capitalize`` lowers R²)."""
    return text[:1].upper() + text[1:]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def describe_config(config: dict[str, Any], learning_rate: float | None = None) -> dict[str, str]:
    """The fields of a configuration that each defaults-table row decides, in the table's words.

    Args:
        config: TrialConfig fields; missing ones take TrialConfig's defaults.
        learning_rate: The learning rate training actually used (the finder's pick), when known.

    Returns:
        Row name (Table 11-3's, plus depth, learning rate and batch size) -> description.
    """
    c = {**TrialConfig().to_dict(), **config}
    activation = _ACTIVATIONS.get(c["activation"], str(c["activation"]))
    if c["activation"] in ("leaky_relu", "elu"):
        activation += f" (α {_num(c['activation_alpha'])})"
    elif c["activation"] == "swish" and c["swish_beta"] != 1:
        activation += f" (β {_num(c['swish_beta'])})"
    normalization = _NORMALIZATIONS.get(c["normalization"], str(c["normalization"]))
    if c["normalization"] != "none":
        normalization += f", momentum {_num(c['bn_momentum'])}"
    regularization = [f"Early stopping (patience {c['patience']})"]
    for key, label in (("l1", "ℓ1"), ("l2", "ℓ2"), ("weight_decay", "weight decay"), ("max_norm", "max-norm"),
                       ("alpha_dropout", "alpha dropout")):
        if c.get(key):
            regularization.append(f"{label} {_num(c[key])}")
    if c.get("dropout"):
        where = {"all": "every layer", "top": f"top {c['dropout_top_k']} layers", "last": "last layer"}
        regularization.append(f"dropout {_num(c['dropout'])} ({where.get(c['dropout_placement'], '')})")
    for key, label in (("spatial_dropout", "spatial dropout"), ("augment_shift", "shifts up to"),
                       ("label_smoothing", "label smoothing")):
        if c.get(key):
            regularization.append(f"{label} {_num(c[key])}")
    if c.get("augment_flip"):
        regularization.append("flips")
    optimizer = _OPTIMIZERS.get(c["optimizer"], str(c["optimizer"]))
    if c["optimizer"] in ("momentum", "nesterov"):
        optimizer += f" (momentum {_num(c['momentum'])})"
    elif c["optimizer"] in ("adam", "adamax", "nadam", "adamw"):
        optimizer += f" (β₁ {_num(c['beta_1'])}, β₂ {_num(c['beta_2'])})"
    schedule = _SCHEDULES.get(c["schedule"], str(c["schedule"]))
    if c["schedule"] == "performance":
        schedule += f" (factor {_num(c['plateau_factor'])}, patience {c['plateau_patience']})"
    elif c["schedule"] in ("power", "exponential"):
        schedule += f" (s = {_num(c['decay_epochs'])} epochs)"
    if c.get("epochs"):
        schedule += f", over {c['epochs']} epochs"
    rate = _num(learning_rate if learning_rate is not None else c["learning_rate"])
    if c["lr_finder"]:
        rate = f"{rate}, the LR finder's pick" if learning_rate is not None else "the LR finder's pick"
    initializer = _INITIALIZERS.get(c["initializer"], str(c["initializer"]))
    initializer += f", {c['init_distribution']} distribution" if c["initializer"] == "auto" else \
        f" ({c['init_distribution']})"
    return {
        "Kernel initializer": initializer,
        "Activation function": activation,
        "Normalization": normalization,
        "Regularization": "; ".join(regularization),
        "Optimizer": optimizer,
        "Learning rate schedule": schedule,
        "Depth × width": TrialConfig.from_dict(c).shape_words.replace(" x ", " × "),
        "Learning rate": rate,
        "Batch size": str(c["batch_size"]),
    }


def defaults_rows(data: ReportData) -> list[dict[str, Any]]:
    """Rows of the side-by-side defaults table: the book's cells verbatim, then the best configuration's."""
    best = describe_config(data.best_config, data.best_learning_rate) if data.best_config else {}
    rows = []
    for name, cells in TABLE_11_3.items():
        selu = TABLE_11_4[name]
        selu_text = selu["3e"] if selu["3e"] == selu["2e"] else f"{selu['3e']} (2nd edition: {selu['2e']})"
        rows.append({"name": name, "e2": cells["2e"], "e3": cells["3e"], "selu": selu_text,
                     "best": best.get(name, "—"), "book": True})
    for name in ("Depth × width", "Learning rate", "Batch size"):
        rows.append({"name": name, "best": best.get(name, "—"), "book": False})
    return rows


def _params_text(params: dict[str, Any], order: list[str]) -> tuple[str, str]:
    keys = sorted(params, key=lambda k: (order.index(k) if k in order else len(order), k))
    shown = ", ".join(f"{k}={_num(params[k])}" for k in keys[:KEY_PARAMS])
    if len(keys) > KEY_PARAMS:
        shown += f", … (+{len(keys) - KEY_PARAMS})"
    return shown, ", ".join(f"{k}={_num(params[k])}" for k in keys)


def _study_view(index: int, data: ReportData, figures: dict[str, dict[str, Any]], *, named: bool = False
                ) -> dict[str, Any]:
    prefix = f"s{index}"

    def figure(key: str, fig: dict[str, Any] | None) -> str | None:
        if fig is None:
            return None
        figures[f"{prefix}-{key}"] = fig
        return f"{prefix}-{key}"

    order = sorted(data.search.importances, key=lambda k: data.search.importances[k], reverse=True)
    order += [c.name for c in data.search.columns if c.name not in order]
    rows = []
    for row in data.trials:
        shown, full = _params_text(row.params, order)
        rows.append({"row": row, "params": shown, "all_params": full})
    sections = [("headline", "Result"), ("defaults", "Book defaults"), ("curves", "Learning curves"),
                ("search", "Search"), ("trials", "Trials"), ("compute", "Compute"), ("environment", "Environment")]
    regression = data.task == "regression"
    if regression:
        sections.insert(1, ("predictions", "Predictions"))
    predictions = data.predictions
    return {
        "id": prefix,
        "data": data,
        "sections": [(f"{prefix}-{key}", title) for key, title in sections],
        "defaults": defaults_rows(data),
        "scores": [(sc, next((c for c in data.headline.comparisons if c.baseline is sc), None))
                   for sc in data.headline.scores],
        "mc": any(s.mc_accuracy for s in data.headline.scores),
        "fig_curves": figure("curves", _figures.learning_curves(data.curves, data.curves_metric)),
        "fig_lr": figure("lr", _figures.lr_finder(data.lr_curve)) if data.lr_curve else None,
        "fig_history": figure("history", _figures.history(data.search)),
        "fig_importances": figure("importances", _figures.importances(data.search)),
        "fig_parallel": figure("parallel", _figures.parallel(data.search)),
        "parallel_drawn": len(_figures.parallel_rows(data.search)),
        "fig_intermediate": figure("intermediate", _figures.intermediate(data.search)),
        "rows": rows,
        "engine": engine_label(data.options),
        "pruning_rule": pruning_rule(data.options),
        "regression": regression,
        "measure": data.headline.measure,
        "search_metric": data.search.metric,
        "search_title": title_of(data.search.metric),
        "curves_title": title_of(data.curves_metric),
        "fig_predicted": figure("predicted", _figures.predicted_vs_actual(predictions)) if predictions else None,
        "fig_residuals": figure("residuals", _figures.residuals(predictions)) if predictions else None,
        "chapter_10": describe_config(CHAPTER_10.config.to_dict()) if regression else {},
        "best_values": _best_values(data, named=named),
    }


def _best_values(data: ReportData, *, named: bool) -> tuple[str, str]:
    """The comparison table's best validation value and best test figure of one study, each named by its metric
    where ``named`` (the table's header names none: the studies measure different things)."""
    metric = data.search.metric
    validation = _score(max(data.search.values), metric, 1) if data.search.values else "—"
    headline = data.headline
    test = headline.measure.show(headline.best.mean, headline.best.std) if headline.evaluated and headline.best \
        else "—"
    if named and validation != "—":
        validation = f"{title_of(metric)} {validation}"
    if named and test != "—":
        test = f"{headline.measure.title} {test}"
    return validation, test



def _environment(name: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, pct=_pct, pm=_pm, points=_points, duration=_duration, score=_score,
                       figure=format_value, upper_first=_upper_first,
                       units=format_units)
    return env


def _networks(space: dict[str, Any]) -> str:
    """What a study's space searches, in a word: ``convolutional`` or ``dense``."""
    return "convolutional" if space and stored_family({"space": space}) == "conv" else "dense"


def render(data: Sequence[ReportData], *, generated: str | None = None) -> str:
    """Renders one or more studies as a self-contained HTML page.

    Args:
        data: One :class:`ReportData` per study, in the order they appear.
        generated: Footer timestamp; defaults to now.

    Returns:
        The HTML text: plotly.js is embedded once and every figure's JSON is escaped for ``<script>``.
    """
    import plotly.offline

    figures: dict[str, dict[str, Any]] = {}
    classification_only = all(d.task != "regression" for d in data)
    studies = [_study_view(i, d, figures, named=not classification_only) for i, d in enumerate(data)]
    template = _environment("report.html").get_template("report.html")
    return template.render(
        studies=studies,
        title=" + ".join(d.study for d in data) or "no study",
        assumptions=ASSUMPTIONS,
        show_engine=any(s["engine"] for s in studies),
        classification_only=classification_only,
        networks=" and ".join(sorted({_networks(d.space) for d in data})) or "dense",
        predicted=any(d.predictions is not None for d in data),
        generated=generated or generated_at(),
        plotly_js=Markup(plotly.offline.get_plotlyjs()),
        figures_json=Markup(_figures.to_json(figures)),
    )
