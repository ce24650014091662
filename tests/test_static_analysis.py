"""Static checks over the application code: bandit (nothing of medium severity or above) and the
layering contract (import-linter)."""

import os
import subprocess
import sys

from tests.helpers import ROOT


def test_bandit_finds_nothing_of_medium_severity_or_above():
    bandit = os.path.join(os.path.dirname(sys.executable), "bandit")
    result = subprocess.run([bandit, "-q", "-r", "clinic", "web", "models", "portal", "admin", "webhooks", "devstack", "wsgi.py",
                             "-ll", "-f", "txt"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layering_contract_holds():
    """import-linter (`.importlinter`): the app factory (`clinic`) over the doors over `web` over the
    domain (models), lazy imports inside functions included; no door imports another; payments' modules
    import one way; only its gateway imports stripe."""
    lint = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
