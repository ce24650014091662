"""The back office on a 390 px phone and its pages outside Flask-Admin, in real Chromium: the Outbox
list fits the screen, the staff sign-in and the 403 page wear the back office's frame; axe-clean."""

import re
from datetime import datetime, timedelta, timezone

from models import StaffUser
from models.messages.outbox import OutboxMessage
from models.seed import seed_demo
from tests.a11y import axe_violations
from tests.support.browser import staff_sign_in as sign_in

PHONE = {"width": 390, "height": 844}


def seed_outbox():
    now = datetime.now(timezone.utc)
    for n in range(3):
        OutboxMessage(kind="confirmed", subject=f"Appointment:phone{n}", to=f"a.rather.long.address.{n}@example-clinic.test",
                      status="failed", due_at=now - timedelta(minutes=n), attempts=5, sent_at=None,
                      last_error="451 4.7.1 Greylisted, please try again in a few minutes (mx.example.test)").save()


def test_the_outbox_list_fits_a_phone(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    seed_demo()
    seed_outbox()
    page.set_viewport_size(PHONE)
    sign_in(page, base, "reception@clinic.test")
    assert page.goto(f"{base}/admin/outbox/").status == 200
    page.wait_for_load_state("load")
    assert page.get_by_role("cell", name=re.compile(r"a\.rather\.long\.address\.0")).is_visible()
    assert page.locator("td.col-status").first.is_visible()
    for hidden in ("attempts", "due_at", "sent_at", "last_error"):
        assert not page.locator(f"td.col-{hidden}").first.is_visible(), hidden
    # No sideways scrolling: the table is no wider than the screen, and no column is squeezed to
    # a sliver (every shown cell at least 48 px wide).
    widths = page.evaluate("""() => {
        const t = document.querySelector('table.model-list');
        const wrap = t.closest('.table-responsive');
        const cells = [...t.querySelectorAll('tbody tr:first-child td')].filter(c => c.offsetParent !== null);
        return {table: t.scrollWidth, box: wrap.clientWidth, view: document.documentElement.clientWidth,
                page: document.documentElement.scrollWidth, cells: cells.map(c => c.getBoundingClientRect().width)};
    }""")
    assert widths["table"] <= widths["box"] and widths["page"] <= widths["view"], widths
    assert min(widths["cells"][2:]) >= 48, widths  # past the checkbox and the row buttons
    assert not axe_violations(page)
    # On a wide screen every column is back.
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.locator("td.col-last_error").first.is_visible()


def test_sign_in_and_the_403_page_in_the_back_office_frame(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    seed_demo()
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/admin/login")
    assert page.get_by_role("navigation", name="Back office").is_visible()
    assert page.locator("h1").count() == 1 and page.locator("main").count() == 1
    assert not axe_violations(page)
    sign_in(page, base, "provider@clinic.test")
    assert StaffUser.objects.get(email="provider@clinic.test").role == "provider"
    response = page.goto(f"{base}/admin/patients/")
    assert response.status == 403
    assert page.get_by_role("navigation", name="Back office").is_visible()
    assert page.get_by_text(re.compile(r"Signed in as")).is_visible()
    assert page.get_by_role("link", name=re.compile("back office's home page")).is_visible()
    assert not axe_violations(page)
