"""The back office's Outbox: every email and text, its status and last error, its wording as sent (a
preview for one not sent); resend."""

from flask import flash, url_for
from flask_admin.actions import action
from markupsafe import Markup

from admin.base import SecureModelView, clinic_zone, local_formatter, staff_actor
from admin.fields import link, phone_formatter, words
from admin.roles import FRONT_DESK, NOBODY
from models import Appointment, Patient, formatting
from models.documents import utcnow
from models.errors import DomainError
from models.messages.delivery import resend
from models.messages.outbox import OutboxMessage


# Markup.format escapes every value it puts in; the templates themselves are literals.
SENT_TEXT = Markup('<p><strong>Text message as sent</strong> ({} characters)</p><pre style="white-space:pre-wrap">{}</pre>')
SENT_EMAIL = Markup('<p><strong>Email as sent</strong></p><p><strong>Subject:</strong> {}</p>'
                    '<pre style="white-space:pre-wrap">{}</pre>')
TEXT = Markup('<p><strong>Text message</strong> ({} characters)</p><pre style="white-space:pre-wrap">{}</pre>')
EMAIL = Markup('<p><strong>Subject:</strong> {}</p><pre style="white-space:pre-wrap">{}</pre>')


def rendered_body(view, context, model, name):
    """The wording: a sent message's as it left (kept at send time); any other's as a preview,
    rendered now and labelled so (reset links hidden); a text as the phone shows it."""
    if model.status == "sent" and model.sent_body:
        if getattr(model, "channel", "email") == "sms":
            return SENT_TEXT.format(len(model.sent_body), model.sent_body)
        return SENT_EMAIL.format(model.sent_subject or "", model.sent_body)
    return _preview(model)


def _preview(model):
    """A message rendered now, under a label that says it is not the wording sent."""
    from models.messages.rendering import render
    from models.messages.sms import render_text

    if model.status == "sent":  # sent before the wording was kept, or kept no longer (patient erased)
        label = Markup("<p><strong>Preview</strong>: the wording sent was not kept; this is how it would read now.</p>")
    else:
        label = Markup("<p><strong>Preview</strong>: not sent; this is how it would read if sent now.</p>")
    if getattr(model, "channel", "email") == "sms":
        try:
            text = render_text(model, utcnow())
        except Exception as exc:
            return Markup("<p>Cannot render this text: {}</p>").format(str(exc))
        return label + TEXT.format(len(text), text)
    try:
        rendered = render(model, utcnow(), preview=True)
    except Exception as exc:  # a template edit gone wrong shows here, not as a 500
        return Markup("<p>Cannot render this message: {}</p>").format(str(exc))
    body = label + EMAIL.format(rendered.subject, rendered.text)
    if rendered.attachments:
        body += Markup("<p>Attached: {}</p>").format(", ".join(a[0] for a in rendered.attachments))
    return body


# Issue 26: what each kind of message is, in staff's words (a kind not named here reads as its own
# words, "fee_charged" -> "Fee charged", so a kind another feature adds never shows raw).
KIND_LABELS = {"confirmed": "Booking confirmed", "receipt": "Payment receipt", "cancelled": "Cancellation",
               "rescheduled": "New time", "reminder": "Reminder", "password_reset": "Password reset",
               "invitation": "Account invitation", "waitlist_offer": "Waitlist offer"}


def kind_label(kind):
    """A message kind as staff read it: "waitlist_offer" -> "Waitlist offer"."""
    return KIND_LABELS.get(kind) or (kind or "").replace("_", " ").capitalize()


def about(view, context, model, name):
    """What a message is about, in words and linked: its appointment ("General consultation with
    Dr Amira Shah, Monday 7 December 2026, 10:00 GMT"), else its kind and patient ("Password reset
    for Pat Example"); never the stored key "Appointment:<id>"."""
    if model.appointment:
        appt = Appointment.objects(id=model.appointment).first()
        if appt is None:
            return "An appointment no longer on record"
        text = f"{appt.service.name} with {appt.provider.name}, {formatting.human_time(appt.start, clinic_zone())}"
        return link(url_for("appointments.details_view", id=str(appt.id)), text)
    patient = Patient.objects(id=model.patient).only("id", "name").first() if model.patient else None
    if patient is None:
        return kind_label(model.kind)
    return Markup("{} for {}").format(kind_label(model.kind),
                                       link(url_for("patients.details_view", id=str(patient.id)), patient.name))


