"""The cached free-times read in one Redis round trip (issue 30): what it must still get right.

A cached `/api/slots` takes this process's catalog on trust and checks its version in the same
MGET as the cached entries. These tests change the catalog the way another process (another
gunicorn worker or host) does: in MongoDB and by moving the version in Redis, never through this
process's signals, and check the next answer follows. No rate-limit check runs on a request no
limit covers (flask-limiter's per-request hook is gone with flask-limiter: `models.ratelimits`).
"""

from datetime import timedelta

from models import Service
from tests.support.factories import future_day, make_clinic, make_provider, make_service


def _slots(client, service, provider=None, days=1):
    query = {"service": str(service.id), "from": future_day().isoformat(), "days": days}
    if provider is not None:
        query["provider"] = str(provider.id)
    return client.get("/api/slots", query_string=query)


def _changed_elsewhere(app, **fields):
    """What another process's save does to us: the document changes, the catalog version moves."""
    Service._get_collection().update_many({}, {"$set": fields})
    app.extensions["caches"].bump("catalog")


def test_a_service_changed_by_another_process_is_read_anew(app, client):
    make_clinic()
    service = make_service("Check-up", duration=30, price=0, horizon=30)
    provider = make_provider([service])
    first = _slots(client, service, provider).get_json()
    assert _slots(client, service, provider).get_json() == first  # now cached, and still the same
    start = first[0]["start"]
    assert first[0]["end"] != start

    _changed_elsewhere(app, duration_minutes=60)
    again = _slots(client, service, provider).get_json()
    ends = {s["start"]: s["end"] for s in again}
    from datetime import datetime

    assert datetime.fromisoformat(ends[start]) - datetime.fromisoformat(start) == timedelta(minutes=60)
    assert len(again) < len(first)


def test_a_service_made_by_another_process_is_found_not_refused(app, client):
    make_clinic()
    known = make_service("Check-up", duration=30, price=0, horizon=30)
    provider = make_provider([known])
    assert _slots(client, known, provider).status_code == 200  # the process now holds a catalog

    from bson import ObjectId

    newer = Service(id=ObjectId(), name="Vaccination", duration_minutes=15, price=0, horizon_days=30, min_notice_minutes=0)
    Service._get_collection().insert_one(newer.to_mongo().to_dict())
    from models import Provider

    Provider._get_collection().update_one({"_id": provider.id}, {"$push": {"services": newer.id}})
    app.extensions["caches"].bump("catalog")
    resp = _slots(client, newer, provider)
    assert resp.status_code == 200 and resp.get_json(), resp.get_data(as_text=True)


def test_an_unknown_service_is_still_a_404_in_the_contract_shape(client):
    make_clinic()
    service = make_service("Check-up", duration=30, price=0, horizon=30)
    make_provider([service])
    assert _slots(client, service).status_code == 200
    resp = client.get("/api/slots", query_string={"service": "0" * 24})
    assert resp.status_code == 404
    assert set(resp.get_json()["error"]) == {"code", "message"}


def test_answers_keep_their_security_headers(client):
    make_clinic()
    service = make_service("Check-up", duration=30, price=0, horizon=30)
    make_provider([service])
    resp = _slots(client, service)
    assert resp.status_code == 200
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["X-Frame-Options"] == "DENY"


def test_no_rate_limit_check_runs_on_a_request_no_limit_covers(make_app, monkeypatch):
    """Limits are counted where their rule is (`models.ratelimits`), never in a per-request hook: a
    free-times read does not reach the limiter at all (flask-limiter's hook was a quarter of it)."""
    from models.ratelimits import RateLimiter

    app = make_app(fresh=True)
    make_clinic()
    service = make_service("Check-up", duration=30, price=0, horizon=30)
    make_provider([service])
    calls = []
    for name in ("hit", "spend", "check"):
        monkeypatch.setattr(RateLimiter, name, lambda self, *a, _n=name, **k: calls.append(_n))
    assert _slots(app.test_client(), service).status_code == 200
    assert calls == []



def test_a_cached_answer_drops_the_times_that_came_inside_the_notice(app, client):
    """The cached part is taken whole while no time has come inside the notice; later, it is cut."""
    import time_machine

    from tests.support.factories import at

    make_clinic()
    service = make_service("Check-up", duration=30, price=0, notice=60, horizon=30)
    provider = make_provider([service])
    day = future_day()
    query = {"service": str(service.id), "provider": str(provider.id), "from": day.isoformat(), "days": 1}
    with time_machine.travel(at(day, 7), tick=False):
        early = client.get("/api/slots", query_string=query).get_json()
        assert client.get("/api/slots", query_string=query).get_json() == early  # from the cache, whole
    assert early[0]["start"].startswith(f"{day.isoformat()}T09:00")
    with time_machine.travel(at(day, 10, 20), tick=False):
        later = client.get("/api/slots", query_string=query).get_json()
    from datetime import datetime

    # Nothing the notice now forbids (before 11:20), nothing else lost.
    assert later == [s for s in early if datetime.fromisoformat(s["start"]) >= at(day, 11, 20)]
    assert later and later[0]["start"].startswith(f"{day.isoformat()}T11:30")


def test_a_cached_read_survives_redis_dropping_its_connections(app, client):
    """Redis restarted (its connections gone): the next read answers as before, not a 503."""
    make_clinic()
    service = make_service("Check-up", duration=30, price=0, horizon=30)
    provider = make_provider([service])
    first = _slots(client, service, provider)
    assert _slots(client, service, provider).get_json() == first.get_json()
    app.extensions["redis"].client.client_kill_filter(_type="normal", skipme=False)
    again = _slots(client, service, provider)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json() == first.get_json()
