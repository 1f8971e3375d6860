"""A compiled model's metrics: what the core computes for them, their names in the logs, and the
reduction of the core's states (summed over chunks) to Keras's values (internal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import NDArray

from . import losses, metrics


@dataclass
class MetricState:
    """Sums over the batches seen (as the core's Totals): loss, per-sample metric sums,
    confusion counts, samples. Adding is exact for the counts (integers)."""

    loss: float = 0.0
    sums: list[float] = field(default_factory=list)
    confusions: list[NDArray[np.uint64]] = field(default_factory=list)
    samples: int = 0

    def add(self, totals: Any) -> None:
        self.loss += float(totals.loss)
        sums = [float(v) for v in totals.metrics]
        self.sums = sums if not self.sums else [a + b for a, b in zip(self.sums, sums)]
        counts = [np.asarray(c, dtype=np.uint64) for c in totals.confusions]
        self.confusions = counts if not self.confusions else [a + b for a, b in zip(self.confusions, counts)]
        self.samples += int(totals.samples)


def prepare(identifiers: Sequence[Any]) -> list[Union[str, metrics.Metric]]:
    """``compile``'s metrics as objects (``metrics.get``), or as the per-sample names; an object
    made from a string is named by that string, as Keras names it."""
    if isinstance(identifiers, (str, dict, metrics.Metric)):
        raise TypeError(f"`metrics` must be a list of metrics. Received: metrics={identifiers!r}")
    prepared: list[Union[str, metrics.Metric]] = []
    for identifier in identifiers:
        metric = metrics.get(identifier)
        if isinstance(identifier, str) and isinstance(metric, metrics.Metric):
            metric.name = identifier
        prepared.append(metric)
    return prepared


def log_names(entries: Sequence[Union[str, metrics.Metric]]) -> list[str]:
    """The names in the logs: a repeated name gets ``_1``, ``_2``, ... (Keras 3's
    CompileMetrics.result)."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for entry in entries:
        name = entry if isinstance(entry, str) else entry.name
        if name in seen:
            names.append(f"{name}_{seen[name]}")
            seen[name] += 1
        else:
            names.append(name)
            seen[name] = 1
    return names


class CompiledMetrics:
    """``compile(metrics=[...])`` for a model with this loss and output width: each entry a
    name (Keras's per-sample names, or a class name) or a ``fm.metrics.Metric``. Logged under
    the string given, or the object's ``name``; a repeated name gets ``_1``, ``_2``, ... as in
    Keras 3. A ValueError when a metric does not fit the model's outputs or targets."""

    def __init__(self, entries: Sequence[Union[str, metrics.Metric]], loss: losses.Loss, output_dim: int) -> None:
        self.core_names: list[metrics.CoreMetric] = []
        self.confusion_specs: list[dict[str, Any]] = []
        # Per logged metric: its name, its object (None for a per-sample name), and where its
        # state is (a per-sample sum, or confusion counts) with the index there.
        self.plan: list[tuple[str, Optional[metrics.Metric], str, int]] = []
        for name, metric in zip(log_names(entries), entries):
            if isinstance(metric, str):
                self.plan.append((name, None, "sum", len(self.core_names)))
                self.core_names.append(metrics.resolve(metric, loss, output_dim))
            elif isinstance(metric, metrics.BinaryAccuracy) and metric.threshold != 0.5:
                self.plan.append((name, metric, "binary_accuracy", len(self.confusion_specs)))
                self.confusion_specs.append(_threshold_spec(metric, loss))
            elif isinstance(metric, metrics.MeanMetricWrapper):
                self.plan.append((name, metric, "sum", len(self.core_names)))
                self.core_names.append(metric.core_metric(loss, output_dim))
            elif isinstance(metric, metrics.ConfusionMetric):
                if not isinstance(metric, metrics.AUC) and len(metric.threshold_list) > 1:
                    raise ValueError(
                        f"Metric {name!r} has {len(metric.threshold_list)} thresholds; fit logs one value per "
                        "metric: give one threshold per metric object."
                    )
                self.plan.append((name, metric, "confusion", len(self.confusion_specs)))
                self.confusion_specs.append(metric.confusion_spec(loss, output_dim))
            else:
                raise TypeError(f"fastmlp computes the metrics of fm.metrics only. Received: {metric!r}")

    @property
    def names(self) -> list[str]:
        return [name for name, _, _, _ in self.plan]

    def store(self, state: MetricState, objects: Sequence[metrics.Metric]) -> None:
        """Puts a loop's state into the metric objects (Keras 3's trainer leaves the state of
        the last train or test loop in the compiled metrics): ``objects`` holds one object per
        metric, in the order compiled (the user's, or a ``Mean`` for a per-sample name)."""
        samples = float(state.samples)
        for (_, _, kind, index), metric in zip(self.plan, objects):
            if isinstance(metric, metrics.ConfusionMetric) and kind == "confusion":
                stride = 2 + 2 * len(metric.threshold_list)
                metric.counts = np.asarray(state.confusions[index], dtype=np.float64).reshape(-1, stride)
            elif isinstance(metric, (metrics.MeanMetricWrapper, metrics.Mean)):
                if kind == "binary_accuracy":
                    metric.total = _binary_accuracy(state.confusions[index]) * samples
                else:
                    metric.total = state.sums[index]
                metric.count = samples

    def empty(self) -> MetricState:
        return MetricState()

    def logs(self, state: MetricState, prefix: str = "") -> dict[str, float]:
        """Mean loss and each metric's value (Keras's formula on the state), sorted by name as
        Keras 3 sorts its logs (``pythonify_logs``)."""
        samples = max(state.samples, 1)
        logs = {prefix + "loss": state.loss / samples}
        for name, metric, kind, index in self.plan:
            if kind == "binary_accuracy":
                value = _binary_accuracy(state.confusions[index])
            elif kind == "confusion" and isinstance(metric, metrics.ConfusionMetric):
                value = _scalar(name, metric.result_from_counts(state.confusions[index]))
            elif isinstance(metric, metrics.MeanMetricWrapper):
                value = metric.result_from_mean(state.sums[index] / samples)
            else:
                value = state.sums[index] / samples
            logs[prefix + name] = value
        return dict(sorted(logs.items()))


class CompileMetrics(metrics.Metric):
    """``model.metrics[1]`` as in Keras 3: the compiled metrics together, named
    ``compile_metrics``; ``result()`` is the dict of their values by log name."""

    def __init__(self, entries: Sequence[metrics.Metric], names: Sequence[str]) -> None:
        self.metrics: list[metrics.Metric] = []  # empty while Metric.__init__ resets the state
        super().__init__(name="compile_metrics")
        self.metrics = list(entries)
        self.names = list(names)

    def reset_state(self) -> None:
        for metric in self.metrics:
            metric.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        for metric in self.metrics:
            metric.update_state(y_true, y_pred, sample_weight)

    def result(self) -> dict[str, float]:  # type: ignore[override]
        return {name: float(metric.result()) for name, metric in zip(self.names, self.metrics)}


def metric_objects(entries: Sequence[Union[str, metrics.Metric]]) -> list[metrics.Metric]:
    """One object per compiled metric: the user's, or a ``Mean`` named by the per-sample name
    (Keras wraps a name in a metric object named by it)."""
    return [entry if isinstance(entry, metrics.Metric) else metrics.Mean(name=entry) for entry in entries]


def _threshold_spec(metric: metrics.BinaryAccuracy, loss: losses.Loss) -> dict[str, Any]:
    """Binary accuracy at another threshold, from one threshold's confusion counts."""
    return metrics.TruePositives(thresholds=metric.threshold, name="binary_accuracy").confusion_spec(loss, 1)


def _binary_accuracy(counts: NDArray[np.uint64]) -> float:
    """(tp + tn) / all, over every output: columns of [positives, negatives, tp, fp]."""
    table = np.asarray(counts, dtype=np.float64).reshape(-1, 4)
    positives, negatives, tp, fp = (float(np.sum(table[:, i])) for i in range(4))
    total = positives + negatives
    return (tp + negatives - fp) / total if total else 0.0


def _scalar(name: str, value: Any) -> float:
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"Metric {name!r} has {array.size} values (one per threshold); fit logs need one threshold.")
    return float(array.reshape(-1)[0])
