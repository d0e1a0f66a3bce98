"""The JSON Schema of an experiment file, written to `loadtests/failover/schema.json` (editors and
check-jsonschema read it). Each step is one of the actions, with that action's own arguments.

    python -m devenv.failover.schema        # rewrite loadtests/failover/schema.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from devenv.failover.actions import ACTIONS
from devenv.failover.experiment import EXPERIMENTS_DIR, Experiment

SCHEMA_FILE = EXPERIMENTS_DIR / "schema.json"


def build() -> dict[str, Any]:
    schema = Experiment.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "devenv failover experiment"
    defs = schema.setdefault("$defs", {})
    variants = []
    for name, action in ACTIONS.items():
        args = action.args.model_json_schema()
        for key, value in args.pop("$defs", {}).items():
            defs.setdefault(key, value)
        properties = {"action": {"const": name}, **args.get("properties", {})}
        variants.append(
            {
                "title": name,
                "type": "object",
                "properties": properties,
                "required": ["action", *args.get("required", [])],
                "additionalProperties": False,
            }
        )
    defs["Step"] = {"description": "One action and its arguments.", "oneOf": variants}
    return schema


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMA_FILE.write_text(render())
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
