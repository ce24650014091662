"""The Checkout stand-in passes everything but Checkout through to localstripe as localstripe answers it.

A browser on the run stack loads Stripe.js from the stand-in and tokenises cards through it, so the
stand-in must answer as localstripe does: same status, same end-to-end headers (CORS above all),
same body. Each request here goes to both servers and the answers are compared; this is the one
place the tests reach localstripe bare, because the comparison is the point.
"""

import pytest
import requests

from devstack.checkout_standin import passed_headers

ORIGIN = "http://127.0.0.1:5000"  # the app's page, another origin than Stripe's


def answer(base, method, path, **kwargs):
    """(status, end-to-end headers, body) of one request."""
    resp = requests.request(method, base + path, timeout=10, allow_redirects=False, **kwargs)
    headers = {k.lower(): v for k, v in passed_headers(resp.raw.headers.items())}
    return resp.status_code, headers, resp.content


def both(stripe_base, localstripe_base, method, path, **kwargs):
    """The stand-in's answer and localstripe's to the same request."""
    return (answer(stripe_base, method, path, **kwargs),
            answer(localstripe_base, method, path, **kwargs))


def test_get_of_stripe_js_is_localstripes_answer_byte_for_byte(stripe_base, localstripe_base):
    mine, theirs = both(stripe_base, localstripe_base, "GET", "/js.stripe.com/v3/", headers={"Origin": ORIGIN})
    assert mine == theirs
    assert mine[0] == 200
    assert mine[1]["access-control-allow-origin"] == ORIGIN
    assert b"createToken" in mine[2]


def test_get_of_an_object_keeps_status_headers_and_body(stripe_base, localstripe_base):
    auth = {"Authorization": "Bearer sk_test_clinic"}
    created = requests.post(f"{localstripe_base}/v1/customers", headers=auth, timeout=10,
                            data={"email": "passthrough@example.com"}).json()
    mine, theirs = both(stripe_base, localstripe_base, "GET", f"/v1/customers/{created['id']}",
                        headers=dict(auth, Origin=ORIGIN))
    assert mine == theirs
    assert b"passthrough@example.com" in mine[2]
    # An error answer is passed on just as faithfully.
    mine, theirs = both(stripe_base, localstripe_base, "GET", "/v1/customers/cus_missing",
                        headers=dict(auth, Origin=ORIGIN))
    assert mine == theirs
    assert mine[0] == 404


def test_post_of_a_card_token_from_a_browser_origin_carries_cors_headers(stripe_base, localstripe_base):
    form = {"card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2034",
            "card[cvc]": "123", "key": "pk_test_clinic"}
    headers = {"Origin": ORIGIN, "Content-Type": "application/x-www-form-urlencoded"}
    (status, mine, body), (their_status, theirs, their_body) = both(
        stripe_base, localstripe_base, "POST", "/v1/tokens", data=form, headers=headers)
    # Each call makes a new token: the bodies differ in ids only, the rest is localstripe's answer.
    assert (status, mine.keys() - {"content-length"}) == (their_status, theirs.keys() - {"content-length"})
    assert {k: v for k, v in mine.items() if k != "content-length"} == \
        {k: v for k, v in theirs.items() if k != "content-length"}
    assert status == 200
    assert mine["access-control-allow-origin"] == ORIGIN
    assert mine["content-length"] == str(len(body))
    token = requests.models.complexjson.loads(body)
    assert token["object"] == "token" and token["card"]["last4"] == "4242"


@pytest.mark.parametrize("path", ["/v1/tokens", "/v1/payment_intents/pi_x/_authenticate"])
def test_preflight_options_is_answered_as_localstripe_answers_it(stripe_base, localstripe_base, path):
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    mine, theirs = both(stripe_base, localstripe_base, "OPTIONS", path, headers=headers)
    assert mine == theirs
    assert mine[1]["access-control-allow-origin"] == ORIGIN


def test_checkout_is_still_the_stand_ins_own(stripe_base, localstripe_base):
    auth = {"Authorization": "Bearer sk_test_clinic"}
    assert requests.get(f"{localstripe_base}/v1/checkout/sessions/cs_x", headers=auth, timeout=10).status_code == 404
    resp = requests.get(f"{stripe_base}/v1/checkout/sessions/cs_x", headers=auth, timeout=10)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "resource_missing"
