"""`python -m llmproxy proxy|dispatcher|mock-upstream`: one entry point per process the stack runs."""

from __future__ import annotations

import importlib
import sys

PROCESSES = {
    "proxy": "llmproxy.proxy.main",
    "dispatcher": "llmproxy.dispatcher.main",
    "mock-upstream": "llmproxy.mock.server.main",
}

USAGE = "usage: python -m llmproxy {" + "|".join(PROCESSES) + "} [options]"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in PROCESSES:
        print(USAGE, file=sys.stderr)
        return 2
    module_name, _, func = PROCESSES[args[0]].rpartition(".")
    entry = getattr(importlib.import_module(module_name), func)
    return int(entry(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
