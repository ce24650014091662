"""The mapping from domain error to HTTP answer lives in web/errors.py; the domain knows no HTTP."""

import pytest

from web.errors import headers_of, status_of
from models.errors import (
    Conflict,
    DependencyDown,
    DomainError,
    Forbidden,
    InvalidCredentials,
    NotFound,
    Throttled,
    ValidationFailed,
)
from models.payments.gateway import PaymentDeclined, PaymentProviderError, PaymentUnavailable
from models.payments.refunds import RefundFailed


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


@pytest.mark.parametrize("error, status", [
    (DomainError("x"), 400), (ValidationFailed("x"), 422), (NotFound("x"), 404), (Conflict("x"), 409),
    (Forbidden("x"), 403), (DependencyDown("x"), 503), (Throttled(7), 429), (InvalidCredentials("x"), 401),
    (PaymentDeclined("x"), 402), (PaymentUnavailable("x"), 503), (PaymentProviderError("x"), 502),
    (RefundFailed("x"), 502),
])
def test_each_domain_error_answers_with_its_status(error, status):
    assert status_of(error) == status


def test_retry_after_becomes_the_header_and_nothing_else_does():
    assert headers_of(Throttled(0.4)) == {"Retry-After": "1"}
    assert headers_of(Throttled(90)) == {"Retry-After": "90"}
    assert headers_of(PaymentUnavailable("down", retry_after=5)) == {"Retry-After": "5"}
    assert headers_of(Conflict("taken")) == {}


def test_no_domain_error_carries_an_http_status_or_headers():
    for cls in [DomainError, *_all_subclasses(DomainError)]:
        if not cls.__module__.startswith("models"):
            continue
        assert "status" not in vars(cls), f"{cls.__name__} carries an HTTP status"
        assert not hasattr(cls("x") if cls is not Throttled else cls(1), "headers"), cls.__name__


def test_a_throttled_api_answer_keeps_the_contract_shape(app):
    with app.test_request_context("/api/x"):
        from web.errors import error_response

        exc = Throttled(12, "Too many attempts.")
        resp = error_response(status_of(exc), exc.message, exc.code, exc.fields, headers_of(exc))
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "12"
    assert resp.get_json() == {"error": {"code": "too_many_requests", "message": "Too many attempts."}}
