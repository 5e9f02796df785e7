"""`make bench`: measures the service on this machine, prints a table and writes it into BENCHMARKS.md.

Everything runs on 127.0.0.1: the Genesys emulator and moto's Secrets Manager as their own processes, the
function as `make build` ships it (and as plain `sam build` ships it, without bytecode) in fresh
`python -S` interpreters laid out as Lambda lays them out, and `make run`'s local API under wrk. Both
guest-token sources are measured: webmessaging (the template's default: a cached web-deployment lookup, then
a WebSocket session with the emulator's Guest API) and rest (the tutorial's generate-token contract).
Each figure is a median or percentile over repeated runs; comparisons are taken in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import urllib3

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_DEPLOYMENT_ID
from devtools.local_api import build_event
from devtools.net import free_port, listening

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
VENV_BIN = Path(sys.executable).parent
# Stands in for /var/runtime (boto3 as the Lambda runtime has it); `make bench` installs it.
LAMBDA_RUNTIME = REPO / ".venv" / "lambda-runtime"
# The built layers, extracted into /opt in this order as Lambda does (the template's defaults).
LAYERS = ("DependenciesLayer", "TracingLayer")
# cryptography, attached only when GenesysJwksUrl is set.
SIGNATURE_LAYER = "SignatureLayer"
SDK_DIR = REPO / ".venv" / "bench-sdk"
HOST = "127.0.0.1"
ORIGIN = "https://www.example.com"
SECRET_ID = "genesys-guest-token/bench"
HANDLER = "guest_token.app.lambda_handler"
DEPLOYMENT_CACHE_SECONDS = 300  # the template's DeploymentCacheSeconds default
LAMBDA_LIMIT_MB = 250
LAYER_TARGET_MB = 40
MARK_START = "<!-- bench:results:start -->"
MARK_END = "<!-- bench:results:end -->"
# BENCHMARKS.md opens with a few rows of the same run, between these markers: the first row whose measure
# matches each pattern, in this order.
HEADLINE_START = "<!-- bench:headline:start -->"
HEADLINE_END = "<!-- bench:headline:end -->"
HEADLINE = (
    r"^Cold start, make build \(\.pyc\), webmessaging source, tracing on \(template defaults\): import \+ first",
    r"^Cold start, make build \(\.pyc\), webmessaging source, tracing on \(template defaults\): import alone",
    r"^Per-token latency, webmessaging source, through the handler on loopback \(tracing on",
    r"^Per-token latency, rest source, through the handler on loopback \(tracing on",
    r"^Warm, webmessaging source, tracing on \(template defaults\), X-Ray's default sampling: handler's own time",
    r"^Upstream calls over \d+ warm invocations, webmessaging source",
    r"^Size, make build \(\.pyc\): function / layer zipped$",
    r"^Fleet, .*: one emulator without limits$",
    r"^Throughput, `make run` local API, webmessaging source",
)
# GUEST_TOKEN_SOURCE: the template's default first. Each source's token request: the webmessaging source
# refuses duration and scopes (Genesys decides a session JWT's lifetime), the rest source takes them.
WEBMESSAGING, REST = "webmessaging", "rest"
DEFAULT_SOURCE = WEBMESSAGING
TOKEN_BODIES = {WEBMESSAGING: "{}", REST: '{"duration": "short"}'}
# What guest_api.py imports when the first guest session is opened.
WEBSOCKET_PACKAGE = "websockets"
WEBSOCKET_MODULES = ("websockets.sync.client", "websockets.exceptions", "websockets.typing")
# What a container has loaded when its first guest session is opened: the handler's module, then the first
# request's secret read (boto3, Powertools parameters) and OAuth call; pyjwt comes after the session.
FIRST_REQUEST_MODULES = ("guest_token.app", "boto3", "aws_lambda_powertools.utilities.parameters")
ARCHITECTURE = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
# The fleet: warm containers (processes) against one emulator, the rest source (one API call per token with the
# access token). Genesys allows 300 API calls per minute per access token; the limits here are that scaled down
# (a 5 s window) so that a short run crosses them. Each invocation has 3 s to live, so a container told to wait
# longer than that answers 429 with Retry-After.
FLEET_LIMIT_PER_TOKEN, FLEET_LIMIT_PER_CLIENT, FLEET_LIMIT_WINDOW = 50, 20, 5.0
FLEET_TIMEOUT_SECONDS = 3.0


@dataclass
class Results:
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (measure, value, target)
    notes: list[str] = field(default_factory=list)

    def add(self, measure: str, value: str, target: str = "") -> None:
        self.rows.append((measure, value, target))
        print(f"  {measure}: {value}", flush=True)


def wait_listening(port: int, process: subprocess.Popen[Any], what: str) -> None:
    deadline = time.monotonic() + 30
    while not listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start on {HOST}:{port}")
        time.sleep(0.05)


@contextmanager
def started(command: list[str], port: int, what: str, **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, **kwargs)
    try:
        wait_listening(port, process, what)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def spread(values: list[float], unit: str = "ms", digits: int = 0) -> str:
    """Median with the spread (min-max and interquartile range) of repeated runs."""
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return (
        f"{statistics.median(ordered):.{digits}f} {unit} (IQR {quartiles[0]:.{digits}f}-{quartiles[2]:.{digits}f}, "
        f"min {ordered[0]:.{digits}f}, max {ordered[-1]:.{digits}f}, n={len(ordered)})"
    )


# ---- builds --------------------------------------------------------------------------------------------


def build(work: Path) -> dict[str, Path]:
    """`make build` for this machine's architecture, and a copy without bytecode (what plain `sam build` ships)."""
    compiled = work / "make-build"
    subprocess.run(
        ["make", "--no-print-directory", "build", f"BUILD_DIR={compiled}", f"ARCH={ARCHITECTURE}"],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
        env={key: value for key, value in os.environ.items() if not key.startswith("AWS_")},
    )
    plain = work / "sam-build"
    shutil.copytree(compiled, plain, ignore=shutil.ignore_patterns("__pycache__"))
    return {"sam build (no .pyc)": plain, "make build (.pyc)": compiled}


