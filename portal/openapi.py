"""The API's plumbing with flask-smorest: `Blueprint` for the JSON doors and `init_app`, which
registers them and serves the OpenAPI 3 document built from their schemas at /api/openapi.json.

A schema that refuses input raises the domain's ValidationFailed (422 `invalid`, naming the
fields), a body that is not a JSON object DomainError `malformed_json` (400): web.errors answers
both in the contract's shape, so flask-smorest's own error handler and error body are not used.
"""

import functools
import inspect
from http import HTTPStatus

from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask import Response
from marshmallow import Schema
from webargs.flaskparser import FlaskParser

from models.clock import utcnow
from models.errors import DomainError, ValidationFailed
from portal import schemas

DESCRIPTION = ("Times are ISO 8601 with an offset; money is an integer in minor units plus a currency "
               "code. Auth is by HttpOnly JWT cookies; state changes send the X-CSRF-TOKEN header (the "
               "csrf_access_token cookie's value). Every error answers {\"error\": {\"code\", \"message\"}}.")
# The statuses of the answers an operation that needs sign-in and CSRF may give besides its own.
AUTH_ERRORS = (400, 401, 403, 413, 415, 422, 429, 503)


def _phrase(messages):
    """One field's marshmallow messages as one phrase."""
    if isinstance(messages, dict):  # a nested field: its first inner problem
        return _phrase(next(iter(messages.values()), "is invalid"))
    if isinstance(messages, (list, tuple)):
        return "; ".join(_phrase(m) for m in messages) or "is invalid"
    return str(messages)


class ContractParser(FlaskParser):
    """webargs, answering in the contract's terms instead of aborting with its own body."""

    # Query strings parsed lately, per schema and UTC date (a date's "within ten years of today"
    # moves with it): the booking page asks for the same weeks over and over, and parsing a query
    # cost a fifth of a cached /api/slots. Only successful parses are kept; bounded, so a client
    # sending endless distinct queries only empties it.
    QUERY_MEMO_SIZE = 512

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._query_memo = {}

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        """webargs' parse; a query string this schema parsed today answers from the memo."""
        if location != "query" or not isinstance(argmap, Schema):
            return super().parse(argmap, req, location=location, **kwargs)
        req = req if req is not None else self.get_default_request()
        key = (id(argmap), req.query_string, utcnow().date(), tuple(sorted(kwargs.items(), key=repr)))
        try:
            hit = self._query_memo.get(key)
        except TypeError:  # an unhashable option: parse as usual
            return super().parse(argmap, req, location=location, **kwargs)
        if hit is not None:
            return dict(hit)
        parsed = super().parse(argmap, req, location=location, **kwargs)
        if isinstance(parsed, dict):
            if len(self._query_memo) >= self.QUERY_MEMO_SIZE:
                self._query_memo.clear()
            self._query_memo[key] = dict(parsed)
        return parsed

    def load_json(self, req, schema):
        """The body as a JSON object, or 400 `malformed_json` (also for JSON nested too deeply)."""
        data = req.get_json(silent=True)
        if not isinstance(data, dict):
            raise DomainError("The request body must be a JSON object.", code="malformed_json")
        return data

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        """422 `invalid` naming each field at fault, e.g. "'days' must be a whole number from 1 to 31."."""
        problems = {}
        for by_field in error.messages.values():  # {location: {field: [messages]}}
            if not isinstance(by_field, dict):
                by_field = {"_schema": by_field}
            problems.update({name: _phrase(messages) for name, messages in by_field.items()})
        fields = {name: text for name, text in problems.items() if name != "_schema"}
        if fields and all(text == "is required" for text in fields.values()):
            message = f"Missing field(s): {', '.join(fields)}."
        else:
            message = " ".join(f"'{name}' {text}." if name != "_schema" else f"{text}."
                               for name, text in problems.items())
        raise ValidationFailed(message, fields={name: ("required" if text == "is required" else text)
                                                for name, text in fields.items()})


