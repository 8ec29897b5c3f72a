"""Plotly figures of a report, built as plain JSON-able dicts from :mod:`autodnn.report._data`.

The four search figures draw what ``optuna.visualization`` draws (optimization history, parameter
importances, parallel coordinates, intermediate values), but from data gathered once: Optuna's own
functions build a figure object per trial and took about 50 s for a study of 10,000 trials. Each is labelled
with the study's metric (validation accuracy, a regression's R² ...). A regression also gets its kept network's
predictions against the actual targets, and their residuals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from autodnn.evaluate import in_points
from autodnn.report._data import Curve, LRCurve, Predictions, SearchData
from autodnn.report._measures import title_of

Figure = dict[str, Any]

FONT = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
#: Okabe-Ito colours: distinguishable with every common colour-vision deficiency.
COLORS = {"best": "#0072B2", "book-2e": "#E69F00", "book-3e": "#009E73", "book-selu": "#CC79A7",
          "book-ch10": "#56B4E9"}
OTHER_COLORS = ("#D55E00", "#56B4E9", "#F0E442", "#000000", "#999999")
PRUNED = "#D55E00"
#: Above this many points a trace switches to WebGL, which SVG cannot keep up with.
WEBGL_POINTS = 5000
#: Parallel coordinates draw at most this many trials: without a GPU, WebGL takes seconds per thousand lines.
MAX_PARALLEL = 1000


def color(name: str, index: int = 0) -> str:
    """The colour of a configuration, the same in every figure."""
    return COLORS.get(name) or OTHER_COLORS[index % len(OTHER_COLORS)]


def to_json(figures: dict[str, Figure]) -> str:
    """JSON text that is safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` are escaped."""
    try:
        text = json.dumps(figures, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(_sanitize(figures), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _sanitize(value: Any) -> Any:
    # Plotly draws null as a gap; NaN and infinity are not JSON.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitize(v) for v in value]
    return value


def _finite(values: Sequence[Any]) -> list[Any]:
    return [v if isinstance(v, (int, float)) and math.isfinite(v) else None for v in values]


def _layout(height: int = 380, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 64, "r": 24, "t": 36, "b": 52},
        "font": {"family": FONT, "size": 12, "color": "#24292f"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.22, "x": 0},
    }
    layout.update(extra)
    return layout


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    axis = {"title": {"text": title}, "gridcolor": "#e6e8eb", "zeroline": False, "linecolor": "#b8bec6",
            "automargin": True}
    axis.update(extra)
    return axis


def _metric_axis(metric: str, percent_format: str, values: Sequence[Any] = (), *, named: bool = False
                 ) -> dict[str, Any]:
    """A y axis of the study's metric: a share in percent; an R² cut at -1 when some value falls below (the
    interesting part lies between -1 and 1, and a diverged run would squash it)."""
    title = title_of(metric) + (f" ({metric})" if named and metric != "val_accuracy" else "")
    if in_points(metric):
        return _axis(title, tickformat=percent_format)
    finite = [v for v in _finite(values) if v is not None]
    if metric.endswith("_r2") and finite and min(finite) < -1:
        return _axis(title + ", cut at -1", range=[-1.02, max(1.0, max(finite)) + 0.02])
    return _axis(title)


def learning_curves(curves: Sequence[Curve], metric: str = "val_accuracy") -> Figure | None:
    """The validation metric (left: accuracy, or a regression's R²) and loss (right) per epoch, one colour per
    configuration, one line per seed."""
    if not curves:
        return None
    data: list[dict[str, Any]] = []
    seen: set[str] = set()
    names = list(dict.fromkeys(c.name for c in curves))
    for curve in curves:
        c = color(curve.name, names.index(curve.name))
        label = _text(curve.title) + (f" · seed {curve.seed}" if curve.seed is not None else "")
        epochs = list(range(1, len(curve.values) + 1))
        common = {"mode": "lines", "legendgroup": curve.name, "name": _text(curve.title),
                  "line": {"color": c, "width": 2.4 if curve.kind == "best" else 1.6},
                  "hovertemplate": f"{label}<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>"}
        data.append({**common, "type": "scatter", "x": epochs, "y": _finite(curve.values),
                     "showlegend": curve.name not in seen})
        if curve.val_loss:
            data.append({**common, "type": "scatter", "x": list(range(1, len(curve.val_loss) + 1)),
                         "y": _finite(curve.val_loss), "xaxis": "x2", "yaxis": "y2", "showlegend": False})
        seen.add(curve.name)
    return {"data": data, "layout": _layout(
        400,
        xaxis=_axis("epoch", domain=[0, 0.46]),
        yaxis=_metric_axis(metric, ".0%", [v for c in curves for v in c.values]),
        xaxis2=_axis("epoch", domain=[0.56, 1], anchor="y2"),
        yaxis2=_axis("validation loss", anchor="x2"),
        legend={"orientation": "h", "y": -0.2, "x": 0},
    )}


def _text(text: Any) -> str:
    # Plotly reads labels as pseudo-HTML (<b>, <br>, entities): escaping shows user text literally.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def lr_finder(curve: LRCurve) -> Figure:
    """Loss against learning rate on a log axis, with the finder's pick and turning point marked."""
    smoothed = [v for v in _finite(curve.smoothed) if v is not None]
    losses = [v for v in _finite(curve.losses) if v is not None]
    low = min(smoothed or losses or [0.0])
    high = (smoothed or losses or [1.0])[0] + low
    y_range = [max(0.0, low - 0.1 * (high - low)), high]
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "loss per batch", "x": curve.learning_rates,
         "y": _finite(curve.losses), "line": {"color": "#b8bec6", "width": 1}},
        {"type": "scatter", "mode": "lines", "name": "smoothed loss", "x": curve.learning_rates,
         "y": _finite(curve.smoothed), "line": {"color": COLORS["best"], "width": 2.4}},
    ]
    if curve.turning_point:
        data.append({"type": "scatter", "mode": "lines", "name": f"turning point {curve.turning_point:.2g}",
                     "x": [curve.turning_point] * 2, "y": y_range,
                     "line": {"color": "#57606a", "width": 1.5, "dash": "dot"}})
    if curve.suggestion:
        data.append({"type": "scatter", "mode": "lines", "name": f"pick {curve.suggestion:.2g}",
                     "x": [curve.suggestion] * 2, "y": y_range,
                     "line": {"color": PRUNED, "width": 2, "dash": "dash"}})
    return {"data": data, "layout": _layout(
        360, xaxis=_axis("learning rate (log scale)", type="log", exponentformat="power"),
        yaxis=_axis("training loss", range=y_range))}


def history(search: SearchData) -> Figure | None:
    """The objective value of every complete trial in trial order, with the best so far as a step line."""
    if not search.numbers:
        return None
    kind = "scattergl" if len(search.numbers) > WEBGL_POINTS else "scatter"
    groups: dict[str, list[int]] = {}
    for i, mark in enumerate(search.baselines):
        groups.setdefault(mark or "", []).append(i)
    best, running = [], -math.inf
    for value in search.values:
        running = max(running, value)
        best.append(running)
    data: list[dict[str, Any]] = [
        {"type": kind, "mode": "lines", "name": "best so far", "x": search.numbers, "y": best,
         "line": {"color": COLORS["best"], "width": 2, "shape": "hv"}, "hoverinfo": "skip"},
    ]
    for index, (mark, rows) in enumerate(sorted(groups.items())):
        data.append({
            "type": kind, "mode": "markers", "name": _text(mark) if mark else "searched trial",
            "x": [search.numbers[i] for i in rows], "y": [search.values[i] for i in rows],
            "marker": {"color": color(mark, index) if mark else "#6e7781", "size": 11 if mark else 6,
                       "symbol": "diamond" if mark else "circle", "opacity": 1 if mark else 0.75},
            "hovertemplate": "trial %{x}: %{y:.4f}<extra></extra>",
        })
    return {"data": data, "layout": _layout(
        360, xaxis=_axis("trial number"), yaxis=_metric_axis(search.metric, ".1%", search.values, named=True))}


def importances(search: SearchData) -> Figure | None:
    """Horizontal bars, the most important parameter on top."""
    if not search.importances:
        return None
    items = sorted(search.importances.items(), key=lambda kv: kv[1])
    return {"data": [{
        "type": "bar", "orientation": "h", "x": [v for _, v in items], "y": [_text(k) for k, _ in items],
        "marker": {"color": COLORS["best"]}, "text": [f"{v:.2f}" for _, v in items], "textposition": "outside",
        "cliponaxis": False, "hovertemplate": "%{y}: %{x:.3f}<extra></extra>",
    }], "layout": _layout(max(220, 60 + 28 * len(items)), showlegend=False,
                          xaxis=_axis(f"importance for {title_of(search.metric)} (share of total)",
                                      rangemode="tozero"),
                          yaxis=_axis("", automargin=True), margin={"l": 24, "r": 48, "t": 24, "b": 52})}


def parallel_rows(search: SearchData) -> list[int]:
    """Which searched trials the parallel-coordinates plot draws: all, or an even sample plus the best."""
    n = len(search.searched)
    if n <= MAX_PARALLEL:
        return list(range(n))
    best = max(range(n), key=search.searched.__getitem__)
    return sorted({int(i * n / MAX_PARALLEL) for i in range(MAX_PARALLEL - 1)} | {best})


def parallel(search: SearchData, limit: int = 12) -> Figure | None:
    """Parallel coordinates of the parameters that vary, coloured by the objective value."""
    if not search.columns or len(search.searched) < 2:
        return None
    rows = parallel_rows(search)
    ordered = sorted(search.importances, key=lambda k: search.importances[k], reverse=True)
    rank = {name: i for i, name in enumerate(ordered)}
    columns = sorted(search.columns, key=lambda c: rank.get(c.name, len(rank)))[:limit]
    values = [search.searched[i] for i in rows]
    percent = in_points(search.metric)
    dimensions = [{"label": title_of(search.metric), "values": values, "tickformat": ".1%" if percent else ".2f"}]
    for column in columns:
        dimensions.append(_dimension(column.name, [column.values[i] for i in rows], column.categorical, column.log))
    return {"data": [{
        "type": "parcoords", "dimensions": dimensions,
        "line": {"color": values, "colorscale": "Viridis", "showscale": True, **_color_range(search.metric, values),
                 "colorbar": {"title": {"text": _short(search.metric)}, "tickformat": ".0%" if percent else ".2f"}},
        "labelfont": {"size": 12}, "tickfont": {"size": 10},
    }], "layout": _layout(460, margin={"l": 80, "r": 72, "t": 84, "b": 36})}


def _short(metric: str) -> str:
    """A colour bar's title: ``val. acc.``, ``val. R²``."""
    return "val. acc." if metric == "val_accuracy" else title_of(metric).replace("validation", "val.")


def _color_range(metric: str, values: list[float]) -> dict[str, float]:
    """An R²'s colours start at -1, so that one diverged trial does not paint every other one alike."""
    return {"cmin": -1.0} if metric.endswith("_r2") and values and min(values) < -1 else {}


def _dimension(name: str, values: list[Any], categorical: bool, log: bool) -> dict[str, Any]:
    missing = any(v is None for v in values)
    if categorical:
        labels = sorted({_label(v) for v in values if v is not None})
        if missing:
            labels.append("not set")
        index = {label: i for i, label in enumerate(labels)}
        return {"label": _text(name), "values": [index[_label(v) if v is not None else "not set"] for v in values],
                "tickvals": list(range(len(labels))), "ticktext": labels}
    numbers = [math.log10(v) if log and v > 0 else float(v) for v in values if v is not None]
    low, high = min(numbers), max(numbers)
    gap = low - 0.12 * ((high - low) or 1.0)
    plotted = [(math.log10(v) if log and v > 0 else float(v)) if v is not None else gap for v in values]
    dimension: dict[str, Any] = {"label": _text(name) + (" (log)" if log else ""), "values": plotted,
                                 "range": [gap if missing else low, high]}
    ticks = [float(t) for t in range(math.ceil(low), math.floor(high) + 1)] if log else _nice_ticks(low, high)
    # Plotly draws a parcoords axis only between its outer ticks: label both ends of the data too.
    for end in (low, high):
        if all(abs(end - t) > 0.06 * ((high - low) or 1.0) for t in ticks):
            ticks.append(end)
    ticks.sort()
    text = [f"{10 ** t:.2g}" if log else f"{t:.3g}" for t in ticks]
    if missing:
        ticks, text = [gap, *ticks], ["not set", *text]
    if ticks:
        dimension["tickvals"], dimension["ticktext"] = ticks, text
    return dimension


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10)), key=lambda m: abs(m - raw))
    first = math.ceil(low / step) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: Any) -> str:
    return _text(f"{value:g}" if isinstance(value, float) else value)


def intermediate(search: SearchData) -> Figure | None:
    """The objective value per epoch of every trial: complete ones in blue, pruned ones in orange."""
    if not search.lines:
        return None
    data = []
    points = sum(len(v) for _, _, v in search.lines)
    kind = "scattergl" if points > 20 * WEBGL_POINTS else "scatter"
    for pruned, name, c in ((False, "complete", COLORS["best"]), (True, "pruned", PRUNED)):
        xs: list[int | None] = []
        ys: list[float | None] = []
        texts: list[str] = []
        ends_x, ends_y = [], []
        for number, was_pruned, values in search.lines:
            if was_pruned != pruned:
                continue
            xs.extend([*range(1, len(values) + 1), None])
            ys.extend([*_finite(values), None])
            texts.extend([f"trial {number}"] * len(values) + [""])
            if pruned and values and values[-1] is not None:
                ends_x.append(len(values))
                ends_y.append(values[-1])
        if not xs:
            continue
        data.append({"type": kind, "mode": "lines", "name": name, "x": xs, "y": ys, "text": texts,
                     "line": {"color": c, "width": 1}, "opacity": 0.55, "connectgaps": False,
                     "hovertemplate": "%{text}, epoch %{x}: %{y:.4f}<extra></extra>"})
        if ends_x:
            data.append({"type": kind, "mode": "markers", "name": "pruned here", "x": ends_x, "y": ends_y,
                         "marker": {"color": c, "size": 5, "symbol": "x"}, "hoverinfo": "skip"})
    return {"data": data, "layout": _layout(
        380, xaxis=_axis("epoch"),
        yaxis=_metric_axis(search.metric, ".0%", [v for _, _, values in search.lines for v in values]))}


def predicted_vs_actual(predictions: Predictions) -> Figure:
    """Each test row's prediction against its actual target, on equal axes, with the diagonal of exact ones."""
    p = predictions
    low = min(min(p.actual), min(p.predicted))
    high = max(max(p.actual), max(p.predicted))
    pad = 0.03 * ((high - low) or 1.0)
    ends = [low - pad, high + pad]
    kind = "scattergl" if len(p.actual) > WEBGL_POINTS else "scatter"
    target = _text(p.target)
    return {"data": [
        {"type": "scatter", "mode": "lines", "name": "exact (predicted = actual)", "x": ends, "y": ends,
         "line": {"color": "#57606a", "width": 1.5, "dash": "dash"}, "hoverinfo": "skip"},
        {"type": kind, "mode": "markers", "name": "test row", "x": p.actual, "y": p.predicted,
         "marker": {"color": COLORS["best"], "size": 6, "opacity": 0.65},
         "hovertemplate": "actual %{x:.4g}<br>predicted %{y:.4g}<extra></extra>"},
    ], "layout": _layout(
        440, xaxis=_axis(f"actual {target}", range=ends),
        yaxis=_axis(f"predicted {target}", range=ends, scaleanchor="x", scaleratio=1))}


def residuals(predictions: Predictions) -> Figure:
    """Each test row's residual (actual minus predicted) against its prediction, around the zero line."""
    p = predictions
    kind = "scattergl" if len(p.actual) > WEBGL_POINTS else "scatter"
    target = _text(p.target)
    ends = [min(p.predicted), max(p.predicted)]
    return {"data": [
        {"type": "scatter", "mode": "lines", "name": "no error", "x": ends, "y": [0.0, 0.0],
         "line": {"color": "#57606a", "width": 1.5, "dash": "dash"}, "hoverinfo": "skip"},
        {"type": kind, "mode": "markers", "name": "test row", "x": p.predicted, "y": p.residuals,
         "marker": {"color": PRUNED, "size": 6, "opacity": 0.65},
         "hovertemplate": "predicted %{x:.4g}<br>actual minus predicted %{y:.4g}<extra></extra>"},
    ], "layout": _layout(
        380, xaxis=_axis(f"predicted {target}"), yaxis=_axis(f"residual: actual minus predicted {target}"))}
