"""In real Chromium, a clinic sets itself up through the back office's own forms — a service priced
"55.00", a provider, weekly hours with a lunch break, a day off — and the portal's booking page
then offers the new provider's times without the break and without the day off."""

import re
from datetime import timedelta

from models import Provider, Schedule, Service, TimeOff
from tests.support.factories import PASSWORD, future_day, make_clinic, make_patient, make_staff
from tests.helpers import save_screenshot

def shot(page, name):
    """Save a full-page screenshot when SCREENSHOTS names a folder."""
    save_screenshot(page, name)


def working_days():
    """A weekday (Mon–Thu) a few days ahead, and the next day, which will be the day off."""
    day = future_day(3)
    while day.weekday() > 3:
        day += timedelta(days=1)
    return day, day + timedelta(days=1)


def offered_times(page, base, service, provider, day):
    """The HH:MM times the one-screen booking page offers for one provider on one local day."""
    page.goto(f"{base}/portal/book?service={service.id}&provider={provider.id}&day={day.isoformat()}")
    heading = page.locator("#times-heading").inner_text()
    if not heading.startswith("Times on"):
        return []  # the day has no free time (the page asks for a marked day)
    assert re.match(rf"Times on \w+day {day.day} {day:%B}$", heading), heading
    return [re.match(r"\d\d:\d\d", text.strip()).group(0) for text in page.locator("a.time").all_inner_texts()]


def test_a_clinic_sets_itself_up_in_the_back_office(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    make_clinic()
    make_staff("admin")
    make_patient()
    workday, day_off = working_days()

    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill("admin@clinic.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")
    assert page.get_by_text("Signed in as").is_visible()

    # A service priced as money.
    page.goto(f"{base}/admin/services/new/")
    page.get_by_label("Name").fill("Sports massage")
    page.get_by_label("Duration (minutes)").fill("60")
    page.locator("#price").fill("55.00")
    page.get_by_label("Minimum notice (minutes)").fill("60")
    shot(page, "admin-service-form.png")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/services/") + r"(\?.*)?$"))
    assert page.get_by_text("£55.00").is_visible()
    service = Service.objects.get(name="Sports massage")
    assert service.price == 5500

    # A provider who offers it.
    page.goto(f"{base}/admin/providers/new/")
    page.get_by_label("Name").fill("Dr Nova Reed")
    page.get_by_label("Email").fill("nova.reed@clinic.test")
    page.locator("select#services").select_option(label="Sports massage", force=True)
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/providers/") + r"(\?.*)?$"))
    provider = Provider.objects.get(name="Dr Nova Reed")
    assert [s.id for s in provider.services] == [service.id]

    # Weekly hours, Monday to Friday 09:00–17:00, each with a lunch break 12:00–13:00: from the
    # providers list, whose new row offers to set them.
    page.get_by_role("link", name="Set hours of Dr Nova Reed").click()
    assert page.get_by_label("Provider").input_value() == str(provider.id)
    for index, name in enumerate(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")):
        day = page.locator(f"#day-{index}")
        day.get_by_label(f"Open on {name}").check()
        day.get_by_label("Opens at").fill("09:00")
        day.get_by_label("Closes at").fill("17:00")
        page.get_by_role("button", name=f"Add a break on {name}").click()
        day = page.locator(f"#day-{index}")
        day.get_by_label("Break from").fill("12:00")
        day.get_by_label("Break until").fill("13:00")
    assert page.get_by_text("Europe/London").first.is_visible()
    shot(page, "admin-schedule-editor.png")
    page.get_by_role("button", name="Save hours").last.click()
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/schedules/") + r"(\?.*)?$"))
    assert page.get_by_text("Hours saved for Dr Nova Reed").is_visible()
    schedule = Schedule.objects.get(provider=provider.id)
    assert [(d.weekday, [(b.start, b.end) for b in d.breaks]) for d in schedule.days] == [
        (d, [("12:00", "13:00")]) for d in range(5)]

    # A day off, entered with the date-time pickers in the clinic's zone.
    page.goto(f"{base}/admin/time_off/new/")
    page.locator("select#provider").select_option(label="Dr Nova Reed", force=True)
    page.get_by_label("Starts").fill(f"{day_off.isoformat()}T00:00")
    page.get_by_label("Ends").fill(f"{(day_off + timedelta(days=1)).isoformat()}T00:00")
    page.get_by_label("Reason").fill("Day off")
    shot(page, "admin-time-off-form.png")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/time_off/") + r"(\?.*)?$"))
    assert TimeOff.objects(provider=provider.id).count() == 1
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/login")))

    # The patient's booking page offers the new provider's times: not in the break, not on the day off.
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill("pat@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/")
    offered = offered_times(page, base, service, provider, workday)
    assert offered[0] == "09:00" and "11:00" in offered and "13:00" in offered and offered[-1] == "16:00", offered
    assert not [t for t in offered if "11:00" < t < "13:00"], offered  # a 60-minute visit never overlaps lunch
    assert offered_times(page, base, service, provider, day_off) == []
