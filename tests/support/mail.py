"""Reading what the test SMTP server (aiosmtpd, its own process) received, from its Maildir."""

import os
import time
from email import policy
from email.parser import BytesParser


class SmtpBox:
    """A running SMTP server and the messages it has kept."""

    def __init__(self, server):
        self.server = server
        self.url = server.url
        self.port = server.port
        self.mail_dir = server.extra["mail_dir"]

    def messages(self, to=None):
        """Every message received (parsed, oldest first), optionally only those to `to`."""
        found = []
        for sub in ("new", "cur"):  # Maildir keeps delivered messages here, one file each
            folder = os.path.join(self.mail_dir, sub)
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                with open(path, "rb") as fh:
                    found.append((os.path.getmtime(path), BytesParser(policy=policy.default).parse(fh)))
        found.sort(key=lambda item: item[0])
        out = [m for _, m in found]
        if to is not None:
            out = [m for m in out if to.lower() in str(m["To"]).lower()]
        return out

    def wait_for(self, count, to=None, timeout=10.0):
        """Wait until at least `count` messages (to `to`) have arrived; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(to)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)
