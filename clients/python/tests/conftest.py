"""Shared fixtures: the golden vectors of shm/testdata/golden."""

from __future__ import annotations

import json
import os
from typing import Any, Dict

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
GOLDEN_DIR = os.path.join(REPO, "shm", "testdata", "golden")


@pytest.fixture(scope="session")
def golden() -> Dict[str, Any]:
    with open(os.path.join(GOLDEN_DIR, "expected.json"), encoding="utf-8") as f:
        data: Dict[str, Any] = json.load(f)
    return data
