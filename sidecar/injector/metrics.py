"""The injector webhook's metrics (`sidecar injector serve`), in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from sidecar.telemetry.labels import OTHER, bounded_label
from sidecar.telemetry.metrics import OVERHEAD_BUCKETS

INJECTOR_DECISIONS = ("injected", "skipped", "rejected", "error")


class InjectorMetrics:
    """The injector webhook's metrics (`sidecar injector serve`), in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "sidecar_injector_decisions",
            "Pods reviewed, by decision and reason; dry_run: a review of a pod that is not created.",
            ("decision", "reason", "dry_run"), registry=self.registry,
        )  # fmt: skip
        self.review_seconds = Histogram(
            "sidecar_injector_review_seconds", "Time to answer one AdmissionReview.",
            buckets=OVERHEAD_BUCKETS, registry=self.registry,
        )  # fmt: skip

    def decided(self, decision: str, reason: str, seconds: float, *, dry_run: bool = False) -> None:
        """`dry_run`: a server-side dry run (`kubectl apply --dry-run=server`), counted apart, since no
        pod was created by it (counted as one, each dry run of a manifest looked like an injection)."""
        label = decision if decision in INJECTOR_DECISIONS else OTHER
        self.decisions.labels(label, bounded_label(reason), "true" if dry_run else "false").inc()
        self.review_seconds.observe(seconds)
