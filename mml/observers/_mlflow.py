"""MLflow tracking via ``mlflow-skinny``: :class:`MLflowLogger`.

One MLflow run per :func:`mml.run`: metrics keyed ``"<phase>/<name>"`` at the global step,
the run's status set from the History (``FINISHED``/``FAILED``). Without a
``tracking_uri`` the logger writes a local file store under ``./mlruns`` (MLflow keeps that
backend in maintenance mode; mml opts in to it with ``MLFLOW_ALLOW_FILE_STORE`` for file
URIs only). Point ``tracking_uri`` at a server (``http://...``) to log remotely.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mml.errors import ConfigError
from mml.observers._base import AbstractObserver, rows_of

__all__ = ["MLflowLogger"]


def _file_uri(path: str | os.PathLike[str]) -> str:
    return Path(path).resolve().as_uri()


class MLflowLogger(AbstractObserver):
    """Log epoch-level values (and optionally batch losses) to an MLflow run.

    ``experiment`` is the MLflow experiment name (created if missing); ``run_name`` and
    ``params`` (a flat mapping, e.g. hyperparameters) are set on the run. :attr:`run_id`
    names the run for ``mlflow.MlflowClient().get_metric_history(run_id, key)``. With
    ``parent_run_id`` the run is nested under that one (what :meth:`subrun` does for each CV
    fold or sweep trial).
    """

    def __init__(
        self,
        tracking_uri: str | os.PathLike[str] | None = None,
        *,
        experiment: str = "mml",
        run_name: str | None = None,
        params: dict[str, Any] | None = None,
        batches: bool = False,
        parent_run_id: str | None = None,
    ) -> None:
        uri = _file_uri("mlruns") if tracking_uri is None else str(tracking_uri)
        if "://" not in uri and not uri.startswith("file:"):
            uri = _file_uri(uri)  # a plain directory: a local file store
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            from mlflow import MlflowClient
        except ImportError as exc:
            raise ConfigError("MLflowLogger needs mlflow-skinny: pip install 'mml[mlflow]'") from exc
        self.tracking_uri = uri
        self.experiment = experiment
        self.batches = batches
        self._client: Any = MlflowClient(tracking_uri=uri)
        found = self._client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found is not None else self._client.create_experiment(experiment)
        tags = {} if parent_run_id is None else {"mlflow.parentRunId": parent_run_id}
        self.run_id: str = self._client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
        for k, v in (params or {}).items():
            self._client.log_param(self.run_id, k, v)
        self._pending: list[Any] = []

    def observe(self, state: Any, ctx: Any) -> None:
        """Queue the context's values (sent in batches at each phase end)."""
        if self._client is None or (ctx.event == "batch" and not self.batches):
            return
        from mlflow.entities import Metric

        for phase, event, _epoch, _batch, step, name, value in rows_of(ctx, state):
            key = f"{phase}/batch/{name}" if event == "batch" else f"{phase}/{name}"
            self._pending.append(Metric(key, value, int(time.time() * 1000), step))

    def subrun(self, label: str, params: Any = None) -> AbstractObserver:
        """A nested MLflow run named ``label`` (``params`` logged on it) under this logger's run."""
        return MLflowLogger(
            self.tracking_uri,
            experiment=self.experiment,
            run_name=label,
            params=dict(params or {}),
            batches=self.batches,
            parent_run_id=self.run_id,
        )

    def _flush(self) -> None:
        for i in range(0, len(self._pending), 1000):  # MLflow's log_batch limit
            self._client.log_batch(self.run_id, metrics=self._pending[i : i + 1000])
        self._pending = []

    def phase_end(self, phase: Any, history: Any) -> None:
        """Send what the phase logged."""
        if self._client is not None:
            self._flush()

    def close(self, history: Any = None) -> None:
        """Send the rest and end the MLflow run with the run's status."""
        if self._client is None:
            return
        self._flush()
        failed = history is None or getattr(history, "status", "completed") == "failed"
        self._client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")
        self._client = None
