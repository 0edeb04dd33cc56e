"""Prometheus metrics: the only module that imports prometheus_client.

Components keep plain counters and gauges as attributes (``client.reconnects``,
``writer.buffered`` …) and know nothing of Prometheus. The composition root registers a reader
function per metric here; values are read at scrape time, so the hot paths pay nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

MAX_SERIES = 200
"""Series one labelled family may expose. Labels come from data (queue names, event names …);
beyond this many, the largest keep their labels and the rest are summed under ``other`` in every
label, so a stream of odd names can never flood Prometheus."""

Value = float | int | bool | None
Reader = Callable[[], Value | Mapping[tuple[str, ...], Value]]


@dataclass(frozen=True)
class _Spec:
    kind: Literal["counter", "gauge"]
    name: str
    help: str
    labels: tuple[str, ...]
    read: Reader


class _CallbackCollector(Collector):
    def __init__(self) -> None:
        self.specs: list[_Spec] = []

    def collect(self) -> Iterator[Metric]:
        for spec in self.specs:
            try:
                value = spec.read()
            except Exception:
                log.exception("metric %s could not be read", spec.name)
                continue
            yield _family(spec, value)


def _family(spec: _Spec, value: Value | Mapping[tuple[str, ...], Value]) -> Metric:
    name = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
    family: CounterMetricFamily | GaugeMetricFamily
    if spec.kind == "counter":
        family = CounterMetricFamily(name, spec.help, labels=spec.labels)
    else:
        family = GaugeMetricFamily(name, spec.help, labels=spec.labels)
    if isinstance(value, Mapping):
        for labels, v in _capped(value, len(spec.labels)).items():
            family.add_metric(list(labels), float(v or 0))
    else:
        family.add_metric([], float(value or 0))
    return family


def _capped(
    series: Mapping[tuple[str, ...], Value], width: int, cap: int = MAX_SERIES
) -> Mapping[tuple[str, ...], Value]:
    """At most ``cap`` series: the ``cap - 1`` largest, the rest summed under ``("other", …)``."""
    if len(series) <= cap:
        return series
    ranked = sorted(series.items(), key=lambda kv: float(kv[1] or 0), reverse=True)
    kept = dict(ranked[: cap - 1])
    other = ("other",) * width
    rest = sum(float(v or 0) for _, v in ranked[cap - 1 :]) + float(kept.pop(other, 0) or 0)
    kept[other] = rest
    return kept


class Metrics:
    """A registry of scrape-time readers. ``render()`` gives the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = _CallbackCollector()
        self.registry.register(self._collector)

    def counter(self, name: str, help: str, read: Reader, labels: tuple[str, ...] = ()) -> None:
        self._collector.specs.append(_Spec("counter", name, help, labels, read))

    def gauge(self, name: str, help: str, read: Reader, labels: tuple[str, ...] = ()) -> None:
        self._collector.specs.append(_Spec("gauge", name, help, labels, read))

    def render(self) -> bytes:
        return generate_latest(self.registry)
