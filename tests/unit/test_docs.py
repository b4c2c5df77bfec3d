"""The README stays in step with the code it documents."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_rustchain.safety import RULES, rules_markdown
from pytest_rustchain.steps import registry

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_rules_table_is_current() -> None:
    """The README's rule table is exactly what the code documents (regenerate it when rules change)."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- rules:start -->\n(.*?)\n<!-- rules:end -->", text, re.DOTALL)
    assert block is not None
    assert block.group(1).strip() == rules_markdown().strip()
    for rule_id in RULES:
        assert f"| {rule_id} |" in block.group(1)


def test_readme_names_every_step_type() -> None:
    """Every registered step type appears in the README's step type table."""
    text = README.read_text(encoding="utf-8")
    for name in registry():
        assert f"`{name}`" in text, name


def test_schemas_ship_as_package_data() -> None:
    """The JSON Schemas are found through the installed package, as editors and the loader use them."""
    from importlib import resources

    files = resources.files("pytest_rustchain").joinpath("schema")
    assert files.joinpath("mission.schema.json").is_file()
    assert '"$schema"' in files.joinpath("mission.schema.json").read_text(encoding="utf-8")


def test_shipped_schema_accepts_the_shipped_missions() -> None:
    """The schema editors use is a valid JSON Schema and accepts every example mission as written."""
    import json

    import jsonschema
    import yaml

    from pytest_rustchain.loader import mission_schema

    schema = mission_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    missions = sorted((README.parent / "missions").glob("*.mission.yaml"))
    assert missions
    for path in missions:
        data = json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))
        errors = [e.message for e in validator.iter_errors(data)]
        assert errors == [], (path.name, errors)
