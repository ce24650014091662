"""The patient portal: server-rendered pages and the JSON API under /api."""


def init_app(app):
    """Attach every portal route to its blueprint, then register the pages and the JSON API; answers
    the flask-smorest Api, whose OpenAPI document the app factory adds the other doors' routes to."""
    # Importing a route module attaches its routes to a blueprint defined elsewhere (api_selfservice
    # on api.bp, booking_pages and reset on pages.bp), so they are imported here, by the wiring, and
    # never by the module that owns the blueprint: that is what keeps the portal free of cycles.
    from portal import account, api, api_selfservice, booking_pages, card, openapi, pages, payment, reset  # noqa: F401
    from portal import series_pages  # noqa: F401  (recurring series, issue 28)
    from portal import dependants  # noqa: F401  (issue 28)

    rest = openapi.init_api(app, (api.bp, payment.api_bp, account.api_bp, reset.api_bp, dependants.api_bp, card.api_bp))
    app.register_blueprint(pages.bp)
    from portal import short_links  # the texts' short links (issue 29)

    app.register_blueprint(short_links.bp)
    app.register_blueprint(payment.page_bp)
    app.register_blueprint(account.page_bp)
    app.register_blueprint(dependants.page_bp)
    app.register_blueprint(card.page_bp)
    return rest
