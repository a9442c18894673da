"""The committed JSON Schema files match the models, and they validate real records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from schemas import generate

JSON_DIR = Path(generate.__file__).parent / "json"


def test_committed_schemas_match_models() -> None:
    assert generate.main(["--check"]) == 0, "run: python -m schemas.generate"


def test_drift_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in JSON_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "flag.schema.json").write_text("{}\n")
    monkeypatch.setattr(generate, "JSON_DIR", tmp_path)
    assert generate.main(["--check"]) == 1


@pytest.mark.parametrize("name", sorted(generate.schemas()))
def test_schema_files_are_valid_json_schema(name: str) -> None:
    schema = json.loads((JSON_DIR / name).read_text())
    Draft202012Validator.check_schema(schema)


EXAMPLES = [
    {
        "event_id": "e1",
        "type": "login",
        "user_id": "u1",
        "occurred_at": "2026-01-01T00:00:00Z",
        "device_id": "d1",
    },
    {
        "event_id": "e2",
        "type": "transaction",
        "user_id": "u1",
        "occurred_at": "2026-01-01T00:00:00+08:00",
        "kind": "loan_drawdown",
        "amount": "1000.50",
        "loan_id": "L1",
        "term_months": 3,
    },
    {
        "event_id": "e3",
        "type": "repayment",
        "user_id": "u1",
        "occurred_at": "2026-01-01T00:00:00Z",
        "kind": "installment_due",
        "loan_id": "L1",
        "product": "huabei",
        "installment": 1,
        "due_date": "2026-02-01",
        "amount": 12.5,
    },
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e["type"])
def test_valid_events_pass_the_published_schema(event: dict[str, object]) -> None:
    schema = json.loads((JSON_DIR / "event.schema.json").read_text())
    errors = list(Draft202012Validator(schema).iter_errors(event))
    assert not errors, errors


def test_unknown_field_fails_the_published_schema() -> None:
    schema = json.loads((JSON_DIR / "event.login.schema.json").read_text())
    event = {**EXAMPLES[0], "colour": "blue"}
    assert list(Draft202012Validator(schema).iter_errors(event))
