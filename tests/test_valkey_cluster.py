"""The app on a Valkey Cluster (issue 30): three primaries of the embedded valkey-server in cluster
mode, `REDIS_URL=redis+cluster://…`. Booking (its throttle and one-at-a-time lock), the free-times
cache, the sign-in throttle's transactions, the rate limits (`models.ratelimits`: the booking and registration limits) and signing out
(the token blocklist) all work there: every multi-key command is on keys of one hash slot."""

import uuid

import pytest
import redis

from tests.support.factories import api_login, csrf_header, future_day, make_clinic, make_patient, make_provider, \
    make_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from devstack.servers import start_redis_cluster

    started = start_redis_cluster(str(tmp_path_factory.mktemp("cluster")))
    yield started
    started.stop()


@pytest.fixture
def cluster_app(make_app, cluster):
    # A prefix of its own: the cluster outlives the test, and the fixtures clean only the suite's Redis.
    return make_app(fresh=True, REDIS_URL=cluster.url, REDIS_PREFIX=f"t{uuid.uuid4().hex[:8]}:")


def test_the_app_talks_to_a_cluster_with_the_cluster_client(cluster_app, cluster):
    assert isinstance(cluster_app.extensions["redis"].client, redis.RedisCluster)
    client = cluster_app.test_client()
    assert client.get("/readyz").status_code == 200
    # REDIS_CLUSTER=1 with one node's plain address finds the same cluster.
    first = cluster.url.split("://", 1)[1].split(",", 1)[0]
    from web.extensions import cluster_client

    assert len(cluster_client(f"redis://{first}/0").get_primaries()) == 3


def test_booking_free_times_and_the_booking_lock_work_on_the_cluster(cluster_app):
    make_clinic()
    service = make_service("Check-up", duration=30, price=0, horizon=30)
    provider = make_provider([service])
    make_patient()
    client = cluster_app.test_client()
    query = {"service": str(service.id), "provider": str(provider.id), "from": future_day().isoformat(), "days": 1}
    free = client.get("/api/slots", query_string=query).get_json()
    assert free and client.get("/api/slots", query_string=query).get_json() == free  # cached, same answer
    api_login(client)
    booked = client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": free[0]["start"]})
    assert booked.status_code == 201, booked.get_data(as_text=True)
    # The cache moved with the booking: the taken time is no longer offered.
    assert free[0]["start"] not in {s["start"] for s in client.get("/api/slots", query_string=query).get_json()}
    again = client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": free[0]["start"]})
    assert again.status_code == 409 and again.get_json()["error"]["code"]
    # The patient's booking lock was taken and given back on the cluster.
    store = cluster_app.extensions["redis"]
    from models import Patient

    patient = Patient.objects.get(email="pat@example.com")
    assert store.client.exists(store.key("book-lock", patient.id)) == 0
    from models import ratelimits
    from portal.auth import BOOKINGS_PER_ACCOUNT

    with cluster_app.app_context():  # both attempts counted, through the one seam, on the cluster
        assert ratelimits.used(BOOKINGS_PER_ACCOUNT, patient.id) == 2


def test_sign_in_throttle_and_sign_out_work_on_the_cluster(cluster_app):
    make_clinic()
    make_patient(email="locked@example.com")
    client = cluster_app.test_client()
    codes = [client.post("/api/auth/login", json={"email": "locked@example.com", "password": "wrong guess 1"}
                         ).status_code for _ in range(8)]
    assert codes[0] == 401 and 429 in codes
    refused = client.post("/api/auth/login", json={"email": "locked@example.com", "password": "wrong guess 1"})
    assert refused.status_code == 429 and refused.headers.get("Retry-After")

    make_patient(email="out@example.com")
    api_login(client, email="out@example.com")
    assert client.get("/api/me").status_code == 200
    assert client.post("/api/auth/logout", headers=csrf_header(client)).status_code == 200
    assert client.get("/api/me").status_code == 401


def test_the_registration_limit_counts_on_the_cluster(cluster_app):
    cluster_app.config["REGISTRATIONS_PER_HOUR"] = 2
    make_clinic()
    client = cluster_app.test_client()
    codes = [client.post("/api/auth/register", json={
        "email": f"new{i}@example.com", "password": "a long enough password 9", "name": f"New {i}"}).status_code
        for i in range(3)]
    assert codes == [201, 201, 429]
