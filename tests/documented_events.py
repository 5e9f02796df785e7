"""The events/ files and the answers docs/api.md's table promises for each (used by more than one test)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"
# A row of docs/api.md's events table: | `events/new-guest.json` | what it sends | `200` | or `400 invalid_json` |
ROW = re.compile(r"^\|\s*`events/([\w.-]+\.json)`\s*\|[^|]*\|\s*`(\d{3})(?: (\w+))?`\s*\|", re.MULTILINE)


def documented_answers() -> dict[str, tuple[int, str | None]]:
    rows = ROW.findall((REPO / "docs" / "api.md").read_text())
    return {name: (int(status), code or None) for name, status, code in rows}


def event_files() -> list[str]:
    return sorted(
        path.name for path in EVENTS.glob("*.json") if not path.name.startswith("env.")
    )  # env.json, env.linux.json
