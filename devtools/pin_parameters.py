"""Writes what a build decided into the template `sam build` left for `sam deploy`, as fixed values.

`sam build` keeps `!Ref Architecture` in .aws-sam/build/template.yaml, so a later `sam deploy` (or the guided
run's answer saved in samconfig.toml) could ship wheels built for one instruction set to a function of the
other: Runtime.ImportModuleError on the first request. Here every reference to a pinned parameter becomes its
value and the parameter goes, so the build alone decides; `sam deploy` passes only parameters a template
declares and the guided run asks only for those. `make build` pins Architecture (the built one) and
SecretsManagerEndpointUrl (empty: it is for `sam local` only, and a deployment must never set it).

python -m devtools.pin_parameters .aws-sam/build/template.yaml Architecture=arm64 SecretsManagerEndpointUrl=
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_dump, yaml_parse


def pin(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    def replace(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in values:
            return values[node["Ref"]]
        if isinstance(node, dict):
            # The same mapping type: samcli parses into OrderedDict, and the guided deploy asks in this order.
            return type(node)((key, replace(value)) for key, value in node.items())
        if isinstance(node, list):
            return [replace(item) for item in node]
        return node

    parameters = template.get("Parameters", {})
    for name, value in values.items():
        allowed = parameters[name].get("AllowedValues")  # a KeyError names a parameter the template lacks
        if allowed is not None and value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")
    pinned: dict[str, Any] = replace(template)
    for name in values:
        del pinned["Parameters"][name]
    interface = pinned.get("Metadata", {}).get("AWS::CloudFormation::Interface", {})
    for group in interface.get("ParameterGroups", []):
        group["Parameters"] = [name for name in group["Parameters"] if name not in values]
    interface["ParameterGroups"] = [group for group in interface.get("ParameterGroups", []) if group["Parameters"]]
    return pinned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("template", type=Path)
    parser.add_argument("values", nargs="+", metavar="Name=value")
    arguments = parser.parse_args(argv)
    values = dict(value.split("=", 1) for value in arguments.values)
    template = yaml_parse(arguments.template.read_text())
    arguments.template.write_text(yaml_dump(pin(template, values)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
