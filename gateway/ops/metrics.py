"""Prometheus metrics for the gateway, cheap enough for the per-frame path.

Hot-path figures (frame lateness) go into plain fixed-bucket histograms: a bisect and a list
increment, no lock, since everything runs on the event loop's thread. Per-call figures are
folded in once, when the call ends, from its ledger. ``/metrics`` renders them all through a
``prometheus_client`` collector in the standard exposition format.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from gateway.call.ledger import CallLedger
from gateway.histogram import LATENESS_BUCKETS, Histogram
from gateway.ops.admission import Admission

#: Seconds: turn latencies live around 0.1-1 s.
LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
#: Seconds: engine Interrupt -> clear written.
CLEAR_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)


#: Seconds: silence a caller heard when a hold was released (0 when released in time).
HOLD_GAP_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0)

#: Engine Metric names that feed the turn histograms (seconds).
RESPONSE_METRIC = "response_latency"
BARGE_IN_METRIC = "barge_in_latency"


class GatewayMetrics(Collector):
    """Everything ``/metrics`` reports; ``active_calls`` is read live."""

    def __init__(
        self,
        active_calls: Callable[[], int],
        draining: Callable[[], bool],
        admission: Admission | None = None,
        engines: Callable[[], list[str]] = list,
    ) -> None:
        self._active_calls = active_calls
        self._draining = draining
        self._admission = admission
        self._engines = engines
        self.calls = Counter[str]()
        self.engine_errors = 0
        self.websocket_errors = Counter[str]()
        self.response_latency = Histogram(LATENCY_BUCKETS)
        self.barge_in_latency = Histogram(LATENCY_BUCKETS)
        self.clear_latency = Histogram(CLEAR_BUCKETS)
        self.frame_lateness = Histogram(LATENESS_BUCKETS)
        self.refusals = Counter[str]()
        self.hold_gap = Histogram(HOLD_GAP_BUCKETS)
        #: Holds by how they ended: committed, released.
        self.holds = Counter[str]()
        #: Hold levels reached: soft (the bot ducked a little) and deep spells (silenced).
        self.hold_levels = Counter[str]()
        #: Seconds the caller heard the bot at the soft level, per hold that had one.
        self.soft_hold = Histogram(HOLD_GAP_BUCKETS)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def call_ended(self, ledger: CallLedger) -> None:
        """Fold a finished call's ledger into the totals."""
        self.calls[ledger.outcome or "unknown"] += 1
        self.engine_errors += ledger.engine_errors
        for kind, n in ledger.violations.items():
            self.websocket_errors[kind] += n
        for value in ledger.metrics.get(RESPONSE_METRIC, ()):
            self.response_latency.observe(value)
        for value in ledger.metrics.get(BARGE_IN_METRIC, ()):
            self.barge_in_latency.observe(value)
        for value in ledger.clear_latencies:
            self.clear_latency.observe(value)
        self.frame_lateness.merge(ledger.frame_lateness)
        self.holds["committed"] += ledger.commits
        self.holds["released"] += ledger.releases
        for gap in ledger.hold_gaps:
            self.hold_gap.observe(gap)
        self.hold_levels["soft"] += ledger.soft_holds
        self.hold_levels["deep"] += ledger.deep_holds
        for db, seconds in ledger.ducks:
            if db > -20.0:  # the soft level; a deep duck's length is its hold gap's kin
                self.soft_hold.observe(seconds)

    # -- refusals: what a limit or a check turned away (README "Limits") ----------------------

    def refused(self, kind: str) -> None:
        """A limit or check refused something (a body too large, a stream without a token)."""
        self.refusals[kind] += 1

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        yield GaugeMetricFamily(
            "overtalk_active_calls", "Calls with a media stream open now.", self._active_calls()
        )
        yield GaugeMetricFamily(
            "overtalk_draining", "1 while the gateway drains before exit.", int(self._draining())
        )
        calls = CounterMetricFamily(
            "overtalk_calls", "Finished calls by outcome.", labels=["outcome"]
        )
        for outcome, n in sorted(self.calls.items()):
            calls.add_metric([outcome], n)
        yield calls
        yield CounterMetricFamily(
            "overtalk_engine_errors", "Engine failures and unavailability.", self.engine_errors
        )
        ws = CounterMetricFamily(
            "overtalk_websocket_errors", "Bad carrier messages by kind.", labels=["kind"]
        )
        for kind, n in sorted(self.websocket_errors.items()):
            ws.add_metric([kind], n)
        yield ws
        refusals = CounterMetricFamily(
            "overtalk_refusals",
            "Requests, streams and files refused by a limit or check.",
            labels=["kind"],
        )
        for kind, n in sorted(self.refusals.items()):
            refusals.add_metric([kind], n)
        yield refusals
        holds = CounterMetricFamily(
            "overtalk_holds", "Holds of the bot's speech by how they ended.", labels=["outcome"]
        )
        for outcome in ("committed", "released"):
            holds.add_metric([outcome], self.holds[outcome])
        yield holds
        levels = CounterMetricFamily(
            "overtalk_hold_levels",
            "Hold levels reached: soft (the bot ducked a little), deep (each spell silenced).",
            labels=["level"],
        )
        for level in ("soft", "deep"):
            levels.add_metric([level], self.hold_levels[level])
        yield levels
        for name, doc, hist in (
            ("overtalk_response_latency_seconds", "Caller speech end to bot audio, per turn "
             "(reported by the engine).", self.response_latency),
            ("overtalk_barge_in_latency_seconds", "Caller speech onset during bot speech to "
             "interruption (reported by the engine).", self.barge_in_latency),
            ("overtalk_clear_latency_seconds", "Engine Interrupt to clear written.",
             self.clear_latency),
            ("overtalk_frame_lateness_seconds", "How late outbound pacing ticks fired.",
             self.frame_lateness),
            ("overtalk_hold_gap_seconds", "Silence the caller heard at the end of each deep "
             "hold that did not commit.", self.hold_gap),
            ("overtalk_soft_hold_seconds", "How long the caller heard the bot ducked at the "
             "soft level, per hold.", self.soft_hold),
        ):  # fmt: skip
            yield HistogramMetricFamily(name, doc, buckets=hist.buckets(), sum_value=hist.total)
        if self._admission is not None:
            yield from self._capacity(self._admission)

    def _capacity(self, admission: Admission) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Admission figures, for an HPA (scale on calls / capacity) and for alerts on refusals.
        An engine without a configured capacity reports -1 (unlimited)."""
        capacity = GaugeMetricFamily(
            "overtalk_engine_capacity", "Calls the engine may carry at once (-1: unlimited).",
            labels=["engine"],
        )  # fmt: skip
        in_use = GaugeMetricFamily(
            "overtalk_engine_calls", "Calls admitted to the engine now.", labels=["engine"]
        )
        for load in admission.loads(self._engines(), time.monotonic()):
            capacity.add_metric([load.engine], -1 if load.capacity is None else load.capacity)
            in_use.add_metric([load.engine], load.in_use)
        refused = CounterMetricFamily(
            "overtalk_calls_refused", "Calls refused busy because their engine was full.",
            labels=["engine", "carrier"],
        )  # fmt: skip
        for (engine, carrier), n in sorted(admission.refused.items()):
            refused.add_metric([engine, carrier], n)
        yield from (capacity, in_use, refused)
