"""The per-address registration limit, counted through `models.ratelimits` over the app's Redis: what the contract
and the security review ask of it (tests/test_auth_api.py, tests/test_security_review.py) plus
the edges those do not reach."""

import redis

from devstack.servers import start_redis
from models import Patient
from tests.support.factories import form_csrf


def _register(client, n, password="long enough", addr="198.51.100.1"):
    return client.post("/api/auth/register", json={"email": f"limit{n}@example.com", "password": password,
                                                   "name": f"Limit {n}"},
                       environ_base={"REMOTE_ADDR": addr})


def test_the_limit_follows_the_setting_and_answers_in_the_contract_shape(make_app):
    app = make_app(REGISTRATIONS_PER_HOUR=2)
    client = app.test_client()
    assert [_register(client, n).status_code for n in range(2)] == [201, 201]
    refused = _register(client, 2)
    assert refused.status_code == 429
    assert 3500 <= int(refused.headers["Retry-After"]) <= 3600
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert Patient.objects(email="limit2@example.com").count() == 0
    # Another address has its own counter.
    assert _register(client, 3, addr="198.51.100.2").status_code == 201


def test_duplicate_email_probes_count_and_the_page_shares_the_counter(make_app):
    app = make_app(REGISTRATIONS_PER_HOUR=2)
    client = app.test_client()
    assert _register(client, 0).status_code == 201
    assert _register(client, 0).status_code == 409  # a probe for an existing email counts
    form = client.get("/portal/register").get_data(as_text=True)
    page = client.post("/portal/register", data={"csrf_token": form_csrf(form), "name": "Pat Page",
                                                 "email": "page@example.com", "password": "long enough pass"},
                       environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert page.status_code == 429 and "Too many attempts" in page.get_data(as_text=True)
    assert Patient.objects(email="page@example.com").count() == 0


def test_the_counters_live_under_the_apps_redis_prefix(make_app, app_config):
    app = make_app()
    assert _register(app.test_client(), 0).status_code == 201
    r = redis.Redis.from_url(app_config["REDIS_URL"], decode_responses=True)
    keys = list(r.scan_iter(match=app_config["REDIS_PREFIX"] + "limits*"))
    assert keys and all("register" in k for k in keys)


def test_registration_fails_closed_with_503_when_redis_is_down(make_app):
    own_redis = start_redis()
    try:
        app = make_app(REDIS_URL=own_redis.url)
        client = app.test_client()
        assert _register(client, 0).status_code == 201
        own_redis.stop()
        down = _register(client, 1)
        assert down.status_code == 503 and down.get_json()["error"]["code"] == "unavailable"
        assert down.headers.get("Retry-After")
        assert Patient.objects(email="limit1@example.com").count() == 0
        own_redis = start_redis(port=own_redis.port)
        assert _register(client, 1).status_code == 201
    finally:
        own_redis.stop()