class Blueprint(SmorestBlueprint):
    """A flask-smorest blueprint whose input errors answer in the contract's shape."""

    ARGUMENTS_PARSER = ContractParser(unknown=None)

    def arguments(self, schema, *args, **kwargs):
        """flask-smorest's `arguments`, with a schema class built once rather than on every request.

        webargs instantiates a schema class per request (deep-copying its fields): a tenth of a
        cached /api/slots. Loading is stateless, so one instance serves every request.
        """
        if isinstance(schema, type):
            schema = schema()
        decorate = super().arguments(schema, *args, **kwargs)

        def decorator(func):
            view = decorate(func)
            if kwargs.get("location") == "query" and not args and set(kwargs) == {"location"}:
                view._query_schema = schema  # for `answers_itself`
            return view

        return decorator

    def answers_itself(self, func):
        """Between `route` and the other decorators of a view that parses only its query string and
        returns a ready Response (its body already in the documented schema's shape): the view is
        called with its parsed query directly, past flask-smorest's and webargs' wrappers.

        Those wrappers (five calls deep, each asking Flask whether the next is a coroutine) would
        only pass the Response through; they cost a tenth of a cached /api/slots (issue 30). The
        documentation they gather is kept (it rides on the function), the query is parsed by the
        same parser (memoised, with its contract-shaped 422), and errors propagate as before.
        """
        schema = getattr(func, "_query_schema", None)
        if schema is None:
            raise TypeError(f"{func.__name__}: answers_itself needs @arguments(Schema, location='query')")
        view_function = inspect.unwrap(func)
        parser = self.ARGUMENTS_PARSER

        @functools.wraps(func)
        def view(*args, **kwargs):
            response = view_function(*args, parser.parse(schema, location="query"), **kwargs)
            if not isinstance(response, Response):
                raise TypeError(f"{view_function.__name__} must return a Response under answers_itself")
            return response

        return view

    def errors(self, *statuses):
        """Document the error answers an operation may give (each one the Error schema)."""

        def decorator(func):
            for status in statuses:
                func = self.alt_response(status, response=HTTPStatus(status).name)(func)
            return func

        return decorator


class _Converter(OpenAPIConverter):
    """apispec's field converter, writing a nullable nested schema as OpenAPI 3.0.3 means it."""

    def field2nullable(self, field, ret):
        """`{type: object, nullable, allOf: [$ref]}`: apispec's `anyOf` with a bare object beside the
        reference would let any object through, so the schemathesis run could not catch drift."""
        if field.allow_none and "$ref" in ret and self.openapi_version.major == 3 and self.openapi_version.minor < 1:
            return {"type": "object", "nullable": True, "allOf": [{"$ref": ret.pop("$ref")}]}
        return super().field2nullable(field, ret)


class _Plugin(MarshmallowPlugin):
    Converter = _Converter


class ClinicApi(Api):
    """flask-smorest's Api, leaving error answers to web.errors."""

    ERROR_SCHEMA = schemas.ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # every operation lists the errors it gives

    def _register_error_handlers(self):
        """Register nothing: web.errors already answers every HTTPException in the contract's shape."""


def init_api(app, blueprints):
    """Serve the JSON doors' blueprints through flask-smorest and their OpenAPI document at /api/openapi.json."""
    from web.extensions import csrf

    for key, value in {"API_TITLE": "Clinic booking patient API", "API_VERSION": "1.0.0",
                       "OPENAPI_VERSION": "3.0.3", "OPENAPI_URL_PREFIX": "/api",
                       "OPENAPI_JSON_PATH": "openapi.json"}.items():
        app.config.setdefault(key, value)
    rest = ClinicApi(spec_kwargs={"info": {"description": DESCRIPTION}, "marshmallow_plugin": _Plugin()})
    rest.init_app(app)
    rest.spec.components.security_scheme(
        "cookieAuth", {"type": "apiKey", "in": "cookie", "name": "__Host-access_token"})
    for blueprint in blueprints:
        rest.register_blueprint(blueprint)
        # The JSON API authenticates by JWT double-submit (X-CSRF-TOKEN), not by a form's token.
        csrf.exempt(blueprint)
    return rest
