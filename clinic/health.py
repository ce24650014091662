"""Liveness and readiness probes, with their schemas and their entries in the OpenAPI document.

They are a blueprint of the app itself, not a door (no patient or staff input, no domain action),
so they sit here with the app factory that registers them.
"""

import pymongo
from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields, validate

from portal.schemas import ErrorSchema
from web.apidoc import json_response, plain_rule

bp = Blueprint("health", __name__)


class AliveSchema(Schema):
    """The process runs."""

    status = fields.String(required=True)


class ChecksSchema(Schema):
    """Each dependency's state: ok or down."""

    mongodb = fields.String(required=True, validate=validate.OneOf(("ok", "down")))
    redis = fields.String(required=True, validate=validate.OneOf(("ok", "down")))


class ReadySchema(Schema):
    """MongoDB and Redis answer."""

    status = fields.String(required=True)
    checks = fields.Nested(ChecksSchema, required=True)


class NotReadySchema(ErrorSchema):
    """Not ready: the error, and each dependency's state."""

    checks = fields.Nested(ChecksSchema, required=True)


def document(spec):
    """Name `/healthz` and `/readyz` in the app's OpenAPI document (`spec`, an apispec APISpec)."""
    spec.path(rule=plain_rule("/healthz"), operations={"get": {
        "summary": "Process alive", "tags": ["health"],
        "responses": {"200": json_response(AliveSchema, "Alive")}}})
    spec.path(rule=plain_rule("/readyz"), operations={"get": {
        "summary": "MongoDB and Redis answer", "tags": ["health"],
        "responses": {"200": json_response(ReadySchema, "Ready"),
                      "503": json_response(NotReadySchema, "A dependency is down")}}})


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