def tree_size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def zipped_size(path: Path, work: Path) -> int:
    archive = work / f"{path.parent.name}-{path.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for item in sorted(path.rglob("*")):
            if item.is_file():
                zipped.write(item, item.relative_to(path))
    size = archive.stat().st_size
    archive.unlink()
    return size


def measure_sizes(builds: dict[str, Path], work: Path, results: Results) -> None:
    mb = 1024 * 1024
    for name, root in builds.items():
        function = root / "GuestTokenFunction"
        function_size, function_zip = tree_size(function), zipped_size(function, work)
        layer_size = sum(tree_size(root / layer) for layer in LAYERS)
        layer_zip = sum(zipped_size(root / layer, work) for layer in LAYERS)
        results.add(
            f"Size, {name}: function / layer unzipped",
            f"{function_size / mb:.2f} MB / {layer_size / mb:.1f} MB "
            f"(together {(function_size + layer_size) / mb:.1f} of {LAMBDA_LIMIT_MB} MB)",
            f"layer < {LAYER_TARGET_MB} MB",
        )
        results.add(f"Size, {name}: function / layer zipped", f"{function_zip / mb:.2f} MB / {layer_zip / mb:.1f} MB")
        signature = root / SIGNATURE_LAYER
        results.add(
            f"Size, {name}: {SIGNATURE_LAYER} (only with GenesysJwksUrl), unzipped / zipped",
            f"{tree_size(signature) / mb:.1f} MB / {zipped_size(signature, work) / mb:.1f} MB",
        )
        websockets = root / LAYERS[0] / "python" / WEBSOCKET_PACKAGE
        if not websockets.is_dir():
            raise SystemExit(f"{websockets} is missing: the dependencies layer has no WebSocket client")
        speedups = [item.name for item in websockets.glob("speedups*.so")]
        results.add(
            f"Size, {name}: {WEBSOCKET_PACKAGE}/ in {LAYERS[0]}, unzipped / zipped",
            f"{tree_size(websockets) / 1024:.0f} KB / {zipped_size(websockets, work) / 1024:.0f} KB "
            f"({sum(1 for item in websockets.rglob('*.py'))} .py files"
            f"{', C speedups ' + speedups[0] if speedups else ', no C speedups'})",
        )
    if SDK_DIR.is_dir():
        results.add("Size, Genesys SDK alone (pip --target, with .pyc)", f"{tree_size(SDK_DIR) / mb:.0f} MB")


# ---- the function's environment ----------------------------------------------------------------------


@dataclass(frozen=True)
class StandIns:
    """Where the loopback stand-ins listen: Genesys (HTTP and the Guest API's WebSocket), Secrets Manager and a
    sink for X-Ray's UDP segments."""

    emulator_url: str
    webmessaging_url: str
    secrets_url: str
    xray_daemon: str


