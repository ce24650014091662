"""Liveness and readiness probes."""

import pymongo
from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Answer 200 while the process runs; touches no dependency."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Answer 200 when MongoDB and Redis answer, 503 naming the ones that do not."""
    checks = {}
    try:
        # Bounded (issue 31): a paused MongoDB makes the probe answer 503 in about a second.
        with pymongo.timeout(1.2):
            current_app.extensions["mongo"].client().admin.command("ping")
        checks["mongodb"] = "ok"
    except Exception:  # any failure means not ready; the probe must never raise
        checks["mongodb"] = "down"
    try:
        current_app.extensions["redis"].client.ping()
        checks["redis"] = "ok"
    except Exception:
        checks["redis"] = "down"
    down = [name for name, state in checks.items() if state != "ok"]
    if down:
        body = {"error": {"code": "unavailable", "message": f"Not ready: {', '.join(down)} down."},
                "checks": checks}
        return jsonify(body), 503
    return jsonify(status="ok", checks=checks)
