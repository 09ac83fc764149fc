"""The three templates, parsed once per module."""

from __future__ import annotations

from typing import Any

import pytest

from .templates import COMPUTE, DATA, NETWORK, TEMPLATES, load


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return load(DATA)


@pytest.fixture(scope="module")
def network() -> dict[str, Any]:
    return load(NETWORK)


@pytest.fixture(scope="module")
def compute() -> dict[str, Any]:
    return load(COMPUTE)


@pytest.fixture(scope="module")
def all_templates() -> dict[str, dict[str, Any]]:
    return {path.name: load(path) for path in TEMPLATES}
