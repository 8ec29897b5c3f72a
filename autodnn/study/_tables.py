"""Fast readers of Optuna's trial tables: plain rows straight from the driver instead of one ORM object each."""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


def summary_rows(storage: optuna.storages.RDBStorage, study_id: int,
                 user_attrs: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per trial, the fields of :class:`autodnn.study.records.TrialSummary`, without intermediate values.

    Args:
        storage: A SQL storage.
        study_id: The study's id in it.
        user_attrs: The user attributes to read; the others stay unread.
    """
    from optuna.distributions import json_to_distribution
    from optuna.storages._rdb import models
    from sqlalchemy import func

    params = models.TrialParamModel.__table__.c
    users = models.TrialUserAttributeModel.__table__.c
    systems = models.TrialSystemAttributeModel.__table__.c
    steps = models.TrialIntermediateValueModel.__table__.c
    rows: dict[int, dict[str, Any]] = {}
    with storage.engine.connect() as connection:
        joined = _StudyRows(connection, study_id)
        for trial_id, number, state, start, end, value in joined.trials():
            rows[trial_id] = {"number": number, "trial_id": trial_id, "state": state, "value": value, "params": {},
                              "user_attrs": {}, "system_attrs": {}, "n_intermediate": 0,
                              "duration": end - start if start and end else None}
        # Each parameter has one distribution in nearly every study: read those once, not with every row.
        pairs = connection.execute(joined(params.param_name, params.distribution_json).distinct()).all()
        per_name = {name: json_to_distribution(text) for name, text in pairs}
        if len(per_name) == len(pairs):
            for trial_id, name, value in _raw_rows(connection, joined(params.trial_id, params.param_name,
                                                                      params.param_value)):
                rows[trial_id]["params"][name] = per_name[name].to_external_repr(value)
        else:
            distributions = {text: json_to_distribution(text) for _, text in pairs}
            for trial_id, name, value, text in connection.execute(
                    joined(params.trial_id, params.param_name, params.param_value, params.distribution_json)).all():
                rows[trial_id]["params"][name] = distributions[text].to_external_repr(value)
        for trial_id, key, text in connection.execute(
                joined(users.trial_id, users.key, users.value_json).where(users.key.in_(user_attrs))).all():
            rows[trial_id]["user_attrs"][key] = json.loads(text)
        for trial_id, key, text in connection.execute(
                joined(systems.trial_id, systems.key, systems.value_json)
                .where(systems.key.in_(("failed_trial", "retry_history")))).all():
            rows[trial_id]["system_attrs"][key] = json.loads(text)
        for trial_id, count in connection.execute(
                joined(steps.trial_id, func.count()).group_by(steps.trial_id)).all():
            rows[trial_id]["n_intermediate"] = count
    return list(rows.values())


def trials_from_tables(storage: optuna.storages.RDBStorage, study_id: int) -> list[FrozenTrial]:
    """Every trial of a study in a SQL storage, whole, in number order, read as plain rows."""
    from optuna.distributions import json_to_distribution
    from optuna.storages._rdb import models

    tables = {name: model.__table__.c for name, model in (
        ("params", models.TrialParamModel), ("users", models.TrialUserAttributeModel),
        ("systems", models.TrialSystemAttributeModel), ("steps", models.TrialIntermediateValueModel))}
    rows: dict[int, dict[str, Any]] = {}
    with storage.engine.connect() as connection:
        joined = _StudyRows(connection, study_id)
        for trial_id, number, state, start, end, value in joined.trials():
            rows[trial_id] = {"number": number, "trial_id": trial_id, "state": TrialState[state.name], "value": value,
                              "datetime_start": start, "datetime_complete": end, "params": {},
                              "distributions": {}, "user_attrs": {}, "system_attrs": {}, "intermediate_values": {}}
        params = tables["params"]
        distributions = {text: json_to_distribution(text) for (text,) in
                         connection.execute(joined(params.distribution_json).distinct()).all()}
        for trial_id, name, value, text in _raw_rows(connection, joined(params.trial_id, params.param_name,
                                                                        params.param_value, params.distribution_json)):
            row = rows[trial_id]
            row["distributions"][name] = distributions[text]
            row["params"][name] = distributions[text].to_external_repr(value)
        for kind in ("users", "systems"):
            table = tables[kind]
            field_name = "user_attrs" if kind == "users" else "system_attrs"
            for trial_id, key, text in _raw_rows(connection, joined(table.trial_id, table.key, table.value_json)):
                rows[trial_id][field_name][key] = json.loads(text)
        steps = tables["steps"]
        for trial_id, step, value, kind in connection.execute(
                joined(steps.trial_id, steps.step, steps.intermediate_value, steps.intermediate_value_type)).all():
            rows[trial_id]["intermediate_values"][step] = \
                models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(value, kind)
    return [FrozenTrial(**row) for row in sorted(rows.values(), key=lambda r: r["number"])]


class _StudyRows:
    """Queries over one study's rows of Optuna's trial tables, for the readers above."""

    def __init__(self, connection: Any, study_id: int) -> None:
        from optuna.storages._rdb import models

        self.connection = connection
        self.models = models
        self.trial_columns = models.TrialModel.__table__.c
        self.mine = self.trial_columns.study_id == study_id

    def __call__(self, *columns: Any) -> Any:
        """``SELECT columns`` of a per-trial table, restricted to the study's trials."""
        from sqlalchemy import select

        return select(*columns).join_from(columns[0].table, self.models.TrialModel.__table__,
                                          columns[0].table.c.trial_id == self.trial_columns.trial_id).where(self.mine)

    def trials(self) -> list[tuple]:
        """``(trial_id, number, state, start, end, value)`` per trial; value is the first objective's or None."""
        from sqlalchemy import select

        trials, values = self.trial_columns, self.models.TrialValueModel.__table__.c
        found = {}
        for trial_id, value, kind in self.connection.execute(
                self(values.trial_id, values.value, values.value_type).where(values.objective == 0)).all():
            found[trial_id] = self.models.TrialValueModel.stored_repr_to_value(value, kind)
        return [(*row, found.get(row[0])) for row in self.connection.execute(
            select(trials.trial_id, trials.number, trials.state, trials.datetime_start,
                   trials.datetime_complete).where(self.mine)).all()]


def _raw_rows(connection: Any, statement: Any) -> list[tuple]:
    """Rows of a query of plain columns (ints, floats, strings) straight from the driver's cursor.

    The parameters table holds a row per trial and parameter (250,000 for 10,000 trials); SQLAlchemy's
    per-row result processing would double the time to read it.
    """
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()
