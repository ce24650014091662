"""The web infrastructure under the doors: settings, extensions (MongoDB, Redis, JWT, CSRF, rate
limits, Stripe), the contract's error answers (`errors`), the request's audit context (`audit`),
security headers, `Idempotency-Key`, the free-times cache and MongoDB command counting.

The doors (portal, admin, webhooks) import it; it imports the domain (models) and never a door nor
the app factory (`clinic`), which wires it all together. This package's top imports nothing.
"""
