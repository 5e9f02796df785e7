"""template.yaml as the dev tools read it: parsed once per process, with a loader that knows CloudFormation's
tags. Read it, never change it: every caller shares the one copy."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


@functools.cache
def template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return parsed
