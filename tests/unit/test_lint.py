"""The code passes the project's lint rules (pyflakes, bugbear, import order)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "hub", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_example_deployment_config_is_valid():
    from hub.config import load_config

    cfg = load_config(ROOT / "deploy" / "roundtable.toml", env={})
    assert cfg.base_url == "https://hub.example.org"
