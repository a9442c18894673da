"""Write the JSON Schema of every contract model to ``schemas/json/``.

Usage: ``python -m schemas.generate`` (``--check`` exits 1 when the committed files drift).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas import control, events, outputs

JSON_DIR = Path(__file__).parent / "json"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for every model that crosses the wire."""
    result: dict[str, dict[str, Any]] = {
        "event.schema.json": TypeAdapter(events.Event).json_schema(),
    }
    for type_name, model in events.EVENT_MODELS.items():
        result[f"event.{type_name}.schema.json"] = model.model_json_schema()
    result["flag.schema.json"] = outputs.Flag.model_json_schema()
    result["decision.schema.json"] = outputs.Decision.model_json_schema()
    result["dead-letter.schema.json"] = outputs.DeadLetter.model_json_schema()
    result["rejection.schema.json"] = outputs.Rejection.model_json_schema()
    result["policy-record.schema.json"] = control.PolicyRecord.model_json_schema()
    result["override-record.schema.json"] = control.OverrideRecord.model_json_schema()
    for name, schema in result.items():
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://lineguard.dev/schemas/v1/{name}"
    return result


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed files drift")
    args = parser.parse_args(argv)
    expected = {name: render(schema) for name, schema in schemas().items()}
    if args.check:
        drift = [
            name
            for name, text in expected.items()
            if not (JSON_DIR / name).exists() or (JSON_DIR / name).read_text() != text
        ]
        extra = sorted(p.name for p in JSON_DIR.glob("*.json") if p.name not in expected)
        if drift or extra:
            print(
                f"schemas drifted: {drift + extra}; run python -m schemas.generate", file=sys.stderr
            )
            return 1
        return 0
    JSON_DIR.mkdir(exist_ok=True)
    for name, text in expected.items():
        (JSON_DIR / name).write_text(text)
    print(f"wrote {len(expected)} schemas to {JSON_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