def function_env(
    stand_ins: StandIns, python_path: list[Path], task_root: Path, *, tracing: bool, source: str = DEFAULT_SOURCE
) -> dict[str, str]:
    """What Lambda and template.yaml set (defaults, but the guest-token source), pointed at the loopback stand-ins.

    Lambda's own variables matter: with LAMBDA_TASK_ROOT set the X-Ray SDK uses Lambda's sampling, without it
    the SDK builds two botocore X-Ray clients for centralised sampling when imported (about 200 ms here).
    """
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": os.pathsep.join(str(path) for path in python_path),
        # Lambda's code directories are read-only: what is not shipped compiled is compiled on every start.
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(LAMBDA_RUNTIME),
        "_HANDLER": HANDLER,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_FUNCTION_NAME": "GuestTokenFunction",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/GuestTokenFunction",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_XRAY_DAEMON_ADDRESS": stand_ins.xray_daemon,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "POWERTOOLS_SERVICE_NAME": "genesys-guest-token",
        "POWERTOOLS_METRICS_NAMESPACE": "GenesysGuestTokens",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # The template's Tracing parameter: Active (the default) or PassThrough.
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        "GENESYS_CREDENTIALS_SECRET_ID": SECRET_ID,
        "GENESYS_OAUTH_BASE_URL": stand_ins.emulator_url,
        "GENESYS_API_BASE_URL": stand_ins.emulator_url,
        "ALLOWED_ORIGINS": ORIGIN,
        "SECRETS_MANAGER_ENDPOINT_URL": stand_ins.secrets_url,
        # The template's GuestTokenSource (webmessaging by default), GenesysDeploymentId and
        # GenesysWebMessagingBaseUrl; the emulator's demo deployment allows every origin.
        "GUEST_TOKEN_SOURCE": source,
        "GENESYS_DEPLOYMENT_ID": DEMO_DEPLOYMENT_ID if source == WEBMESSAGING else "",
        "GENESYS_WEBMESSAGING_BASE_URL": stand_ins.webmessaging_url,
    }


def layout(root: Path) -> list[Path]:
    """/var/task, /opt/python and /var/runtime, in Lambda's order."""
    return [root / "GuestTokenFunction", *(root / layer / "python" for layer in LAYERS), LAMBDA_RUNTIME]


