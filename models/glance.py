"""Today at a glance: the figures of the back office's home page, read straight from the database.

Choices written down here (the issue is silent on them):
- "Takings" are the money received for the period's appointments (by appointment date, the way
  the day sheet adds up), online and at the desk, less what was refunded.
- "Due at the desk": an appointment of today that is on (confirmed, arrived, done or no-show),
  has a price, and has no payment that succeeded or is under way.
- "Needs attention" lists payments the patient's bank disputed, refunds still pending after 10
  minutes or refused, and payments the sweeper could not settle: still pending/processing after 10 minutes, or paid for an appointment
  that lapsed.
- A provider sees only its own appointments and no money figures.
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from models.booking.documents import HOLDING_STATUSES, Appointment, is_lapsed_hold
from models.formatting import human_time, money
from models.clock import _utc, local_today
from models.payments.desk import due_at_desk
from models.payments.documents import FEE_KINDS, UPFRONT_KINDS, Payment

LAPSING_WITHIN = timedelta(minutes=15)
STUCK_AFTER = timedelta(minutes=10)
BUCKETS = (("to_come", "To come"), ("arrived", "Arrived"), ("no_show", "No-show"), ("cancelled", "Cancelled"))
BUCKET_OF = {"held": "to_come", "offered": "to_come", "confirmed": "to_come", "checked_in": "arrived", "completed": "arrived",
             "no_show": "no_show", "cancelled": "cancelled"}


@dataclass
class Glance:
    """The home page's figures."""

    today: object
    by_status: dict
    lapsing: list = field(default_factory=list)  # (appointment, minutes left)
    due: list = field(default_factory=list)  # (appointment, minor units)
    attention: list = field(default_factory=list)  # (payment, what is wrong)
    takings_today: int = 0
    takings_week: int = 0
    takings_by_method: dict = field(default_factory=dict)
    fees_today: int = 0  # no-show protection: late-cancellation and no-show fees taken for today's appointments
    weeks: list = field(default_factory=list)  # dicts: start, bookings, no_shows, revenue
    currency: str = "gbp"


def _span(first, days, zone):
    """UTC bounds of `days` local dates from `first`."""
    return (datetime.combine(first, time(0), zone), datetime.combine(first + timedelta(days=days), time(0), zone))


def _scoped(query, provider_id):
    return query.filter(provider=provider_id) if provider_id else query


def net_paid(payments):
    """Money kept from succeeded or (partly) refunded payments, in minor units."""
    return sum(p.amount - (p.amount_refunded or 0) for p in payments if p.status in ("succeeded", "refunded"))


def _payments_by_appointment(appointment_ids):
    return {p.appointment.id: p for p in
            Payment.objects(appointment__in=list(appointment_ids), kind__in=UPFRONT_KINDS).no_dereference()}


def week_start(day):
    """The Monday of a local date's week."""
    return day - timedelta(days=day.weekday())


def glance(now, tz, provider_id=None, currency="gbp"):
    """Everything the home page shows, for the clinic or (with `provider_id`) one provider."""
    zone = ZoneInfo(tz)
    today = local_today(tz, now)
    start, end = _span(today, 1, zone)
    todays = list(_scoped(Appointment.objects(start__gte=start, start__lt=end), provider_id)
                  .order_by("start").select_related(max_depth=1))
    payments = _payments_by_appointment(a.id for a in todays)
    by_status = {key: 0 for key, _ in BUCKETS}
    for appt in todays:
        if is_lapsed_hold(appt, now):
            continue  # a lapsed hold (or offer) is not a booking
        bucket = BUCKET_OF.get(appt.status)
        if bucket:
            by_status[bucket] += 1
    result = Glance(today=today, by_status=by_status, currency=currency)
    lapsing = _scoped(Appointment.objects(status="held", hold_expires_at__gt=now,
                                          hold_expires_at__lte=now + LAPSING_WITHIN), provider_id)
    result.lapsing = [(a, _utc(a.hold_expires_at)) for a in
                      lapsing.order_by("hold_expires_at").select_related(max_depth=1)]
    result.due = [(a, due) for a in todays if (due := due_at_desk(a, payments.get(a.id)))]
    if provider_id:
        return result  # providers see their day, not the clinic's money
    result.attention = attention(now, tz)
    week_first = week_start(today)
    result.takings_today = net_paid(payments.values())
    result.fees_today = fees_taken(today, 1, tz)
    week_payments = _period_payments(week_first, 7, zone)
    result.takings_week = net_paid(week_payments)
    for method in ("online", "cash", "card_terminal"):
        result.takings_by_method[method] = net_paid(p for p in payments.values()
                                                    if (p.method or "online") == method)
    result.weeks = weekly(today, tz, weeks=4)
    return result


def _period_payments(first, days, zone):
    """Payments of the appointments that start on `days` local dates from `first`."""
    start, end = _span(first, days, zone)
    ids = Appointment.objects(start__gte=start, start__lt=end).scalar("id")
    return list(Payment.objects(appointment__in=list(ids), kind__in=UPFRONT_KINDS).no_dereference())


