"""The JSON Schema of an experiment file, written beside the experiments (`loadtests/failover/schema.json`;
editors and check-jsonschema read it). Each step is one of the actions, with that action's own arguments.

    python -m devenv.failover.schema        # rewrite schema.json in the loadtests_dir setting's failover/
"""

from __future__ import annotations

import json
import sys
from typing import Any

from devenv.config import load_settings
from devenv.failover.actions import ACTIONS
from devenv.failover.experiment import Experiment, experiments_dir

SCHEMA_FILE = "schema.json"  # in the experiments' folder


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
    path = experiments_dir(load_settings().loadtests_dir) / SCHEMA_FILE
    path.write_text(render())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
