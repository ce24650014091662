"""bandit over the application code: no finding of medium severity or above."""

import os
import subprocess
import sys

from tests.helpers import ROOT


def test_bandit_finds_nothing_of_medium_severity_or_above():
    bandit = os.path.join(os.path.dirname(sys.executable), "bandit")
    result = subprocess.run([bandit, "-q", "-r", "clinic", "models", "portal", "admin", "webhooks", "wsgi.py",
                             "-ll", "-f", "txt"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
