"""Issue 28 in real Chromium: the clinician reads a patient's intake answers in the day grid's panel
and on the appointment page (each read audited), and a parent on a 390 px phone adds a child,
answers the questions on the review step and books for the child. Pages are checked with axe-core."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from models import Appointment, AuditEvent, StaffUser
from models.booking.create import book
from models.catalog.documents import Question
from models.clock import local
from tests.support.browser import portal_sign_in
from tests.support.factories import PASSWORD, at, future_day
from tests.test_browser_frontdesk import assert_accessible


@pytest.fixture
def clinic(live_server, clinic_world):
    base, app = live_server(COOKIE_SECURE=False)
    world = clinic_world(services={"physio": dict(name="Physiotherapy", duration=30, price=0, notice=0)},
                         providers={"jo": dict(name="Jo Park", hours=("00:00", "23:55"), lunch=None)},
                         staff=("provider",), provider_staff="jo", patients=["pat@example.com"])
    service = world["physio"]
    service.questions = [Question(label="Where does it hurt?", kind="long_text", required=True,
                                  help_text="For example: lower back, for three months.", position=1),
                         Question(label="Seen a physio before?", kind="yes_no", position=2)]
    service.save()
    return base, app, world


def test_the_clinician_reads_the_answers_in_the_day_grid_and_on_the_appointment(clinic, page):
    base, app, world = clinic
    service = world["physio"]
    hurt, seen = (q.qid for q in service.questions)
    start = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    with app.app_context():
        appt = book(world.patient, str(service.id), str(world["jo"].id), start, datetime.now(timezone.utc),
                    answers={hurt: "<script>alert(1)</script> left knee", seen: "no"})
    page.goto(f"{base}/admin/")
    page.get_by_label("Email").fill("provider@clinic.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")
    # The visit's own day in the clinic's zone: an hour from now is tomorrow when run late in the evening.
    day = local(appt.start, world.clinic.timezone).date().isoformat()
    page.goto(f"{base}/admin/day/?day={day}")
    panel = page.locator(f"#appt-{appt.id}")
    panel.locator("summary").click()
    answers = panel.locator(".fd-answers")
    assert "Where does it hurt?" in answers.inner_text()
    assert "<script>alert(1)</script> left knee" in answers.inner_text()  # shown as text, never run
    assert "Seen a physio before?" in answers.inner_text() and "No" in answers.inner_text()
    assert_accessible(page, "day grid with answers")
    page.goto(f"{base}/admin/appointments/details/?id={appt.id}")
    body = page.locator("body").inner_text()
    assert "Intake answers" in body and "left knee" in body
    assert_accessible(page, "appointment page")
    staff = StaffUser.objects.get(email="provider@clinic.test")
    reads = AuditEvent.objects(action="appointment.answers_read", record=f"Appointment:{appt.id}",
                               actor=f"staff:{staff.id}")
    assert reads.count() >= 2


def test_a_parent_books_for_a_child_on_a_phone(clinic, page):
    base, app, world = clinic
    page.set_viewport_size({"width": 390, "height": 844})
    portal_sign_in(page, base)
    page.goto(f"{base}/portal/family")
    page.get_by_label("Their name").fill("Kim Example")
    page.get_by_label("Date of birth").fill("2018-04-02")
    page.get_by_role("button", name="Add this person").click()
    expect(page.locator("body")).to_contain_text("Kim Example is added")
    assert_accessible(page, "family page")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    day = future_day(2)
    start = at(day, 10)
    page.goto(f"{base}/portal/book?service={world['physio'].id}&provider=any&day={day}&start="
              + start.isoformat().replace("+", "%2B") + "#review")
    page.get_by_label("Kim Example").check()
    page.get_by_label(re.compile("Where does it hurt?")).fill("Sprained wrist at football")
    page.get_by_label("Yes").check()
    assert_accessible(page, "review step with questions")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("button", name="Book this time").click()
    page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
    body = page.locator("body").inner_text()
    assert "Kim Example" in body and "Sprained wrist at football" in body
    assert_accessible(page, "the child's appointment")
    appt = Appointment.objects.get()
    assert appt.patient.name == "Kim Example" and appt.patient.guardian.email == "pat@example.com"
    assert [(a.label, a.value) for a in appt.answers] == [("Where does it hurt?", "Sprained wrist at football"),
                                                         ("Seen a physio before?", "yes")]
    page.goto(f"{base}/portal/")
    assert "Kim Example: Physiotherapy" in page.locator("#upcoming").inner_text()


def test_the_admin_adds_a_question_with_the_form_builder(live_server, clinic_world, page):
    base, _app = live_server(COOKIE_SECURE=False)
    world = clinic_world(services={"physio": dict(name="Physiotherapy", duration=30, price=0)}, staff=("admin",))
    page.goto(f"{base}/admin/")
    page.get_by_label("Email").fill("admin@clinic.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")
    page.goto(f"{base}/admin/services/edit/?id={world['physio'].id}")
    page.get_by_role("button", name="Add a question").click()
    page.locator('[name="questions-0-label"]').fill("Any allergies?")
    page.locator('[name="questions-0-kind"]').select_option("yes_no")
    page.locator('[name="questions-0-required"]').check()
    assert_accessible(page, "service form with a question")
    page.locator('input[type="submit"][value="Save"]').first.click()
    page.wait_for_load_state("load")
    from models import Service
    saved = Service.objects.get(id=world["physio"].id)
    assert [(q.label, q.kind, q.required) for q in saved.questions] == [("Any allergies?", "yes_no", True)]


def test_the_admin_adds_and_removes_questions_with_javascript_off(live_server, clinic_world, browser):
    base, _app = live_server(COOKIE_SECURE=False)
    world = clinic_world(services={"physio": dict(name="Physiotherapy", duration=30, price=0)}, staff=("admin",))
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto(f"{base}/admin/login")
        page.get_by_label("Email").fill("admin@clinic.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/admin/")
        page.goto(f"{base}/admin/services/edit/?id={world['physio'].id}")
        page.locator('[name="name"]').fill("Physiotherapy (new patients)")
        assert page.locator('[name="questions-0-label"]').count() == 0
        # "Add a question" posts the form: the page comes back as typed, with an empty question row.
        page.get_by_role("button", name="Add a question").click()
        page.wait_for_load_state("load")
        assert page.locator('[name="name"]').input_value() == "Physiotherapy (new patients)"
        page.locator('[name="questions-0-label"]').fill("Any allergies?")
        page.locator('[name="questions-0-kind"]').select_option("yes_no")
        page.get_by_role("button", name="Add a question").click()
        page.wait_for_load_state("load")
        assert page.locator('[name="questions-0-label"]').input_value() == "Any allergies?"
        page.locator('[name="questions-1-label"]').fill("Which side?")
        from models import Service
        assert not Service.objects.get(id=world["physio"].id).questions  # nothing saved while building
        # Remove the first again (its box, shown without JavaScript), then save.
        page.locator('#del-questions-0').check()
        page.locator('input[type="submit"][value="Save"]').first.click()
        page.wait_for_load_state("load")
        saved = Service.objects.get(id=world["physio"].id)
        assert saved.name == "Physiotherapy (new patients)"
        assert [(q.label, q.kind) for q in saved.questions] == [("Which side?", "text")]
    finally:
        context.close()


@pytest.mark.parametrize("script", [False, True], ids=["no-javascript", "javascript"])
def test_enter_in_a_field_of_the_service_form_saves_it_and_adds_no_question(live_server, clinic_world, browser, script):
    base, _app = live_server(COOKIE_SECURE=False)
    world = clinic_world(services={"physio": dict(name="Physiotherapy", duration=30, price=0)}, staff=("admin",))
    context = browser.new_context(java_script_enabled=script, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto(f"{base}/admin/login")
        page.get_by_label("Email").fill("admin@clinic.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/admin/")
        page.goto(f"{base}/admin/services/edit/?id={world['physio'].id}")
        page.locator('[name="name"]').fill("Physiotherapy (follow-up)")
        with page.expect_navigation():
            page.locator('[name="name"]').press("Enter")
        from models import Service
        saved = Service.objects.get(id=world["physio"].id)
        assert saved.name == "Physiotherapy (follow-up)" and not saved.questions
        # Saved means back on the list with its message, not the form again with an empty question row.
        assert "/admin/services/edit" not in page.url
        assert page.locator('[name="questions-0-label"]').count() == 0
        assert "saved" in page.locator("body").inner_text().lower()
        if script:
            assert_accessible(page, "services list after Enter")
    finally:
        context.close()


def test_the_desk_sees_the_chosen_services_questions_without_a_reload_and_books_first_time(
        live_server, clinic_world, page):
    from tests.support.factories import future_day

    base, _app = live_server(COOKIE_SECURE=False)
    w = clinic_world(services={"call": dict(name="Follow-up call", duration=15, price=0),
                               "physio": dict(name="Physiotherapy", duration=30, price=0)},
                     providers={"jo": dict(name="Jo Park")}, staff=("reception",), patients=["pat@example.com"])
    physio = w["physio"]
    physio.questions = [Question(label="Where does it hurt?", kind="text", required=True, position=1)]
    physio.save()
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill("reception@clinic.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")
    day = future_day()
    # A free time clicked in Jo's column: Follow-up call is preselected, with no questions to ask.
    page.goto(f"{base}/admin/day/new?day={day}&time=10:00&provider={w['jo'].id}&patient={w.patient.id}")
    question = page.get_by_label(re.compile("Where does it hurt?"))
    assert not question.is_visible()
    page.get_by_label("Service").select_option(label="Physiotherapy (30 min, free)")
    assert question.is_visible()  # no reload: the question follows the service
    assert page.get_by_role("group", name="Questions for the patient").is_visible()
    question.fill("Left shoulder")
    assert_accessible(page, "desk booking form with questions")
    page.get_by_role("button", name="Book", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/day/\?day="))
    appt = Appointment.objects.get()
    assert appt.service.name == "Physiotherapy"
    assert [(a.label, a.value) for a in appt.answers] == [("Where does it hurt?", "Left shoulder")]
