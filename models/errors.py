"""Domain exceptions: the rules raise them, the doors turn them into HTTP answers."""


class DomainError(Exception):
    """A rule refused an operation; `code` is a stable slug, `message` is for people."""

    status = 400
    code = "bad_request"

    def __init__(self, message, code=None, fields=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class ValidationFailed(DomainError):
    """The input is well-formed but not acceptable (422)."""

    status = 422
    code = "invalid"


class NotFound(DomainError):
    """The record does not exist or is not the caller's (404)."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The operation collides with the current state, e.g. a time already taken (409)."""

    status = 409
    code = "conflict"


class Forbidden(DomainError):
    """The caller may not do this (403)."""

    status = 403
    code = "forbidden"


class DependencyDown(DomainError):
    """A server the operation needs (MongoDB, Redis, Stripe) is not answering (503)."""

    status = 503
    code = "unavailable"