def short_time(field):
    """A column formatter: the instant on one line, "Fri 4 Dec 2026 09:00 GMT", in the clinic's zone."""

    def formatter(view, context, model, name):
        value = getattr(model, field)
        if not value:
            return ""
        # Markup.format escapes; nowrap keeps the date on one line in a narrow column.
        return Markup('<span class="text-nowrap">{}</span>').format(formatting.short_time(value, clinic_zone()))

    return formatter


def recipient(view, context, model, name):
    """Who it goes to: an address, or a text's number as people say it ("07700 900123")."""
    if getattr(model, "channel", "email") == "sms":
        return phone_formatter(view, context, model, name)
    return model.to


class OutboxView(SecureModelView):
    """Outgoing email (admin and reception): kind, recipient, status, attempts, last error."""

    read_roles = FRONT_DESK
    write_roles = NOBODY
    empty_list_message = ("No messages yet. Emails and texts appear here as soon as a patient books, pays, "
                          "cancels or asks for a password reset.")
    audit_reads = True  # bodies name patients and their appointments
    extra_css = ["/static/outbox.css"]  # fewer columns on a phone
    column_list = ("created_at", "kind", "channel", "to", "status", "attempts", "due_at", "sent_at", "last_error")
    column_details_list = ("kind", "channel", "to", "status", "attempts", "last_error", "drop_reason", "due_at",
                           "sent_at", "created_at", "subject", "version", "provider_id", "body")
    column_filters = ("kind", "channel", "status", "due_at")
    column_searchable_list = ("to", "subject")
    column_default_sort = ("created_at", True)
    column_labels = {"to": "Recipient", "subject": "About", "drop_reason": "Not sent because",
                     "due_at": "Due", "sent_at": "Sent at", "channel": "By", "provider_id": "SMS provider's id",
                     "created_at": "Created", "last_error": "Last error"}
    column_descriptions = {
        "status": "Queued: waiting to be sent · Sending: being sent now · Sent · Failed: gave up "
                  "after its attempts (send it again) · Dropped: no longer fitted (appointment changed, "
                  "cancelled or past)",
    }
    column_formatters = {"created_at": short_time("created_at"), "due_at": short_time("due_at"),
                         "sent_at": short_time("sent_at"), "body": rendered_body, "to": recipient,
                         "kind": lambda view, context, model, name: kind_label(model.kind),
                         "channel": words("channel"), "status": words("outbox_status")}
    column_formatters_detail = {"created_at": local_formatter("created_at"), "due_at": local_formatter("due_at"),
                                "sent_at": local_formatter("sent_at"), "body": rendered_body, "subject": about,
                                "to": recipient,
                                "kind": lambda view, context, model, name: kind_label(model.kind),
                                "channel": words("channel"), "status": words("outbox_status")}
    action_roles = {"resend": FRONT_DESK}

    @action("resend", "Send again", "Send the selected failed messages again?")
    def action_resend(self, ids):
        """Queue failed (or dropped) messages again; the sweep sends them within a minute."""
        done = 0
        for message in self.get_query().filter(id__in=ids):
            try:
                resend(message.id, audit_as=staff_actor())  # the action audits itself, done or refused
            except DomainError as exc:
                flash(exc.message, "error")
                continue
            done += 1
        if done:
            flash(f"{done} message(s) queued again; they go out with the next sweep (within a minute).",
                  "success")


def add_outbox_view(admin):
    """Register the Outbox view on the back office."""
    admin.add_view(OutboxView(OutboxMessage, name="Outbox", endpoint="outbox"))
