"""The SMS stand-in as the tests see it (issue 29): texts it kept, failures to queue, signed replies."""

import time

import requests

from devstack.sms_standin import read_messages, sign


class SmsBox:
    """The stack's running SMS stand-in: `url` is the app's SMS_URL."""

    def __init__(self, server):
        self.server = server
        self.url = server.url
        self.base = server.extra["base"]
        self.folder = server.extra["sms_dir"]
        self.token = server.extra["token"]

    def messages(self, to=None):
        """Every text kept (oldest first), optionally only those to the E.164 number `to`."""
        return [m for m in read_messages(self.folder) if to is None or m["to"] == to]

    def wait_for(self, count, to=None, timeout=10.0):
        """Wait until at least `count` texts (to `to`) were kept; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(to)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def fail_next(self, count=1, status=503):
        """Make the stand-in answer the next `count` sends with `status`."""
        requests.post(f"{self.base}/_standin/fail", json={"count": count, "status": status}, timeout=5).raise_for_status()

    def signature(self, url, params):
        """X-Twilio-Signature for a POST of `params` to `url`, signed with the stand-in's token."""
        return sign(self.token, url, params)
