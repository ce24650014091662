"""The one form of a status table: which status may follow which, and the guard every move passes.

An Appointment's table (`models/booking/status.py`) and a Payment's (`models/payments/ledger.py`)
are both a `StatusTable` over `{old: (new, …)}`. A table may also list moves made only when the
caller names their source (`named_only`): a refunded Payment given back its "succeeded" by a refund
that failed after all, a move no sync may make by default. A move the table does not list is refused
(`ForbiddenTransition`, a programming error, not a race) before anything is written.
"""


class ForbiddenTransition(ValueError):
    """A status change a table does not list (a programming error, not a race)."""


class StatusTable:
    """Which status may follow which, for one kind of document."""

    def __init__(self, what, moves, statuses, named_only=None):
        self.what = what  # "an appointment", "a payment": for the error message
        self.moves = {old: tuple(targets) for old, targets in moves.items()}
        self.named_only = {old: tuple(targets) for old, targets in (named_only or {}).items()}
        # Every stored status has a row, and every move lands on a stored status.
        assert set(self.moves) == set(statuses), (what, set(self.moves) ^ set(statuses))
        landed = {new for table in (self.moves, self.named_only) for targets in table.values() for new in targets}
        assert landed <= set(statuses), (what, landed - set(statuses))

    def allowed(self, old, new, named=False):
        """True when the table lets a document move from `old` to `new` (`named`: moves made only when named too)."""
        return new in self.moves.get(old, ()) or (named and new in self.named_only.get(old, ()))

    def sources(self, new):
        """Every status the table moves a document to `new` from by default."""
        return tuple(old for old, targets in self.moves.items() if new in targets)

    def guard(self, new, only_from=None, also=()):
        """The statuses a move to `new` may start from: `only_from` (default: `sources(new)`), each of
        which the table must allow (moves made only when named count here); `also` are further
        sources the caller may name (keeping a status while other fields change). Raises
        ForbiddenTransition otherwise."""
        only_from = self.sources(new) if only_from is None else tuple(only_from)
        wrong = [old for old in only_from if not (self.allowed(old, new, named=True) or old in also)]
        if wrong or not only_from:
            raise ForbiddenTransition(f"{self.what} cannot go from {', '.join(wrong) or 'nowhere'} to {new}")
        return only_from
