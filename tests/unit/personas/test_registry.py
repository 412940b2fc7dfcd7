"""The persona registry: loaded from config and persona files, checked at load, filtered for listing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sidecar.config.personas import PersonasConfig
from sidecar.core.errors import PersonaNotAllowedError, PersonaNotFoundError
from sidecar.core.tokens import count_tokens
from sidecar.personas.registry import PersonaLoadError, PersonaRegistry
from tests.support.personas import CATALOGUE, TIERS, personas_config, registry

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "personas"


def test_list_filters_by_category_and_tier() -> None:
    reg = registry()
    assert [p.id for p in reg.list()] == ["agent-79", "agent-80", "dashboard-architect", "mr-blue"]
    assert [p.id for p in reg.list(category="agents")] == ["agent-79", "agent-80"]
    assert [p.id for p in reg.list(tier="free")] == ["agent-79", "mr-blue"]
    assert [p.id for p in reg.list(category="agents", tier="professional")] == ["agent-79"]
    assert reg.list(category="nothing") == []


def test_persona_fields_and_prompt_tokens() -> None:
    p = registry().get("dashboard-architect")
    assert p is not None
    assert p.name == "Dashboard Architect" and p.aliases == ("architect", "dash")
    assert p.default_route == "echo" and p.tiers == {"professional", "enterprise"}
    assert p.default_params.temperature == 0.2 and p.default_params.max_tokens == 300
    assert p.prompt_tokens == count_tokens("You design dashboards.")


def test_require_checks_existence_and_tier() -> None:
    reg = registry()
    assert reg.require("mr-blue", "free").id == "mr-blue"
    with pytest.raises(PersonaNotFoundError) as info:
        reg.require("nobody", "free")
    assert info.value.violations[0].field == "persona_id"
    with pytest.raises(PersonaNotAllowedError):
        reg.require("agent-80", "professional")


def test_prompt_limit_uses_the_injected_counter() -> None:
    cfg = personas_config()
    PersonaRegistry.from_config(cfg, tiers=TIERS, routes=("echo",))  # the estimate: all short
    with pytest.raises(PersonaLoadError) as info:
        PersonaRegistry.from_config(cfg, tiers=TIERS, routes=("echo",), count=lambda text: 601)
    assert len(info.value.problems) == len(CATALOGUE)
    assert "personas.mr-blue.system_prompt: 601 tokens, more than 600" in info.value.problems


def test_unknown_references_and_duplicates_are_load_errors() -> None:
    cfg = personas_config(
        personas=[
            {"id": "a", "name": "A", "system_prompt": "p", "default_route": "nope", "tiers": ["gold"]},
            {"id": "a", "name": "A2", "system_prompt": "p"},
        ],
        default="ghost",
    )
    with pytest.raises(PersonaLoadError) as info:
        PersonaRegistry.from_config(cfg, tiers=TIERS, routes=("echo",))
    assert info.value.problems == [
        "personas.a.default_route: unknown route 'nope'",
        "personas.a.tiers: unknown tier 'gold'",
        "personas.a: duplicate persona id",
        "personas.default: unknown persona 'ghost'",
    ]


def test_directory_of_persona_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: from-file\nname: From File\nsystem_prompt: hi\n")
    (tmp_path / "notes.txt").write_text("ignored")
    reg = PersonaRegistry.from_config(personas_config(directory=str(tmp_path)), tiers=TIERS, routes=("echo",))
    assert reg.get("from-file") is not None and reg.get("mr-blue") is not None


def test_bad_persona_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: Bad Id\nname: x\nsystem_prompt: p\nextra: 1\n")
    (tmp_path / "list.yml").write_text("- 1\n")
    (tmp_path / "broken.yaml").write_text("id: [\n")
    (tmp_path / "twice.yaml").write_text("id: twice\nname: Twice\nsystem_prompt: a\nsystem_prompt: b\n")
    with pytest.raises(ValidationError) as info:
        PersonasConfig.model_validate({"directory": str(tmp_path)})
    text = str(info.value)
    assert "bad.yaml: id: String should match pattern" in text
    assert "bad.yaml: extra: Extra inputs are not permitted" in text
    assert "list.yml: a persona file is one mapping" in text
    assert "broken.yaml: not valid YAML" in text
    assert "twice.yaml: not valid YAML: duplicate key 'system_prompt' (line 4, column 1)" in text


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is not a readable directory"):
        PersonasConfig.model_validate({"directory": str(tmp_path / "none")})


def test_the_example_persona_files_load() -> None:
    cfg = PersonasConfig.model_validate({"directory": str(EXAMPLES)})
    reg = PersonaRegistry.from_config(cfg, tiers=TIERS, routes=("echo", "local"))
    assert len(reg) >= 3
