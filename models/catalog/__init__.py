"""The catalog: the clinic, its services, providers and weekly schedules — read often, changed rarely.

`documents` holds the documents; `snapshot` the bulk-loaded, cached view every request reads
(`current_catalog()`) and the change signal (`changed`, `on_change`) the caches listen to.
"""

from models.catalog.snapshot import (  # noqa: F401
    Catalog,
    bookable_services,
    changed,
    current_catalog,
    load_catalog,
    on_change,
    set_catalog_source,
)