def run_child(
    script: str, args: list[str], env: dict[str, str], work: Path, flags: tuple[str, ...] = ()
) -> dict[str, Any]:
    result_path = work / "result.json"
    result_path.unlink(missing_ok=True)
    started_at = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-S", *flags, str(BENCH / script), str(result_path), *args],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=600,
    )
    if completed.returncode != 0 or not result_path.exists():
        raise SystemExit(f"{script} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    result["processMs"] = (time.perf_counter() - started_at) * 1000
    result["stderr"] = completed.stderr
    return result


# ---- measurements ----------------------------------------------------------------------------------------


# The variants of a cold start; the first is the reference for ratios.
DEFAULT_VARIANT = "make build (.pyc), webmessaging source, tracing on (template defaults)"
REST_VARIANT = "make build (.pyc), rest source, tracing on"
SDK_VARIANT = "Genesys SDK (PureCloudPlatformClientV2), rest contract"


@dataclass(frozen=True)
class Variant:
    script: str
    args: list[str]
    env: dict[str, str]
    status: int = 200  # what the first request must answer


def measure_cold_start(
    builds: dict[str, Path], stand_ins: StandIns, events: dict[str, Path], runs: int, work: Path
) -> dict[str, list[dict[str, Any]]]:
    compiled, plain = builds["make build (.pyc)"], builds["sam build (no .pyc)"]

    def ours(root: Path, *, tracing: bool, source: str = DEFAULT_SOURCE, first: str = "") -> Variant:
        env = function_env(stand_ins, layout(root), root / "GuestTokenFunction", tracing=tracing, source=source)
        event = events[first or f"token-{source}"]
        return Variant("cold_start.py", [str(event), HANDLER], env, 204 if first == "preflight" else 200)

    variants = {
        DEFAULT_VARIANT: ours(compiled, tracing=True),
        REST_VARIANT: ours(compiled, tracing=True, source=REST),
        "make build (.pyc), webmessaging source, tracing off (PassThrough)": ours(compiled, tracing=False),
        # A browser's first call to a new container is often the CORS preflight: no secret, Genesys or JWT.
        "make build (.pyc), tracing on, a preflight (OPTIONS) first": ours(compiled, tracing=True, first="preflight"),
        "sam build (no .pyc), webmessaging source, tracing on": ours(plain, tracing=True),
    }
    if SDK_DIR.is_dir():
        # A team using the SDK would ship it in a layer: /opt/python before /var/runtime. It asks for the
        # rest contract's generate-token, so REST_VARIANT is its comparison.
        variants[SDK_VARIANT] = Variant(
            "sdk_cold_start.py",
            [],
            function_env(stand_ins, [SDK_DIR, LAMBDA_RUNTIME], work, tracing=False, source=REST),
        )
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    # Round-robin, so a burst of load from other jobs hits every variant alike.
    for run in range(runs):
        for name, variant in variants.items():
            sample = run_child(variant.script, variant.args, variant.env, work)
            if sample["status"] != variant.status:
                raise SystemExit(f"{name}: the first request answered {sample['status']}, not {variant.status}")
            samples[name].append(sample)
        print(f"  cold start run {run + 1}/{runs} done", flush=True)
    return samples


def report_cold_start(samples: dict[str, list[dict[str, Any]]], results: Results) -> None:
    medians: dict[str, float] = {}
    for name, runs in samples.items():
        startup = [run["importMs"] + run["firstRequestMs"] for run in runs]
        medians[name] = statistics.median(startup)
        ours = name.startswith("make build") and "preflight" not in name  # the targets are for a token request
        imports = [run["importMs"] for run in runs]
        results.add(
            f"Cold start, {name}: import + first request",
            spread(startup),
            verdict("<= 400 ms", statistics.median(startup) <= 400) if ours else "",
        )
        results.add(
            f"Cold start, {name}: import alone",
            spread(imports),
            verdict("<= 200 ms", statistics.median(imports) <= 200) if ours else "",
        )
        results.add(f"Cold start, {name}: first request alone", spread([run["firstRequestMs"] for run in runs]))
        results.add(
            f"Cold start, {name}: whole process (interpreter start to exit)", spread([r["processMs"] for r in runs])
        )
        results.add(f"Cold start, {name}: peak RSS", spread([run["maxRssMb"] for run in runs], "MB", 1))
    reference = medians[DEFAULT_VARIANT]
    for name, value in medians.items():
        if name != DEFAULT_VARIANT:
            results.add(
                f"Cold start ratio, {name} / {DEFAULT_VARIANT}",
                f"{value / reference:.2f}x (import + first request, medians, same run)",
            )
    if SDK_VARIANT in medians:
        results.add(
            f"Cold start ratio, {SDK_VARIANT} / {REST_VARIANT}",
            f"{medians[SDK_VARIANT] / medians[REST_VARIANT]:.2f}x (import + first request, medians, same run)",
        )


def measure_cold_start_parts(
    root: Path, stand_ins: StandIns, event_path: Path, runs: int, work: Path, results: Results
) -> None:
    """Where the default cold start goes: each group of modules, in the order they load, then the invocation;
    and the first guest session against the second (a warm container's), from the same children."""
    env = function_env(stand_ins, layout(root), root / "GuestTokenFunction", tracing=True)
    samples: dict[str, list[float]] = {}
    sessions: dict[str, list[float]] = {"first": [], "second": []}
    second_invocation: list[float] = []
    for _ in range(runs):
        sample = run_child("cold_start_parts.py", [str(event_path), HANDLER], env, work)
        if sample["status"] != 200 or sample["secondStatus"] != 200:
            raise SystemExit(f"cold_start_parts.py: the requests answered {sample['status']}, {sample['secondStatus']}")
        for part, milliseconds in sample["parts"].items():
            samples.setdefault(part, []).append(milliseconds)
        sessions["first"].append(sample["firstCalls"][WEBMESSAGING])
        sessions["second"].append(sample["secondCalls"][WEBMESSAGING])
        second_invocation.append(sample["secondInvocationMs"])
    for part, values in samples.items():
        results.add(f"Cold start part ({DEFAULT_VARIANT}): {part}", spread(values))
    results.add(
        "Guest session, the container's first (handshake, configureSession, getJwt, close; websockets already "
        "imported as a part above)",
        spread(sessions["first"], digits=1),
    )
    results.add("Guest session, the container's second (same children)", spread(sessions["second"], digits=1))
    results.add(
        "Guest session, first / second (same children)",
        f"{statistics.median(sessions['first']) / statistics.median(sessions['second']):.1f}x (medians)",
    )
    results.add(
        "Second invocation of those children, whole (a warm token request)", spread(second_invocation, digits=1)
    )


def measure_websockets_import(
    builds: dict[str, Path], stand_ins: StandIns, runs: int, work: Path, results: Results
) -> None:
    """websockets' sync client imported after the runtime's bootstrap alone, and in the handler's context
    (what the first guest session pays): wall time, and what ``-X importtime`` adds up for the modules it
    loads (the cumulative figures of its top-level imports)."""
    contexts = {"alone after the runtime's bootstrap": "", "in the handler's context": ",".join(FIRST_REQUEST_MODULES)}
    for name, root in builds.items():
        env = function_env(stand_ins, layout(root), root / "GuestTokenFunction", tracing=True)
        for context, preload in contexts.items():
            wall: list[float] = []
            importtime: list[float] = []
            sample: dict[str, Any] = {}
            for _ in range(runs):
                sample = run_child("import_cost.py", [preload, *WEBSOCKET_MODULES], env, work)
                wall.append(sample["importMs"])
                flags = ("-X", "importtime")
                timed = run_child("import_cost.py", [preload, *WEBSOCKET_MODULES], env, work, flags=flags)
                importtime.append(importtime_total(timed["stderr"]))
            results.add(
                f"Import of websockets.sync.client, {name}, {context}: wall",
                f"{spread(wall, digits=1)}; {sample['modules']} modules, {sample['others']} of them not websockets'",
            )
            results.add(
                f"Import of websockets.sync.client, {name}, {context}: `-X importtime` (sum of top-level cumulative)",
                spread(importtime, digits=1),
            )


def importtime_total(stderr: str) -> float:
    """Milliseconds: the cumulative time of each import ``-X importtime`` shows at the top level after the
    marker (nested imports are inside their parents' cumulative time)."""
    lines = stderr.split("bench: import starts", 1)[1].splitlines()
    total_us = 0
    for line in lines:
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)\S", line)
        if match and not match.group(2):
            total_us += int(match.group(1))
    return total_us / 1000


