"""axe-core on the back-office pages each role uses: no serious or critical violation.

Also checks the shared layout every page inherits: lang, a main landmark, one h1, who is signed in,
and a sign-out that ends the session."""

import re

import pytest

from models import Patient, Schedule, TimeOff
from models.seed import seed_demo
from tests.a11y import axe_violations
from tests.support.browser import staff_sign_in as sign_in
from tests.support.factories import at, demo_paid_visit

ROLE_PAGES = {
    "admin": ["/admin/", "/admin/day/", "/admin/appointments/", "/admin/appointments/details/?id={appointment}",
              "/admin/patients/", "/admin/patients/details/?id={patient}", "/admin/patients/edit/?id={patient}",
              "/admin/providers/", "/admin/providers/new/", "/admin/providers/edit/?id={provider}",
              "/admin/services/", "/admin/services/new/", "/admin/services/edit/?id={service}",
              "/admin/schedules/", "/admin/schedules/edit/?id={schedule}", "/admin/time_off/",
              "/admin/time_off/new/", "/admin/time_off/edit/?id={time_off}",
              "/admin/payments/", "/admin/payments/details/?id={payment}", "/admin/stripe_events/",
              "/admin/staff/", "/admin/staff/new/", "/admin/clinic/", "/admin/audit/"],
    "reception": ["/admin/", "/admin/day/", "/admin/appointments/", "/admin/patients/", "/admin/patients/new/",
                  "/admin/patients/details/?id={patient}", "/admin/payments/", "/admin/time_off/new/",
                  "/admin/day/no-show?appointment={appointment}"],
    "provider": ["/admin/", "/admin/day/", "/admin/appointments/", "/admin/schedules/",
                 "/admin/schedules/edit/?id={schedule}", "/admin/time_off/", "/admin/time_off/new/"],
}


def seed_for_pages():
    """The demo clinic with an appointment, a payment and time off, and the ids pages need."""
    visit = demo_paid_visit()
    amira = visit["amira"]
    off = TimeOff(provider=amira, start=at(visit["day"], 14), end=at(visit["day"], 16), reason="Training").save()
    return {"appointment": visit["appointment"].id, "patient": visit["patient"].id, "provider": amira.id,
            "service": visit["consult"].id, "schedule": Schedule.objects.get(provider=amira.id).id,
            "time_off": off.id, "payment": visit["payment"].id}


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "reception", "provider"])
def test_back_office_pages_have_no_serious_axe_violations(live_server, page, role):
    base, _app = live_server(COOKIE_SECURE=False)
    ids = seed_for_pages()
    sign_in(page, base, f"{role}@clinic.test")
    problems = {}
    for path in ROLE_PAGES[role]:
        url = base + path.format(**ids)
        response = page.goto(url)
        assert response.status == 200, (path, response.status)
        page.wait_for_load_state("load")
        assert page.locator("html").get_attribute("lang") == "en-GB"  # the clinic's locale (en_GB by default)
        assert page.locator("main").count() == 1, path
        assert page.locator("h1").count() == 1, path
        assert page.get_by_text(re.compile(r"Signed in as")).is_visible(), path
        found = axe_violations(page)
        if found:
            problems[path] = found
    if role == "reception":
        # The appointments list filtered to one patient, reached from the patient's page.
        page.goto(base + f"/admin/patients/details/?id={ids['patient']}")
        page.get_by_role("link", name="Open these appointments in the appointments list").click()
        page.wait_for_load_state("load")
        assert page.get_by_text("Pat Demo").first.is_visible()
        found = axe_violations(page)
        if found:
            problems["appointments filtered by patient"] = found
        # "Create patient" for someone already on record: the form comes back with the match linked.
        page.goto(base + "/admin/patients/new/")
        page.get_by_label("Name").fill("Pat Demo")
        page.get_by_label("Email").fill(Patient.objects.get(id=ids["patient"]).email)
        page.get_by_role("button", name="Save", exact=True).last.click()
        page.wait_for_load_state("load")
        assert page.get_by_role("button", name="Create anyway").is_visible()
        found = axe_violations(page)
        if found:
            problems["create patient: likely duplicate"] = found
    assert not problems, problems


def test_sign_out_ends_the_session(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    seed_demo()
    sign_in(page, base, "reception@clinic.test")
    page.goto(f"{base}/admin/appointments/")
    assert page.get_by_text("Rita Reception").is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/login")))
    page.goto(f"{base}/admin/appointments/")
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/login")))


def test_the_axe_check_itself_finds_a_known_problem(page):
    """The helper really runs axe-core: a page with an unnamed image and button fails it."""
    page.set_content('<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
                     '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><button></button></main></body></html>')
    found = " ".join(axe_violations(page))
    assert "image-alt" in found and "button-name" in found


def test_list_actions_run_under_a_csp_without_inline_scripts(live_server, page):
    """The "With selected" menu works with the back office's CSP ('unsafe-inline' scripts refused)."""
    from models import Appointment

    base, _app = live_server(COOKIE_SECURE=False)
    ids = seed_for_pages()
    sign_in(page, base, "reception@clinic.test")
    response = page.goto(f"{base}/admin/appointments/")
    script_src = [part for part in response.headers["content-security-policy"].split(";")
                  if part.strip().startswith("script-src")][0]
    assert "'unsafe-inline'" not in script_src and "'nonce-" in script_src
    page.wait_for_load_state("load")
    page.get_by_role("checkbox", name="Select record 1").check()
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="With selected").click()
    page.get_by_role("button", name="Cancel (refund when paid)").click()
    page.get_by_text("1 appointment(s): cancel done.").wait_for()
    assert Appointment.objects.get(id=ids["appointment"]).status == "cancelled"
