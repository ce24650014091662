"""Domain exceptions: the rules raise them, the doors turn them into HTTP answers.

Which HTTP status and headers each one answers with is the wiring's business (`web/errors.py`);
here an error carries only what the rule knows: a stable `code`, a message, the fields at fault and,
when trying again later may work, after how many seconds (`retry_after`).
"""


class DomainError(Exception):
    """A rule refused an operation; `code` is a stable slug, `message` is for people."""

    code = "bad_request"

    def __init__(self, message, code=None, fields=None, retry_after=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}
        self.retry_after = max(1, int(retry_after)) if retry_after is not None else None


class ValidationFailed(DomainError):
    """The input is well-formed but not acceptable."""

    code = "invalid"


class NotFound(DomainError):
    """The record does not exist or is not the caller's."""

    code = "not_found"


class Conflict(DomainError):
    """The operation collides with the current state, e.g. a time already taken."""

    code = "conflict"


class SeriesUnavailable(Conflict):
    """Some dates of a recurring series are not free (issue 28): `details` names them and nearer free times."""

    code = "series_unavailable"

    def __init__(self, message, unavailable=(), alternatives=None):
        super().__init__(message)
        self.details = {"unavailable": list(unavailable), "alternatives": alternatives or {}}


class Forbidden(DomainError):
    """The caller may not do this."""

    code = "forbidden"


class DependencyDown(DomainError):
    """A server the operation needs (MongoDB, Redis, Stripe) is not answering."""

    code = "unavailable"


class Throttled(DomainError):
    """Too many attempts; try again after `retry_after` seconds."""

    code = "too_many_requests"

    def __init__(self, retry_after, message=None):
        super().__init__(message or "Too many attempts. Please wait and try again.", retry_after=retry_after)


class InvalidCredentials(DomainError):
    """The email and password do not match an active account (one message for every case)."""

    code = "invalid_credentials"