def weekly(today, tz, weeks=4):
    """Bookings, no-shows and revenue of the last `weeks` weeks (Monday to Sunday), this one last.

    Bookings are the appointments starting that week that were really booked (lapsed or never
    paid holds are not counted; cancelled ones are, as they were booked).
    """
    zone = ZoneInfo(tz)
    first = week_start(today) - timedelta(days=7 * (weeks - 1))
    start, end = _span(first, 7 * weeks, zone)
    appts = list(Appointment.objects(start__gte=start, start__lt=end, status__ne="expired")
                 .only("id", "start", "status", "hold_expires_at").no_dereference())
    payments = _payments_by_appointment(a.id for a in appts)
    rows = []
    for i in range(weeks):
        w_first = first + timedelta(days=7 * i)
        w_start, w_end = _span(w_first, 7, zone)
        mine = [a for a in appts if w_start <= _utc(a.start) < w_end]
        booked = [a for a in mine if a.status not in HOLDING_STATUSES]
        rows.append({"start": w_first, "bookings": len(booked),
                     "no_shows": sum(1 for a in mine if a.status == "no_show"),
                     "revenue": net_paid(payments[a.id] for a in mine if a.id in payments)})
    return rows


FEE_NAMES = {"late_cancel_fee": "late-cancellation fee", "no_show_fee": "no-show fee"}
FEE_DUE_WORDS = {"authentication_required": "the bank asked the patient to confirm it; they were emailed a pay link",
                 "no_card": "no card on file; the patient was emailed a pay link",
                 "declined": "the card was declined; the patient was emailed a pay link"}


def fees_taken(first, days, tz):
    """No-show protection: fees charged (and kept) for the appointments of `days` local dates from `first`."""
    start, end = _span(first, days, ZoneInfo(tz))
    ids = Appointment.objects(start__gte=start, start__lt=end).scalar("id")
    return net_paid(Payment.objects(appointment__in=list(ids), kind__in=FEE_KINDS).no_dereference())


def dispute_words(payment, tz):
    """A disputed payment as staff read it: "Disputed: £60.00 on Saturday 5 December 2026, 10:00 GMT
    (fraudulent)", once decided "Dispute won on …: the clinic keeps £60.00" or "Dispute lost on …:
    the bank gave £60.00 back to the patient"; "" when the patient's bank has not disputed it."""
    dispute = getattr(payment, "dispute", None)
    if dispute is None:
        return ""
    why = f" ({dispute.reason.replace('_', ' ')})" if dispute.reason else ""
    amount = money(dispute.amount, payment.currency)
    if dispute.closed_at is not None:  # the bank decided (charge.dispute.closed)
        when = human_time(dispute.closed_at, tz)
        if dispute.outcome == "won":
            return f"Dispute won on {when}: the clinic keeps {amount}{why}"
        if dispute.outcome == "lost":
            return f"Dispute lost on {when}: the bank gave {amount} back to the patient{why}"
        return f"Dispute closed on {when} without a chargeback{why}"
    return f"Disputed: {amount} on {human_time(dispute.opened_at, tz)}{why}"


def attention(now, tz="UTC"):
    """Payments staff must look at: disputes, refunds pending too long or refused, payments the
    sweeper could not settle. A list of (payment, reason), newest first; times in zone `tz`."""
    # A dispute first: the patient's bank took the money back until staff answer it in Stripe.
    found = [(p, f"{dispute_words(p, tz)}; answer it in Stripe's dashboard")
             for p in Payment.objects(dispute__exists=True, dispute__closed_at=None)
             .order_by("-dispute.opened_at").limit(50)]
    for payment in Payment.objects(refunds__status__in=("pending", "failed")).order_by("-updated_at").limit(50):
        for refund in payment.refunds:
            if refund.status == "failed":
                found.append((payment, f"refund of {money(refund.amount, payment.currency)} refused by Stripe"))
                break
            if refund.status == "pending" and refund.created_at and now - _utc(refund.created_at) > STUCK_AFTER:
                found.append((payment, "refund still pending"))
                break
    # No-show protection (issue 27): a fee that could not be taken off-session is due from the patient.
    for payment in Payment.objects(kind__in=FEE_KINDS, status="pending", fee_state__in=tuple(FEE_DUE_WORDS))\
            .order_by("-updated_at").limit(50):
        found.append((payment, f"{FEE_NAMES[payment.kind]} due: {FEE_DUE_WORDS[payment.fee_state]}"))
    for payment in Payment.objects(status__in=("pending", "processing"), updated_at__lt=now - STUCK_AFTER,
                                   method__in=("online", None)).order_by("-updated_at").limit(50):
        if payment.fee_state:
            continue  # listed above as a fee that is due
        if payment.stripe_payment_intent or payment.stripe_checkout_session:
            found.append((payment, f"payment still {payment.status}; the sweeper could not settle it"))
    paid = Payment.objects(status="succeeded").only("id", "appointment").no_dereference().order_by("-updated_at")
    lapsed = set(Appointment.objects(id__in=[p.appointment.id for p in paid.limit(500)], status="expired")
                 .scalar("id"))
    for payment in Payment.objects(appointment__in=list(lapsed), status="succeeded"):
        found.append((payment, "paid, but the hold had lapsed and it was not refunded"))
    return found
