"""Static checks over the application code: bandit (nothing of medium severity or above) and the
layering contract (import-linter)."""

import os
import subprocess
import sys

from tests.helpers import ROOT


def test_bandit_finds_nothing_of_medium_severity_or_above():
    bandit = os.path.join(os.path.dirname(sys.executable), "bandit")
    result = subprocess.run([bandit, "-q", "-r", "clinic", "models", "portal", "admin", "webhooks", "devstack", "wsgi.py",
                             "-ll", "-f", "txt"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layering_contract_holds():
    """import-linter (`.importlinter`): the domain (models) imports no door and not `clinic`, lazy
    imports inside functions included; payments' modules import one way; only its gateway imports stripe."""
    lint = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
