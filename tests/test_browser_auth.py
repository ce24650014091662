"""In real Chromium: register, land on the dashboard, sign out, and be sent back to sign-in."""

from playwright.sync_api import expect


def test_register_login_logout_in_the_browser(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    page.goto(f"{base}/portal/register")
    page.get_by_label("Full name").fill("Browser Patient")
    page.get_by_label("Email").fill("browser@example.com")
    page.get_by_label("Password (at least 8 characters)").fill("quiet harbour lamp")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/portal/")
    assert page.get_by_role("heading", name="Hello, Browser Patient").is_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/portal/login")
    assert page.get_by_text("You are signed out.").is_visible()

    # The dashboard is closed again after logout.
    page.goto(f"{base}/portal/")
    assert page.url.startswith(f"{base}/portal/login")

    # Signing in through the form, using only the keyboard, opens it again.
    page.get_by_label("Email").fill("browser@example.com")
    page.get_by_label("Password").fill("quiet harbour lamp")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/portal/")
    assert page.get_by_role("heading", name="Hello, Browser Patient").is_visible()


def test_wrong_password_shows_an_error_in_the_browser(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Email or password is not correct.")
    assert page.url.startswith(f"{base}/portal/login")


def test_register_errors_are_tied_to_their_fields(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    page.goto(f"{base}/portal/register")
    page.get_by_label("Full name").fill("Short Pw")
    page.get_by_label("Email").fill("short@example.com")
    page.get_by_label("Password (at least 8 characters)").fill("short")
    page.get_by_role("button", name="Create account").click()
    password = page.get_by_label("Password (at least 8 characters)")
    assert password.get_attribute("aria-invalid") == "true"
    described = password.get_attribute("aria-describedby")
    assert "at least 8" in page.locator(f"#{described}").inner_text()
