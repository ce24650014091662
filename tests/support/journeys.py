"""A newcomer's paid journey in Chromium, from the front door: register, book a paid time, pay.

Written once, walked by the newcomer test (`tests/test_newcomer.py`, on a fresh clone's run
command) and by the acceptance check kept outside the suite (`tests/acceptance.py`). Nothing here
reaches behind the page: each step is what a patient clicks or types.
"""

import re
import tempfile

from tests.support.browser import enter_card

CARD_OK = "4242 4242 4242 4242"
CARD_3DS = "4000 0025 0000 3155"
CONFIRMED = "Your appointment is confirmed"


class Watch:
    """Everything that went wrong in a page: script errors, failed requests, console errors."""

    def __init__(self, page):
        self.problems = []
        page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))
        page.on("requestfailed", self._request_failed)
        page.on("console", lambda msg: self.problems.append(f"console {msg.type}: {msg.text} at {msg.location.get('url')}")
                if msg.type == "error" else None)
        page.on("response", lambda resp: self.problems.append(
            f"answer {resp.status}: {resp.request.method} {resp.url}") if resp.status >= 400 else None)

    def _request_failed(self, req):
        # Chromium reports net::ERR_ABORTED for what the page itself dropped: an image or a poll
        # still loading when a click leaves the page (a CI run caught the logo so). The patient
        # sees nothing of it; a refused or broken request ("Failed to fetch": ERR_CONNECTION_REFUSED,
        # ERR_FAILED) is still a problem.
        if req.failure == "net::ERR_ABORTED":
            return
        self.problems.append(f"request failed: {req.method} {req.url} ({req.failure})")

    def check(self):
        """Fail with every problem seen so far."""
        assert not self.problems, "\n".join(self.problems)


def open_phone_page(browser):
    """A new browser context at a phone's size (a patient books on their phone), and its page."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    # Generous: the first pages of a freshly started run stack are slow on a busy 2-core machine.
    page.set_default_timeout(45000)
    return context, page


def register(page, base, name, email, password):
    """From the front door: the sign-in page's "Create an account", then the form."""
    page.goto(f"{base}/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/portal/")


def book_paid_time(page, base, service="General consultation", day=0):
    """From the dashboard: choose the service, any clinician, the `day`-th free day and its first time; book it.

    Returns the held appointment's page address. (A second booking picks another day: "any
    clinician" still lists a time the patient has booked with one clinician while another is free.)
    """
    page.get_by_role("link", name="Book an appointment").click()
    page.get_by_role("link", name=re.compile(rf"^{re.escape(service)}\b")).click()
    page.get_by_role("link", name="Any clinician").click()
    page.locator("table.cal td.free a").nth(day).click()
    page.get_by_role("link", name=re.compile(r"^\d\d:\d\d ?, \w+day \d+ \w+ (GMT|BST)$")).first.click()
    page.get_by_role("button", name=re.compile(r"^Hold this time and pay £\d+\.\d\d$")).click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/portal/appointments/[0-9a-f]{{24}}$"))
    return page.url


def pay_by_card(page, number, three_d_secure=False):
    """On the appointment page (the Elements flow): type the card, press Pay, authenticate if asked."""
    enter_card(page, number)
    page.get_by_role("button", name=re.compile(r"^Pay £\d+\.\d\d$")).click()
    if three_d_secure:
        page.get_by_role("button", name="Complete authentication").click()
    page.get_by_role("heading", name=CONFIRMED).wait_for()


def pay_on_checkout(page, number, three_d_secure=False):
    """On the appointment page (the Checkout flow): go to the hosted page, pay, come back confirmed."""
    page.get_by_role("button", name=re.compile(r"^Pay £\d+\.\d\d with Stripe$")).click()
    page.get_by_label("Card number").fill(number)
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    if three_d_secure:
        page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(re.compile(r"/portal/appointments/[0-9a-f]{24}\?checkout=success"))
    # The webhook confirms; the page re-checks with Stripe, so it shows the confirmation at once.
    page.get_by_role("heading", name=CONFIRMED).wait_for()


def paid_journey(browser, base, email, password, flow, shots=None):
    """Register, then book and pay twice (a plain card, then one that asks for 3-D Secure).

    `flow` is "elements" or "checkout"; `shots` a folder for phone-size screenshots of each step.
    Fails on any script error, console error or failed request on the way.
    """
    context, page = open_phone_page(browser)
    watch = Watch(page)
    pay = pay_by_card if flow == "elements" else pay_on_checkout

    def shot(name):
        if shots:
            page.screenshot(path=f"{shots}/{flow}-{name}.png", full_page=True)

    try:
        register(page, base, "Nia Newcomer", email, password)
        book_paid_time(page, base)
        shot("1-held")
        pay(page, CARD_OK)
        shot("2-confirmed")
        page.goto(f"{base}/portal/")
        book_paid_time(page, base, day=1)
        pay(page, CARD_3DS, three_d_secure=True)
        shot("3-confirmed-3ds")
        watch.check()
    except Exception as exc:
        # Always keep a picture of where it stopped, to read what the patient saw.
        where = f"{shots or tempfile.mkdtemp(prefix='journey-')}/{flow}-failed.png"
        page.screenshot(path=where, full_page=True)
        raise AssertionError(f"{exc}\n(screenshot: {where}; problems seen: {watch.problems})") from exc
    finally:
        context.close()
