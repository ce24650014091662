"""Statuses in words (issue 25): the one mapping from a stored status to what patients and staff
read ("Awaiting payment", "Confirmed", "Cancelled by the clinic"), with a tone for its badge.
Pages, the back office and emails all use it (Jinja filters `status_words`, `status_tone`)."""

PATIENT_CANCELLED = "cancelled by patient"  # the cancel_reason booking writes when the patient cancels

APPOINTMENT_WORDS = {
    "held": "Awaiting payment",
    "offered": "Offered from the waitlist",  # with a patient: "Offered to <name>" (staff), "Offered to you"
    "confirmed": "Confirmed",
    "checked_in": "Checked in",
    "completed": "Completed",
    "no_show": "Missed (no-show)",
    "cancelled": "Cancelled by the clinic",
    "expired": "Not paid in time",
}
PAYMENT_WORDS = {
    "pending": "Payment started",
    "requires_action": "Waiting for the card's bank",
    "processing": "Payment processing",
    "succeeded": "Paid",
    "failed": "Payment failed",
    "canceled": "Payment stopped",
    "refunded": "Refunded",
    "partially_refunded": "Partly refunded",
}
WAITLIST_WORDS = {
    "waiting": "Waiting",
    "offered": "Time offered",
    "booked": "Booked",
    "expired": "Ended",
}
TONES = {
    "held": "warn", "pending": "warn", "requires_action": "warn", "processing": "warn", "offered": "warn",
    "confirmed": "ok", "checked_in": "ok", "completed": "ok", "succeeded": "ok", "booked": "ok",
    "cancelled": "muted", "expired": "muted", "refunded": "muted", "partially_refunded": "muted",
    "canceled": "muted", "waiting": "info",
    "no_show": "bad", "failed": "bad",
}
KINDS = {"appointment": APPOINTMENT_WORDS, "payment": PAYMENT_WORDS, "waitlist": WAITLIST_WORDS}


def status_words(status, cancel_reason="", audience="patient", kind="appointment", patient=""):
    """A status as words; a cancellation says who cancelled ("by you" to the patient, "by the patient"
    to staff); a waitlist offer whom it is offered to (`patient`, a name: "Offered to Ann Lee", or
    "Offered to you" to the patient); an unknown status reads as its slug in words ("some_state" ->
    "Some state")."""
    if not status:
        return ""
    if kind == "appointment" and status == "offered" and (patient or audience == "patient"):
        return "Offered to you" if audience == "patient" else f"Offered to {patient}"
    if kind == "appointment" and status == "cancelled" and (cancel_reason or "").lower() == PATIENT_CANCELLED:
        return "Cancelled by you" if audience == "patient" else "Cancelled by the patient"
    words = KINDS.get(kind, APPOINTMENT_WORDS).get(status)
    return words or str(status).replace("_", " ").capitalize()


def status_tone(status):
    """The badge's tone for a status: ok, warn, bad, info or muted."""
    return TONES.get(status, "info")
