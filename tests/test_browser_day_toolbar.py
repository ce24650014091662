"""In real Chromium: the day view's toolbar (day navigation, date picker, Day/Week, day sheet, show
cancelled, Book, Walk-in now) fits on one row on a 1280 and a 1440 px desktop, and a 390 px phone
never scrolls sideways; axe-clean."""

from datetime import datetime, timedelta, timezone

import pytest

from models import Appointment, Patient, Provider, Service
from models.seed import seed_demo
from tests.support.factories import LONDON
from tests.a11y import axe_violations
from tests.support.browser import staff_sign_in as sign_in

# Each item of the toolbar as laid out: its top and bottom, and the page's widths.
MEASURE = """() => {
    const bar = document.querySelector('nav.fd-toolbar');
    const items = [...bar.children].filter(el => el.offsetParent !== null && el.getAttribute('aria-hidden') !== 'true');
    return {items: items.map(el => { const r = el.getBoundingClientRect();
                                     return {text: el.innerText.trim().replace(/\\s+/g, ' '), top: r.top, bottom: r.bottom,
                                             right: r.right}; }),
            bar: bar.getBoundingClientRect().right,
            view: document.documentElement.clientWidth, page: document.documentElement.scrollWidth};
}"""


def cancelled_today(count=12):
    """`count` cancelled appointments today, so the bar's longest button reads "Show cancelled and expired (12)"."""
    patient = Patient.objects.get(email="patient@clinic.test")
    provider = Provider.objects.get(email="amira.shah@clinic.test")
    service = Service.objects.get(name="Follow-up call")
    noon = datetime.now(timezone.utc).astimezone(LONDON).replace(hour=12, minute=0, second=0, microsecond=0)
    for n in range(count):
        start = noon + timedelta(minutes=15 * (n % 4))
        Appointment(patient=patient, provider=provider, service=service, start=start, end=start + timedelta(minutes=15),
                    block_start=start, block_end=start + timedelta(minutes=15), status="cancelled", amount=0,
                    currency="gbp", cancel_reason="cancelled by patient").save()


@pytest.mark.parametrize("width", [1280, 1440])
def test_the_day_toolbar_is_one_row_on_a_desktop(live_server, page, width):
    base, _app = live_server(COOKIE_SECURE=False)
    seed_demo()
    cancelled_today()
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, base, "reception@clinic.test")
    assert page.goto(f"{base}/admin/day/").status == 200
    page.wait_for_load_state("load")
    page.get_by_role("link", name="Walk-in now").wait_for()  # today, for the front desk: the longest bar
    assert page.get_by_role("link", name="Show cancelled and expired (12)").is_visible()
    laid = page.evaluate(MEASURE)
    texts = [item["text"] for item in laid["items"]]
    assert texts[0] == "Previous day" and texts[-1] == "Walk-in now", texts
    first = laid["items"][0]
    # One row: every item's box overlaps the first one's vertically (a wrapped item starts below it).
    wrapped = [item["text"] for item in laid["items"] if item["top"] >= first["bottom"] or item["bottom"] <= first["top"]]
    assert not wrapped, (width, wrapped, laid)
    assert max(item["right"] for item in laid["items"]) <= laid["bar"] + 0.5, laid
    assert laid["page"] <= laid["view"], laid
    assert not axe_violations(page)


def test_the_day_toolbar_never_scrolls_sideways_on_a_phone(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    seed_demo()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, base, "reception@clinic.test")
    assert page.goto(f"{base}/admin/day/").status == 200
    page.wait_for_load_state("load")
    laid = page.evaluate(MEASURE)
    assert laid["page"] <= laid["view"], laid
    assert all(item["right"] <= laid["view"] + 0.5 for item in laid["items"]), laid
    assert page.get_by_role("link", name="Walk-in now").is_visible()
    assert not axe_violations(page)


def test_a_day_with_nothing_to_click_still_scrolls_by_keyboard_on_a_phone(live_server, page):
    """A closed day (25 December) or a late evening has no free time and no appointment to focus; the
    grid still scrolls sideways on a phone, so the grid itself takes keyboard focus (axe's
    scrollable-region-focusable, which once failed only when CI ran in the evening)."""
    base, _app = live_server(COOKIE_SECURE=False)
    seed_demo()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, base, "reception@clinic.test")
    christmas = datetime.now(timezone.utc).astimezone(LONDON).date().replace(month=12, day=25)
    assert page.goto(f"{base}/admin/day/?day={christmas.isoformat()}").status == 200
    grid = page.locator("#day-grid")
    assert grid.locator("a, button").count() == 0  # nothing inside to tab to
    assert page.evaluate("(g => g.scrollWidth > g.clientWidth)", grid.element_handle())
    grid.focus()
    assert page.evaluate("document.activeElement.id") == "day-grid"
    assert not axe_violations(page)
    assert page.get_by_role("region", name="Appointments by clinician").count() == 1
