"""Reading the CloudFormation templates in cfn/ for the checks of this tier."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    from cfnlint.decode import cfn_yaml
except ImportError:  # the tests that need it fail with the install hint
    cfn_yaml = None

REPO = Path(__file__).resolve().parents[2]
CFN_DIR = REPO / "cfn"
DATA = CFN_DIR / "phoenix-data.yaml"
NETWORK = CFN_DIR / "phoenix-network.yaml"
COMPUTE = CFN_DIR / "phoenix-compute.yaml"
TEMPLATES = [DATA, NETWORK, COMPUTE]


def tool(name: str) -> str:
    """Path of a template linter: in $PHOENIX_CFN_TOOLS (checkov's dependencies conflict
    with Salt's, so `make test` keeps the linters in their own venv, .venv-cfn), else next
    to this interpreter."""
    bin_dir = Path(os.environ.get("PHOENIX_CFN_TOOLS") or Path(sys.executable).parent)
    path = bin_dir / name
    if not path.exists():
        pytest.fail(
            f"{name} is not installed in {bin_dir}. `make test` installs the template linters "
            "into .venv-cfn (requirements/cfn.txt); or set PHOENIX_CFN_TOOLS to a bin folder "
            "that has cfn-lint==1.58.0 and checkov==3.3.30",
            pytrace=False,
        )
    return str(path)


def load(path: Path) -> dict[str, Any]:
    """Parse a template with cfn-lint's CloudFormation-aware YAML loader (!Ref, !Sub, ...)."""
    if cfn_yaml is None:
        tool("cfn-lint")  # fails with the install hint
    return cfn_yaml.load(str(path))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == type_
    }


def policy_documents(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy document (a mapping with a Statement) anywhere under node."""
    if isinstance(node, dict):
        if "Statement" in node:
            yield path, node
        for key, value in node.items():
            yield from policy_documents(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from policy_documents(value, f"{path}/{index}")


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(document["Statement"])


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement of a role's inline policies."""
    policies = template["Resources"][role]["Properties"]["Policies"]
    return [statement for policy in policies for statement in statements(policy["PolicyDocument"])]


def is_wildcard_action(action: Any) -> bool:
    return isinstance(action, str) and (action == "*" or action.endswith(":*"))


def sub_template(value: Any) -> tuple[str, dict[str, Any]]:
    """The template string and variable map of an Fn::Sub."""
    sub = value["Fn::Sub"]
    if isinstance(sub, list):
        return sub[0], dict(sub[1])
    return sub, {}
