"""What the Powertools Tracer costs a cold start.

Each run is a fresh interpreter that looks like Lambda to Powertools (LAMBDA_TASK_ROOT set, so the Tracer
really loads the X-Ray SDK and patches). Two measures: the whole import of the handler module with tracing
on and off (runs alternate, so a busy machine slows both alike), and, more precisely, the time to create
the Tracer once everything else is imported, patching botocore only (as observability.py does) or every
library X-Ray knows (Powertools' default). Not a test: timings on a shared machine are for reading.

    .venv/bin/python -m devtools.tracer_cost --runs 21
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MEASURE = "import time; s = time.perf_counter(); import guest_token.app; print(time.perf_counter() - s)"
# The handler imported with tracing off, then the Tracer alone (argv[1]: "botocore" or "all").
MEASURE_TRACER = """
import os, sys, time
import guest_token.app
os.environ["POWERTOOLS_TRACE_DISABLED"] = "false"
from aws_lambda_powertools import Tracer
s = time.perf_counter()
Tracer(patch_modules=None if sys.argv[1] == "all" else ("botocore",))
print(time.perf_counter() - s)
"""


def seconds(code: list[str], tracing: bool, task_root: str) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "functions" / "guest_token"), str(REPO)]),
        "POWERTOOLS_SERVICE_NAME": "genesys-guest-token",
        "POWERTOOLS_METRICS_NAMESPACE": "GenesysGuestTokens",
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        "LAMBDA_TASK_ROOT": task_root,
        "AWS_LAMBDA_FUNCTION_NAME": "GuestTokenFunction",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
    result = subprocess.run(
        [sys.executable, "-c", *code], env=env, cwd=task_root, capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args(argv)
    # name: (the code and its argument, whether the handler is imported with tracing on)
    runs: dict[str, tuple[list[str], bool]] = {
        "import guest_token.app, tracing off": ([MEASURE], False),
        "import guest_token.app, tracing on": ([MEASURE], True),
        "Tracer(), patching botocore only": ([MEASURE_TRACER, "botocore"], False),
        "Tracer(), patching all (Powertools' default)": ([MEASURE_TRACER, "all"], False),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as task_root:
        for _ in range(args.runs):
            for name, (code, tracing) in runs.items():
                samples[name].append(seconds(code, tracing, task_root) * 1000)
    for name, values in samples.items():
        print(
            f"{name:46} median {statistics.median(values):5.0f} ms, min {min(values):5.0f}, "
            f"max {max(values):5.0f} ({len(values)} runs)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
