"""The domain's handle on the app's Redis store, without importing the wiring (`clinic`).

`web.extensions.Redis.init_app` registers itself as `app.extensions["redis"]`; the domain
reads it from there, so the layering contract (`.importlinter`) holds: models never import clinic.
"""

from flask import current_app


def get_redis():
    """The current app's Redis client."""
    return current_app.extensions["redis"].client


def rkey(*parts):
    """A Redis key under the current app's prefix."""
    return current_app.extensions["redis"].key(*parts)
