"""A series visit's place in its course (issue 28, and the portal QA walk): "Visit 2 of 6", and
"(course shortened to 3 visits)" once visits of it were cancelled or lapsed. The visit page, the
series page's list and the day view's panel all read it here."""

from typing import NamedTuple

from models.booking.documents import ACTIVE_STATUSES, Appointment

# The statuses of a series' visits still in its course: all but those that will not happen.
COUNTED = ACTIVE_STATUSES + ("completed", "no_show")


class SeriesPlace(NamedTuple):
    """A visit's place in its course: `n`-th of the `of` visits booked, `left` of which still stand."""

    n: int
    of: int
    left: int

    @property
    def words(self):
        """The place in words: "Visit 2 of 6", with "(course shortened to 3 visits)" once some will not happen."""
        shortened = f" (course shortened to {self.left} visit{'s' if self.left != 1 else ''})" if self.left < self.of else ""
        return f"Visit {self.n} of {self.of}{shortened}"


def series_positions(appointments):
    """Each live or done series visit's place in its course, `{appointment id: SeriesPlace}`; one query
    for every series among `appointments`.

    A visit keeps its place in the course as booked, by start among every visit of the series (so the
    series page's list and the visit page agree), and a course cut short says so: a patient who
    cancelled the later visits of six reads "Visit 1 of 6 (course shortened to 1 visit)", not "Visit
    1 of 1", which would read as if there never was a course (docs/series.md)."""
    ids = {a.series for a in appointments if getattr(a, "series", None)}
    if not ids:
        return {}
    by_series = {}
    for visit in Appointment.objects(series__in=list(ids)).only("id", "series", "start", "status").order_by("start"):
        by_series.setdefault(visit.series, []).append(visit)
    positions = {}
    for visits in by_series.values():
        left = sum(1 for v in visits if v.status in COUNTED)
        for n, visit in enumerate(visits, 1):
            if visit.status in COUNTED:
                positions[visit.id] = SeriesPlace(n, len(visits), left)
    return positions
