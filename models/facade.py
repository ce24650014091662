"""Lazy package fronts: `from models import booking; booking.book(...)` without importing the
whole context when only one of its modules is needed.

A context's `__init__` names what it offers and where each name lives; the module holding a name is
imported on first use (PEP 562). So importing `models.booking.documents` runs no action module, and
the order modules load in at run time is the import graph itself, which the layering test keeps
free of cycles. The same imports are written under `TYPE_CHECKING`, so import-linter and grimp see
the front's real dependencies.
"""

import importlib


def lazy_exports(package, exports):
    """`__getattr__` and `__dir__` for a package that re-exports `exports` ({module: names})."""
    where = {name: module for module, names in exports.items() for name in names}
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later reads skip this function
        return value

    def __dir__():
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
