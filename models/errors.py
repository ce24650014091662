"""Domain exceptions: the rules raise them, the doors turn them into HTTP answers."""


class DomainError(Exception):
    """A rule refused an operation; `code` is a stable slug, `message` is for people."""

    status = 400
    code = "bad_request"

    def __init__(self, message, code=None, fields=None, headers=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}
        self.headers = headers or {}


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


class Throttled(DomainError):
    """Too many attempts; try again after `retry_after` seconds (429)."""

    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after, message=None):
        self.retry_after = max(1, int(retry_after))
        super().__init__(message or "Too many attempts. Please wait and try again.",
                         headers={"Retry-After": str(self.retry_after)})


class InvalidCredentials(DomainError):
    """The email and password do not match an active account (401, one message for every case)."""

    status = 401
    code = "invalid_credentials"
