"""Runs the gevent recipe, ``gevent_client.py``, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gevent")

SCRIPT = Path(__file__).with_name("gevent_client.py")


def test_gevent_client_against_a_subprocess_server() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
