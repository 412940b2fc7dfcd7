"""The answer policy's Prometheus metrics, in the sidecar's registry. Agent labels are the configured
agents (bounded by the config); paths and states are fixed sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sidecar.answers.model import Decision, Escalation, State
from sidecar.answers.service import AnswerObserver


class AnswerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.paths = Counter(
            "sidecar_answer_paths", "Messages to agents by the path the answer policy chose (A..F).",
            ("agent", "path", "reason"), registry=r,
        )  # fmt: skip
        self.similarity = Histogram(
            "sidecar_answer_similarity", "Best similarity of a message to the agent's canonical answers.",
            ("agent",), buckets=(0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0), registry=r,
        )  # fmt: skip
        self.escalations = Counter(
            "sidecar_answer_escalations", "Escalations entering a state (offered, queued, answered, ...).",
            ("agent", "state"), registry=r,
        )  # fmt: skip
        self.time_to_answer = Histogram(
            "sidecar_answer_time_to_answer_seconds", "From acceptance to the creator's answer.",
            ("agent",), buckets=(60, 300, 900, 3600, 4 * 3600, 86_400, 3 * 86_400, 7 * 86_400), registry=r,
        )  # fmt: skip
        self.backlog = Gauge(
            "sidecar_answer_queue_backlog",
            "Escalations waiting for the creator (QUEUED, every tenant), read from the store at each sweep.",
            ("agent",), registry=r,
        )  # fmt: skip
        self.contexts = Counter(
            "sidecar_answer_context_summaries",
            "Escalation context summaries by outcome (summarized, or why the verbatim messages were kept).",
            ("agent", "outcome"), registry=r,
        )  # fmt: skip
        self.reloads = Counter(
            "sidecar_answer_policy_reloads", "Reloads of the answer policy (SIGHUP): applied or refused.",
            ("result",), registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "sidecar_answer_errors",
            "Answer policy operations that failed (signals, store, sweep).",
            ("op",),
            registry=r,
        )

    def decided(self, agent: str, d: Decision) -> None:
        self.paths.labels(agent, d.path.value, d.reason).inc()
        if d.reason not in ("tier_not_allowed", "blocked_topic", "signals_unavailable"):
            self.similarity.labels(agent).observe(d.signals.similarity)

    def moved(self, agent: str, e: Escalation) -> None:
        state = e.state.value
        if e.state is State.EXPIRED:  # backlog = queued - answered - declined - expired_queued
            state = "expired_queued" if e.queued_at else "expired_offer"
        self.escalations.labels(agent, state).inc()
        if e.state is State.ANSWERED and e.queued_at:
            self.time_to_answer.labels(agent).observe(max(0.0, e.closed_at - e.queued_at))

    def failed(self, op: str) -> None:
        self.errors.labels(op).inc()

    def waiting(self, agent: str, queued: int) -> None:
        self.backlog.labels(agent).set(queued)

    def summarized(self, agent: str, outcome: str) -> None:
        self.contexts.labels(agent, outcome).inc()

    def reloaded(self, result: str) -> None:
        self.reloads.labels(result).inc()

    def observer(self) -> AnswerObserver:
        return AnswerObserver(
            on_decision=self.decided,
            on_transition=self.moved,
            on_error=self.failed,
            on_backlog=self.waiting,
            on_context=self.summarized,
            on_reload=self.reloaded,
        )
