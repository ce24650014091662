"""Issue 26: the portal's waitlist form lists only the clinicians who offer the chosen service, and
a clinician who does not offer it is refused on joining (nothing written)."""

import pytest

from models.booking.waitlist import WaitlistEntry
from tests.support.factories import api_login, form_csrf, future_day


@pytest.fixture
def setup(app, clinic_world):
    return clinic_world(
        services={"consult": dict(name="Consultation", duration=30, price=6000),
                  "physio": dict(name="Physiotherapy", duration=30, price=5000)},
        providers={"one": dict(name="Dr One", services=["consult"]), "two": dict(name="Dr Two", services=["physio"])},
        patients=["pat@example.com"])


def provider_options(html):
    select = html.split('id="provider"')[1].split("</select>")[0]
    return select


def test_the_clinician_list_follows_the_chosen_service(app, setup):
    client = app.test_client()
    api_login(client)
    page = client.get(f"/portal/waitlist?service={setup['physio'].id}").get_data(as_text=True)
    options = provider_options(page)
    assert "Dr Two" in options and "Dr One" not in options and "Any clinician" in options
    page = client.get(f"/portal/waitlist?service={setup['consult'].id}").get_data(as_text=True)
    assert "Dr One" in provider_options(page) and "Dr Two" not in provider_options(page)


def test_joining_with_a_clinician_who_does_not_offer_the_service_is_refused(app, setup):
    client = app.test_client()
    api_login(client)
    page = client.get("/portal/waitlist").get_data(as_text=True)
    answer = client.post("/portal/waitlist", data={
        "csrf_token": form_csrf(page), "jwt_csrf": client.get_cookie("csrf_access_token").value,
        "service": str(setup["physio"].id), "provider": str(setup["one"].id),
        "date_from": future_day(3).isoformat(), "date_to": future_day(4).isoformat(), "wait_anyway": "1"})
    assert answer.status_code in (404, 422) and WaitlistEntry.objects.count() == 0
