"""Schemathesis over /api/openapi.json: no 5xx and answers that match the document, signed in."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.factories import api_login, make_clinic, make_patient, make_provider, make_service

@pytest.fixture
def fuzz_app(make_app):
    app = make_app()
    make_clinic()
    service = make_service("Consultation", duration=30, price=0)
    make_provider([service], name="Dr Fuzz")
    make_patient()
    return app


@pytest.fixture
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)


@pytest.fixture
def signed_in_cookies(fuzz_app):
    client = fuzz_app.test_client()
    assert api_login(client).status_code == 200
    return {name: client.get_cookie(name).value
            for name in ("__Host-access_token", "__Host-refresh_token", "csrf_access_token")}


def test_api_never_fails_and_matches_its_document(api_schema, signed_in_cookies):
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        # Skip logout and password change so the session survives the run.
        if operation.path in ("/api/auth/logout", "/api/auth/password"):
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def run(case):
            response = case.call(cookies=signed_in_cookies,
                                 headers={"X-CSRF-TOKEN": signed_in_cookies["csrf_access_token"]})
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            case.validate_response(response, checks=(response_schema_conformance, status_code_conformance,
                                                     content_type_conformance))

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/appointments"])
def test_json_nested_100000_deep_is_malformed_input_not_a_crash(fuzz_app, signed_in_cookies, path):
    client = fuzz_app.test_client()
    for name, value in signed_in_cookies.items():
        client.set_cookie(name, value)
    body = "[" * 100_000 + "]" * 100_000
    resp = client.post(path, data=body, content_type="application/json",
                       headers={"X-CSRF-TOKEN": signed_in_cookies["csrf_access_token"]})
    assert resp.status_code == 400, resp.status_code
    assert resp.get_json()["error"]["code"] == "malformed_json"


@given(days=st.text(min_size=1, max_size=4))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_any_days_parameter_is_answered_without_a_crash(fuzz_app, days):
    from models import Service

    service = Service.objects.first()
    resp = fuzz_app.test_client().get("/api/slots", query_string={"service": str(service.id), "days": days})
    ok = days.isascii() and days.isdigit() and 1 <= int(days) <= 31
    assert resp.status_code == (200 if ok else 422), (days, resp.status_code)


def test_unicode_digits_for_days_answer_422(fuzz_app):
    from models import Service

    service = Service.objects.first()
    for days in ("³", "٣", "７"):
        resp = fuzz_app.test_client().get(f"/api/slots?service={service.id}&days={days}")
        assert resp.status_code == 422, days
        assert "days" in resp.get_json()["error"]["message"]
