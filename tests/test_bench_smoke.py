"""The benchmark script runs from this checkout and its figures keep the product's promises."""

import json
import os
import subprocess
import sys

import pytest

from tests.bench_scale import missing_kinds
from tests.helpers import ROOT, clean_env


@pytest.mark.slow
def test_benchmark_runs_and_prints_its_figures():
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "bench.py"), "--seconds", "1", "--threads", "4",
         "--race-patients", "12", "--race-slots", "3", "--any-repeats", "1"],
        cwd=ROOT, env=clean_env(REDIS_URL=os.environ.get("REDIS_URL", "")), capture_output=True,
        text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["hello_rps"] > 0 and figures["slots_rps"] > 0 and figures["book_rps"] > 0
    assert figures["db_commands"]["slots"] <= 3 and figures["db_commands"]["book"] <= 4
    assert figures["book_db_commands"] == figures["db_commands"]["book"]
    # A cached read: no MongoDB command, and one Redis command (issue 30).
    assert figures["db_commands"]["slots_cached"] == 0
    assert figures["redis_commands_slots_cached"] is None or figures["redis_commands_slots_cached"] <= 1.1
    # Free times for "any provider" cost the same commands with 4 providers as with 50.
    assert figures["db_commands"]["slots_any_4"] == figures["db_commands"]["slots_any_50"] <= 3
    assert figures["slots_mixed_rps"] > 0 and figures["slots_mixed_vs_idle"] > 0
    assert figures["mixed_errors_5xx"] == 0
    assert set(figures["slots_any_ms"]) == {"4", "20", "50"} and figures["any_scaling"] > 0
    assert figures["worker_rss_mb"] and all(mb > 0 for mb in figures["worker_rss_mb"])
    assert figures["db_commands"]["admin_list_20"] == figures["db_commands"]["admin_list_100"]
    # A backlog queued at once is drained by the worker, every message accepted by the SMTP server (issue 31).
    assert figures["backlog_drain"]["messages"] == 150 and figures["backlog_drain_per_s"] > 0
    race = figures["race"]
    assert race["won"] == race["slots"] == 3 and race["double_booked"] == 0 and race["errors_5xx"] == 0
    # Two hosts with two message workers racing (issue 30): nothing double-booked, lost, sent twice
    # or answered 5xx, both workers stopped cleanly, and every kind of action in the mix happened.
    for name in ("hosts2", "valkey_cluster"):
        scale = figures[name]
        assert scale["workers"] == 2 and len(scale["sent_by_worker"]) == 2, (name, scale)
        assert scale["worker_errors"] == [], (name, scale["worker_errors"])
        assert (scale["double_booked"], scale["lost_messages"], scale["duplicate_messages"],
                scale["errors_5xx"]) == (0, 0, 0, 0), (name, scale)
        assert scale["bookings"] > 0 and missing_kinds(scale) == [], (name, scale)
    assert figures["valkey_cluster"]["ok"] is True