@dataclass(frozen=True)
class Warm:
    label: str
    source: str
    tracing: bool
    sampling: str  # see bench/warm.py


WARM_DEFAULT = Warm(
    "webmessaging source, tracing on (template defaults), X-Ray's default sampling", WEBMESSAGING, True, "default"
)
WARM_REST = Warm("rest source, tracing on, X-Ray's default sampling", REST, True, "default")
WARM_VARIANTS = (
    WARM_DEFAULT,
    WARM_REST,
    Warm("webmessaging source, tracing on, every request sampled", WEBMESSAGING, True, "all"),
    Warm("webmessaging source, tracing off", WEBMESSAGING, False, "default"),
    Warm("rest source, tracing off", REST, False, "default"),
)


def measure_warm(
    root: Path, stand_ins: StandIns, events: dict[str, Path], invocations: int, work: Path, variant: Warm
) -> dict[str, Any]:
    reset_emulator(stand_ins.emulator_url)
    warmup = min(100, invocations // 10)
    env = function_env(
        stand_ins, [*layout(root), BENCH], root / "GuestTokenFunction", tracing=variant.tracing, source=variant.source
    )
    event = events[f"token-{variant.source}"]
    result = run_child("warm.py", [str(event), str(invocations), str(warmup), variant.sampling], env, work)
    result["counts"] = emulator_counts(stand_ins.emulator_url)
    return result


def verdict(target: str, met: bool) -> str:
    """A target with whether this run met it, so a reader of the table need not compare the numbers."""
    return f"{target}: {'met' if met else 'not met'}"


def triple(values: dict[str, float]) -> str:
    return f"p50 {values['p50']:.3f} / p95 {values['p95']:.3f} / p99 {values['p99']:.3f} ms"


def report_warm(result: dict[str, Any], results: Results, variant: Warm, *, counts: bool) -> None:
    label = variant.label
    own, bare, total, upstream = result["own"], result["bare"], result["total"], result["upstream"]
    measured = result["measured"]

    sampled = f", {result['sampled']} of them sampled" if "tracing on" in label else ""
    results.add(
        f"Warm, {label}: handler's own time (total - upstream), {measured} invocations{sampled}",
        triple(own),
        verdict("p50 <= 0.45, p99 <= 1.5 ms", own["p50"] <= 0.45 and own["p99"] <= 1.5),
    )
    results.add(f"Warm, {label}: bare Powertools resolver returning a constant, same run", triple(bare))
    results.add(
        f"Warm, {label}: ratio own / bare (same run)",
        " / ".join(f"{key} {own[key] / bare[key]:.1f}x" for key in ("p50", "p95", "p99")),
    )
    results.add(f"Warm, {label}: whole invocation incl. upstream", triple(total))
    results.add(f"Warm, {label}: upstream round trip (logged latencyMs of each attempt)", triple(upstream))
    if result["logLines"] is not None:
        lines, written = result["logLines"], result["logBytes"]
        results.add(
            f"Warm, {label}: log lines and bytes per token (audit lines and EMF)",
            f"{lines['p50']:.0f} lines (max {lines['max']:.0f}), {written['p50']:.0f} bytes (max {written['max']:.0f})",
            "<= 2 lines; bytes half of 4 lines / about 2.5 KB",
        )
    session = result["calls"].get(WEBMESSAGING)
    if session is not None:
        first = result["firstCalls"].get(WEBMESSAGING, 0.0)
        results.add(
            f"Warm, {label}: guest session alone (handshake, configureSession, getJwt, close), "
            f"{session['count']} sessions",
            f"{triple(session)}; the container's first: {first:.1f} ms (with importing websockets)",
        )
    if counts:
        calls = result["counts"]
        invocations = result["invocations"]
        statuses = f"statuses {result['statuses']}"
        if variant.source == WEBMESSAGING:
            results.add(
                f"Upstream calls over {invocations} warm invocations, webmessaging source ({statuses})",
                f"OAuth {calls['oauth']}, deployment {calls['deployment']}, WebSocket handshakes "
                f"{calls['ws-connect']}, configureSession {calls['configure-session']}, getJwt {calls['get-jwt']}, "
                f"guest-token {calls['guest-token']}",
                f"OAuth 1, deployment 1 per {DEPLOYMENT_CACHE_SECONDS} s, sessions {invocations}",
            )
        else:
            results.add(
                f"Upstream calls over {invocations} warm invocations, rest source ({statuses})",
                f"OAuth {calls['oauth']}, guest-token {calls['guest-token']}",
                f"1 and {invocations}",
            )


def report_per_token(warm: dict[Warm, dict[str, Any]], results: Results) -> None:
    """The two sources side by side: a token request end to end through the handler, loopback upstream."""
    for tracing in (True, False):
        pair = [variant for variant in warm if variant.tracing == tracing and variant.sampling == "default"]
        by_source = {variant.source: warm[variant]["total"] for variant in pair}
        if set(by_source) != {WEBMESSAGING, REST}:
            continue
        sampling = "tracing on, X-Ray's default sampling" if tracing else "tracing off"
        measured = warm[pair[0]]["measured"]
        for source in (WEBMESSAGING, REST):
            values = by_source[source]
            results.add(
                f"Per-token latency, {source} source, through the handler on loopback ({sampling}, "
                f"{measured} warm requests)",
                f"p50 {values['p50']:.2f} / p99 {values['p99']:.2f} ms",
            )
        ratio = {key: by_source[WEBMESSAGING][key] / by_source[REST][key] for key in ("p50", "p99")}
        results.add(
            f"Per-token latency, webmessaging / rest ({sampling}, same run)",
            f"p50 {ratio['p50']:.1f}x / p99 {ratio['p99']:.1f}x",
        )


def measure_throughput(seconds: int, connections: int, rounds: int, results: Results) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        results.notes.append("Throughput not measured: wrk is not installed (`make bench` installs it with apt-get).")
        return
    for source in (WEBMESSAGING, REST):
        measure_throughput_of(wrk, source, seconds, connections, rounds, results)


def measure_throughput_of(wrk: str, source: str, seconds: int, connections: int, rounds: int, results: Results) -> None:
    port, genesys_port, webmessaging_port, secrets_port = free_port(), free_port(), free_port(), free_port()
    command = [
        sys.executable,
        *("-m", "devtools.run_local", "--port", str(port)),
        *("--genesys-port", str(genesys_port), "--webmessaging-port", str(webmessaging_port)),
        *("--secrets-port", str(secrets_port)),
    ]
    origin = f"http://{HOST}:{port}"
    rates: list[float] = []
    errors = 0
    environment = {**os.environ, "GUEST_TOKEN_SOURCE": source}
    if source == WEBMESSAGING:
        environment["GENESYS_DEPLOYMENT_ID"] = DEMO_DEPLOYMENT_ID
    with started(command, port, "make run's local API", env=environment):
        for _ in range(rounds):
            output = subprocess.run(
                [
                    *(wrk, "-t", "2", "-c", str(connections), "-d", f"{seconds}s"),
                    *("-s", str(BENCH / "post.lua"), f"{origin}/guest-tokens"),
                ],
                env={**os.environ, "BENCH_ORIGIN": origin, "BENCH_BODY": TOKEN_BODIES[source]},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
            if rate is None:
                raise SystemExit(f"cannot read wrk's output:\n{output}")
            rates.append(float(rate.group(1)))
            non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
            socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
            errors += int(non_2xx.group(1)) if non_2xx else 0
            errors += sum(int(value) for value in socket_errors.groups()) if socket_errors else 0
    results.add(
        f"Throughput, `make run` local API, {source} source, wrk {connections} connections, {rounds} x {seconds} s",
        f"{spread(rates, 'req/s')}, errors {errors}",
        "0 errors",
    )


# ---- the stand-ins --------------------------------------------------------------------------------------


def run_fleet(root: Path, stand_ins: StandIns, event: Path, work: Path, containers: int, seconds: int) -> list[Any]:
    """Each container's outcome (bench/fleet.py), all started cold and then kept busy over the same seconds."""
    env = function_env(stand_ins, [*layout(root), BENCH], root / "GuestTokenFunction", tracing=False, source=REST)
    start = time.time() + 3.0 + 0.5 * containers  # every container has started cold before the clock
    running = []
    for index in range(containers):
        result_path = work / f"fleet-{index}.json"
        result_path.unlink(missing_ok=True)
        command = [sys.executable, "-S", str(BENCH / "fleet.py"), str(result_path), str(event), str(start)]
        command += [str(seconds), str(FLEET_TIMEOUT_SECONDS)]
        process = subprocess.Popen(command, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        running.append((result_path, process))
    outcomes = []
    for result_path, process in running:
        _, stderr = process.communicate(timeout=seconds + 300)
        if process.returncode != 0 or not result_path.exists():
            raise SystemExit(f"fleet.py failed:\n{stderr.decode()[-3000:]}")
        outcomes.append(json.loads(result_path.read_text()))
    return outcomes


def measure_fleet(
    root: Path, stand_ins: StandIns, event: Path, work: Path, results: Results, containers: int, seconds: int
) -> None:
    label = f"Fleet, {containers} warm containers (processes), rest source, {seconds} s"
    reset_emulator(stand_ins.emulator_url)
    outcomes = run_fleet(root, stand_ins, event, work, containers, seconds)
    counts = emulator_counts(stand_ins.emulator_url)
    issued = sum(outcome["statuses"].get("200", 0) for outcome in outcomes)
    results.add(
        f"{label}: one emulator without limits",
        f"{issued / seconds:.0f} tokens/s; OAuth fetches {counts['oauth']}, guest-token calls {counts['guest-token']}",
        f"OAuth fetches = {containers}",
    )

    port, webmessaging_port = free_port(), free_port()
    command = [sys.executable, "-m", "devtools.genesys_emulator", "--port", str(port)]
    command += ["--webmessaging-port", str(webmessaging_port), "--limit-window", str(FLEET_LIMIT_WINDOW)]
    command += [
        "--limit-per-access-token",
        str(FLEET_LIMIT_PER_TOKEN),
        "--limit-per-client",
        str(FLEET_LIMIT_PER_CLIENT),
    ]
    with started(command, port, "the rate-limited Genesys emulator"):
        limited_url = f"http://{HOST}:{port}"
        limited = dataclasses.replace(
            stand_ins, emulator_url=limited_url, webmessaging_url=f"ws://{HOST}:{webmessaging_port}"
        )
        outcomes = run_fleet(root, limited, event, work, containers, seconds)
        counts = emulator_counts(limited_url)
    issued = sum(outcome["statuses"].get("200", 0) for outcome in outcomes)
    refused = sum(outcome["statuses"].get("429", 0) for outcome in outcomes)
    waits = [wait for outcome in outcomes for wait in outcome["retryAfter"]]
    others = {
        status: count
        for outcome in outcomes
        for status, count in outcome["statuses"].items()
        if status not in ("200", "429")
    }
    ceiling = containers * FLEET_LIMIT_PER_TOKEN / FLEET_LIMIT_WINDOW
    results.add(
        f"{label}: emulator limits {FLEET_LIMIT_PER_TOKEN} API calls per access token and "
        f"{FLEET_LIMIT_PER_CLIENT} access tokens per client, per {FLEET_LIMIT_WINDOW:g} s; "
        f"{FLEET_TIMEOUT_SECONDS:g} s per invocation",
        f"{issued / seconds:.0f} tokens/s (the per-token limit's ceiling: {ceiling:.0f}/s); OAuth fetches "
        f"{counts['oauth']}; {refused} answers 429 in {sum(o['limited'] for o in outcomes)} containers"
        + (f" (Retry-After {min(waits)}-{max(waits)} s)" if waits else "")
        + f", {sum(o['recovered'] for o in outcomes)} of them issued tokens again"
        + (f"; other statuses {others}" if others else ""),
        f"OAuth fetches = {containers}; 429 with Retry-After, then tokens again",
    )


def reset_emulator(url: str) -> None:
    response = urllib3.request("POST", f"{url}/__emulator/reset", timeout=10.0)
    assert response.status == 204, response.status


def emulator_counts(url: str) -> dict[str, int]:
    """Requests per route: the HTTP routes of the rest contract ("counts") and those of the webmessaging
    source ("webMessagingCounts": deployment, ws-connect, configure-session, get-jwt, messages)."""
    response = urllib3.request("GET", f"{url}/__emulator/requests", timeout=30.0)
    snapshot = json.loads(response.data)
    counts: dict[str, int] = {**snapshot["counts"], **snapshot.get("webMessagingCounts", {})}
    return counts


def machine() -> list[str]:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")),
        "0",
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=False)
    changes = " (with local changes)" if dirty.stdout.strip() else ""
    return [
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit {commit}{changes}",
        f"- CPU: {cpu}, {os.cpu_count()} cores ({platform.machine()}); memory {int(memory) / 1024 / 1024:.0f} GiB",
        f"- OS: {platform.platform()}; Python {platform.python_version()} (the Lambda runtime's 3.12)",
        f"- Load average at start: {' / '.join(f'{value:.2f}' for value in os.getloadavg())} "
        "(the machine is shared; other jobs add noise, hence medians and spreads)",
    ]


def table(results: Results) -> str:
    lines = ["| measure | result | target |", "| --- | --- | --- |"]
    lines += [f"| {measure} | {value} | {target} |" for measure, value, target in results.rows]
    return "\n".join(lines)


def headline(results: Results) -> Results:
    """The rows BENCHMARKS.md opens with (HEADLINE), taken from the run's own rows."""
    rows = [next((row for row in results.rows if re.search(pattern, row[0])), None) for pattern in HEADLINE]
    return Results(rows=[row for row in rows if row is not None])


def replace_between(text: str, start: str, end: str, block: str) -> str:
    """``text`` with what lies between the markers ``start`` and ``end`` (both included) replaced by ``block``."""
    before, rest = text.split(start, 1)
    return before + block + rest.split(end, 1)[1]


def write_markdown(path: Path, machine_lines: list[str], results: Results, arguments: str) -> None:
    block = "\n".join(
        [
            MARK_START,
            f"Written by `make bench` (`python -m bench {arguments}`); do not edit by hand.",
            "",
            *machine_lines,
            f"- Load average at end: {' / '.join(f'{value:.2f}' for value in os.getloadavg())}",
            "",
            table(results),
            "",
            *[f"- {note}" for note in results.notes],
            MARK_END,
        ]
    )
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{MARK_START}\n{MARK_END}\n"
    if MARK_START not in text:
        text += f"\n{MARK_START}\n{MARK_END}\n"
    text = replace_between(text, MARK_START, MARK_END, block)
    if HEADLINE_START in text:
        date = next((line for line in machine_lines if line.startswith("- Date:")), "")
        summary = "\n".join(
            [
                HEADLINE_START,
                "Written by `make bench` from the run below; do not edit by hand.",
                "",
                date,
                "",
                table(headline(results)),
                HEADLINE_END,
            ]
        )
        text = replace_between(text, HEADLINE_START, HEADLINE_END, summary)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--cold-runs", type=int, default=15, help="fresh interpreters per variant (>= 10)")
    parser.add_argument("--warm", type=int, default=10000, help="warm invocations (>= 5000)")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--wrk-rounds", type=int, default=3)
    parser.add_argument("--wrk-connections", type=int, default=8)
    parser.add_argument("--fleet-containers", type=int, default=8, help="warm containers in the fleet (>= 8)")
    parser.add_argument("--fleet-seconds", type=int, default=10, help="seconds each fleet phase runs")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not (LAMBDA_RUNTIME / "boto3").is_dir():
        raise SystemExit(f"{LAMBDA_RUNTIME} is missing: run `make bench`, which installs it")

    results = Results()
    machine_lines = machine()
    print("\n".join(machine_lines), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        work = Path(scratch)
        print("Building (make build) ...", flush=True)
        builds = build(work)
        measure_sizes(builds, work, results)

        emulator_port, webmessaging_port, secrets_port = free_port(), free_port(), free_port()
        emulator_url, secrets_url = f"http://{HOST}:{emulator_port}", f"http://{HOST}:{secrets_port}"
        emulator_command = [
            *(sys.executable, "-m", "devtools.genesys_emulator", "--port", str(emulator_port)),
            *("--webmessaging-port", str(webmessaging_port)),
        ]
        moto_command = [str(VENV_BIN / "moto_server"), "-H", HOST, "-p", str(secrets_port)]
        with (
            started(emulator_command, emulator_port, "the Genesys emulator"),
            started(moto_command, secrets_port, "moto's Secrets Manager"),
            # Stands in for the X-Ray daemon: takes the segments of traced runs, unread, as UDP does.
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as xray_daemon,
        ):
            xray_daemon.bind((HOST, 0))
            stand_ins = StandIns(
                emulator_url,
                f"ws://{HOST}:{webmessaging_port}",
                secrets_url,
                f"{HOST}:{xray_daemon.getsockname()[1]}",
            )
            boto3.client(
                "secretsmanager",
                endpoint_url=secrets_url,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            ).create_secret(
                Name=SECRET_ID,
                SecretString=json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET}),
            )
            events = {
                **{
                    f"token-{source}": build_event(
                        "POST",
                        "/guest-tokens",
                        headers={"Origin": ORIGIN, "Content-Type": "application/json"},
                        body=body,
                    )
                    for source, body in TOKEN_BODIES.items()
                },
                "preflight": build_event(
                    "OPTIONS",
                    "/guest-tokens",
                    headers={
                        "Origin": ORIGIN,
                        "Access-Control-Request-Method": "POST",
                        "Access-Control-Request-Headers": "content-type",
                    },
                ),
            }
            event_paths = {name: work / f"{name}-event.json" for name in events}
            for name, event in events.items():
                event_paths[name].write_text(json.dumps(event))
            compiled = builds["make build (.pyc)"]
            print(f"Cold start ({args.cold_runs} runs per variant) ...", flush=True)
            samples = measure_cold_start(builds, stand_ins, event_paths, args.cold_runs, work)
            report_cold_start(samples, results)
            print(f"Cold start parts ({args.cold_runs} runs) ...", flush=True)
            default_event = event_paths[f"token-{DEFAULT_SOURCE}"]
            measure_cold_start_parts(compiled, stand_ins, default_event, args.cold_runs, work, results)
            print(f"Importing websockets ({args.cold_runs} runs per build, with and without -X importtime) ...")
            measure_websockets_import(builds, stand_ins, args.cold_runs, work, results)
            warm: dict[Warm, dict[str, Any]] = {}
            for variant in WARM_VARIANTS:
                print(f"Warm, {variant.label} ({args.warm} invocations) ...", flush=True)
                warm[variant] = measure_warm(compiled, stand_ins, event_paths, args.warm, work, variant)
            report_per_token(warm, results)
            for variant, result in warm.items():
                report_warm(result, results, variant, counts=variant in {WARM_DEFAULT, WARM_REST})
            print(f"Fleet ({args.fleet_containers} containers, {args.fleet_seconds} s per phase) ...", flush=True)
            rest_event = event_paths[f"token-{REST}"]
            measure_fleet(compiled, stand_ins, rest_event, work, results, args.fleet_containers, args.fleet_seconds)
        print("Throughput (wrk) ...", flush=True)
        measure_throughput(args.wrk_seconds, args.wrk_connections, args.wrk_rounds, results)

    print()
    print(table(results))
    arguments = " ".join(argv if argv is not None else sys.argv[1:])
    write_markdown(args.output, machine_lines, results, arguments)
    print(f"\nWritten to {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
