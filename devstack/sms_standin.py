"""A Twilio-compatible Messages API stand-in for the one-machine stack and the tests (issue 29).

Like the Checkout stand-in, it answers what the app calls, in the provider's shapes, and keeps
what it received where people can read it:

- `POST /2010-04-01/Accounts/<sid>/Messages.json` (HTTP basic auth `sid:token`, form fields `To`,
  `From`, `Body`) → 201 with Twilio's message JSON (`sid` "SM…", `status` "queued", …); each text is
  kept as one JSON file under the messages folder (`instance/sms/` on the run stack). Wrong
  credentials → 401, a `To` that is not E.164 → 400 with Twilio's code 21211; Twilio's magic test
  numbers +15005550001 (invalid, 21211) and +15005550009 (cannot take texts, 21614) are refused too.
- `POST /_standin/fail` `{count, status}`: answer the next `count` sends with `status` (e.g. 503),
  for outage tests; `POST /_standin/reply` `{From, Body}`: post a signed reply (STOP …) to the
  app's webhook (`--webhook`), as the provider would; `GET /_standin/messages`: every text kept.

Run it as `python -m devstack.sms_standin --port P --dir DIR --account AC… --token T [--webhook URL]`.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAGIC = {"+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
         "+15005550009": (21614, "'To' number +15005550009 is not a valid mobile number")}


def sign(token, url, params):
    """Twilio's X-Twilio-Signature over the URL and the sorted POST fields."""
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest()).decode()


class SmsStandIn:
    """The stand-in's state: where texts are kept, the credentials, queued failures."""

    def __init__(self, folder, account, token, webhook=""):
        self.folder, self.account, self.token, self.webhook = folder, account, token, webhook
        self.failures = []  # statuses to answer the next sends with
        self.lock = threading.Lock()
        os.makedirs(folder, exist_ok=True)

    def __call__(self, environ, start_response):
        request = Request(environ)
        return self.route(request)(environ, start_response)

    def route(self, request):
        """Dispatch one request."""
        path = request.path
        match = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", path)
        if match and request.method == "POST":
            return self.send(request, match.group(1))
        if path == "/_standin/fail" and request.method == "POST":
            data = request.get_json(silent=True) or {}
            with self.lock:
                self.failures += [int(data.get("status", 503))] * int(data.get("count", 1))
            return _json({"queued_failures": len(self.failures)})
        if path == "/_standin/reply" and request.method == "POST":
            return self.reply(request.get_json(silent=True) or {})
        if path == "/_standin/messages":
            return _json(self.messages())
        return _json({"code": 20404, "message": "The requested resource was not found", "status": 404}, 404)

    def send(self, request, account):
        """Accept one text as Twilio's Messages API would."""
        auth = request.authorization
        if auth is None or auth.username != self.account or auth.password != self.token or account != self.account:
            return _json({"code": 20003, "message": "Authenticate", "status": 401}, 401)
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
        if failure:
            return _json({"code": 20500, "message": "Service unavailable (stand-in told to fail)",
                          "status": failure}, failure)
        to, sender, body = request.form.get("To", ""), request.form.get("From", ""), request.form.get("Body", "")
        if not body:
            return _json({"code": 21602, "message": "Message body is required.", "status": 400}, 400)
        if to in MAGIC or not E164.match(to):
            code, message = MAGIC.get(to, (21211, f"The 'To' number {to} is not a valid phone number."))
            return _json({"code": code, "message": message, "status": 400}, 400)
        sid = "SM" + uuid.uuid4().hex
        now = datetime.now(timezone.utc)
        record = {"sid": sid, "account_sid": self.account, "to": to, "from": sender, "body": body,
                  "status": "queued", "num_segments": str(max(1, -(-len(body) // 160))),
                  "date_created": now.strftime("%a, %d %b %Y %H:%M:%S +0000"), "received_at": time.time(),
                  "direction": "outbound-api", "api_version": "2010-04-01"}
        tmp = os.path.join(self.folder, f".{sid}.tmp")
        with open(tmp, "w") as fh:
            json.dump(record, fh)
        os.replace(tmp, os.path.join(self.folder, f"{sid}.json"))  # whole files only, for readers
        return _json({k: v for k, v in record.items() if k != "received_at"}, 201)

    def reply(self, data):
        """Post a signed inbound text (From, Body) to the app's webhook, as the provider does."""
        url = data.get("url") or self.webhook
        if not url:
            return _json({"error": "no webhook configured"}, 400)
        params = {"From": data.get("From", ""), "To": data.get("To", ""), "Body": data.get("Body", ""),
                  "MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": self.account}
        resp = requests.post(url, data=params, headers={"X-Twilio-Signature": sign(self.token, url, params)},
                             timeout=10)
        return _json({"status": resp.status_code})

    def messages(self):
        """Every kept text, oldest first."""
        return read_messages(self.folder)


def read_messages(folder):
    """The texts kept in `folder`, oldest first (tests and the acceptance check read them)."""
    out = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as fh:
                out.append(json.load(fh))
    return sorted(out, key=lambda m: m.get("received_at", 0))


def _json(data, status=200):
    return Response(json.dumps(data), status=status, mimetype="application/json")


def main(argv=None):
    """Serve the stand-in until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--webhook", default="")
    args = parser.parse_args(argv)
    app = SmsStandIn(args.dir, args.account, args.token, args.webhook)
    make_server(args.host, args.port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
