"""Wiring: the app factory that attaches settings, extensions, doors and commands."""

import logging
import os

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from web.settings import derived_settings, load_settings, validate_settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a body nested too deeply to parse is malformed input, not a crash."""

    def loads(self, s, **kwargs):
        """Parse JSON; a RecursionError (e.g. 100,000 nested arrays) becomes a ValueError (400)."""
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def register_template_filters(app):
    """The domain's formatters as Jinja filters and globals, for every door's pages and the emails alike."""
    from models import formatting

    # One writer of money and of local times (models/formatting.py): `{{ amount|money(currency) }}`,
    # `{{ instant|human_time(zone) }}`, `{{ day|human_date }}` read the same in the portal, the back
    # office and the emails. Globals too, so `{{ money(a, c) }}` needs nothing passed by a view.
    for name, function in formatting.FILTERS.items():
        app.add_template_filter(function, name)
        app.add_template_global(function, name)
    register_clinic_profile(app)


def register_clinic_profile(app):
    """Clinic profile (issue 25): statuses in words, and the clinic's identity on every page."""
    from models import status_words

    app.add_template_filter(status_words.status_words, "status_words")
    from models.accounts.phones import display_phone

    # "+447700900123" read as "07700 900123" (models.formatting.phone, in the clinic's region)
    app.add_template_filter(display_phone, "phone")
    app.add_template_global(display_phone, "phone")
    app.add_template_filter(status_words.status_tone, "status_tone")

    @app.context_processor
    def clinic_identity():
        """`brand`: the clinic's name, address, phone, accent colour, logo and locale for page headers,
        footers and titles (read from the cached catalog; a page without a clinic gets "Clinic")."""
        from models.catalog import current_catalog
        from models.catalog.profile import accent_colour, logo_path
        from models.messages.rendering import clinic_address
        from models.formatting import DEFAULT_LOCALE

        try:
            clinic = current_catalog().clinic
        except Exception:  # noqa: BLE001 (an error page must render even when the database is down)
            clinic = None
        return {"brand": {
            "name": clinic.name if clinic else "Clinic",
            "address": clinic_address(clinic) if clinic else "",
            "address_lines": [line for line in ((clinic.address or "").splitlines() if clinic else []) if line.strip()],
            "phone": (clinic.phone or "") if clinic else "",
            "email": (clinic.email or "") if clinic else "",
            "website": (clinic.website or "") if clinic else "",
            "accent": accent_colour(clinic.brand_colour if clinic else None),
            "logo_url": logo_path(clinic),
            # The clinic's locale as a BCP 47 tag ("en-GB"), for the few scripts that write money.
            "lang": ((clinic.locale if clinic else None) or DEFAULT_LOCALE).replace("_", "-"),
        }}


def create_app(config=None):
    """Create the clinic application; `config` overrides settings read from the environment."""
    app = Flask(
        __name__,
        instance_path=os.path.join(ROOT, "instance"),
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    app.json = BoundedJSONProvider(app)
    settings = load_settings()
    settings.update(config or {})
    validate_settings(settings)
    app.config.update(settings)
    app.config.update(derived_settings(app.config))
    app.config.update({k: v for k, v in (config or {}).items() if k.isupper()})
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    if not app.debug:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from web.extensions import csrf, jwt, login_manager, mongo, rate_limits, redis_store, stripe_client

    mongo.init_app(app)
    redis_store.init_app(app)
    rate_limits.init_app(app)
    stripe_client.init_app(app)
    from web.cache import caches

    caches.init_app(app)
    jwt.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)

    from web.errors import register_error_handlers

    register_error_handlers(app)
    register_template_filters(app)

    import portal
    from clinic import health
    from web import monitoring, security
    from webhooks import schemas as webhook_schemas
    from webhooks import sms_webhook, stripe_webhook

    security.init_app(app)
    monitoring.init_app(app)
    app.register_blueprint(health.bp)
    rest = portal.init_app(app)  # pages, and the JSON doors through flask-smorest with /api/openapi.json
    # The one OpenAPI document names the routes outside the patient API too, each documented by its owner.
    webhook_schemas.document(rest.spec)
    health.document(rest.spec)
    app.register_blueprint(stripe_webhook.bp)
    from web import idempotency

    idempotency.init_app(app)  # issue 31: Idempotency-Key on booking, payment, cancel, reschedule
    # The JSON API and webhooks authenticate by JWT double-submit or signature, not form CSRF.
    csrf.exempt(stripe_webhook.bp)
    app.register_blueprint(sms_webhook.bp)  # replies to texts (issue 29)
    csrf.exempt(sms_webhook.bp)
    from portal import feeds  # the clinicians' calendar feeds (issue 29)

    app.register_blueprint(feeds.bp)
    csrf.exempt(health.bp)

    from admin import init_admin

    init_admin(app)

    from clinic.cli import register_commands

    register_commands(app)

    @app.get("/")
    def index():
        """The clinic's front door is its booking page: anyone may browse; booking asks to sign in."""
        from portal.booking_pages import book

        return book()

    @app.get("/clinic/logo/<sha>")
    def clinic_logo(sha):
        """The clinic's logo: its address holds its hash, so browsers keep it for a year."""
        from models.catalog.profile import logo

        content_type, data = logo(sha)
        response = app.response_class(data, mimetype=content_type)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        # An SVG opened on its own must not run anything (checked on upload too).
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        return response

    return app
