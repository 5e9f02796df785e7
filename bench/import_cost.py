"""The import cost of the WebSocket client alone, run by bench/__main__.py in the Lambda-like interpreter.

Usage: python -S [-X importtime] bench/import_cost.py RESULT_JSON PRELOAD MODULE...

Imports the runtime interface client first (Lambda's runtime has loaded it before the handler), then the
comma-separated PRELOAD modules (empty: none; the handler's module and what its first request loads: the
context the first guest session imports in), then writes a marker line to stderr and times the import of
MODULE... (what guest_api.py imports when the first guest session is opened). Run with ``-X importtime``, the
lines after the marker are the modules it loaded, which bench/__main__.py adds up; run without, the wall
time is the figure.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

import awslambdaric.bootstrap  # noqa: F401  (loaded by Lambda's runtime before the handler)

MARKER = "bench: import starts"


def main() -> int:
    result_path, preload, *modules = sys.argv[1:]
    for module in filter(None, preload.split(",")):
        importlib.import_module(module)
    before = set(sys.modules)
    print(MARKER, file=sys.stderr, flush=True)
    started = time.perf_counter()
    for module in modules:
        importlib.import_module(module)
    elapsed = (time.perf_counter() - started) * 1000
    loaded = sorted(set(sys.modules) - before)
    with open(result_path, "w") as file:
        json.dump(
            {
                "importMs": elapsed,
                "modules": len(loaded),
                "others": sum(1 for name in loaded if name.split(".")[0] != "websockets"),
            },
            file,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
