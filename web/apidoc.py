"""Helpers for naming, in the one OpenAPI document (/api/openapi.json), routes that are not on a
flask-smorest blueprint: the Stripe webhook (webhooks/schemas.py) and the probes (clinic/health.py)."""

from http import HTTPStatus

from werkzeug.routing import Map, Rule


def error_refs(*statuses):
    """The document's shared error responses for these statuses, by reference (`{"400": "BAD_REQUEST"}`)."""
    return {str(status): HTTPStatus(status).name for status in statuses}


def json_response(schema, description):
    """A JSON response of `schema`, as an operation's `responses` entry."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def plain_rule(path):
    """A URL rule as flask-smorest's path helper reads it (these routes are not on an API blueprint)."""
    rule = Rule(path, endpoint=path)
    Map([rule])  # binding compiles the rule
    return rule
