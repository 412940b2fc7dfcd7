"""The experiments in force, by route; replaced whole when the policy is reloaded (no restart)."""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.config.experiments import ExperimentConfig


class ExperimentBook:
    """What the experiment layer reads per call. `replace` swaps in a reloaded set atomically (one
    assignment on the event loop's thread), so a call sees either the old or the new set."""

    def __init__(self, experiments: Mapping[str, ExperimentConfig], prompts: Mapping[str, str]) -> None:
        self._by_route: dict[str, tuple[str, ExperimentConfig]] = {}
        self._by_name: dict[str, ExperimentConfig] = {}
        self._prompts: dict[str, str] = {}
        self.replace(experiments, prompts)

    def replace(self, experiments: Mapping[str, ExperimentConfig], prompts: Mapping[str, str]) -> None:
        """`prompts`: persona id -> system prompt, for variants that name a persona."""
        self._by_route = {exp.route: (name, exp) for name, exp in experiments.items()}
        self._by_name = dict(experiments)
        self._prompts = dict(prompts)

    def for_route(self, alias: str) -> tuple[str, ExperimentConfig] | None:
        return self._by_route.get(alias)

    def named(self, name: str) -> ExperimentConfig | None:
        """The experiment in force under this name (the report reads its variants and gates)."""
        return self._by_name.get(name)

    def persona_prompt(self, persona: str) -> str:
        return self._prompts.get(persona, "")

    def __bool__(self) -> bool:
        return bool(self._by_route)
