"""Intake questions (issue 28): ids and versions of a service's questions, and each answer's check.

`models.booking.intake.check_answers` (called by the booking action) turns a booking's answers
into stored answers with these checks.

A question's `qid` is kept across edits; its `version` goes up when its wording, kind or choices
change, so an answer stored with the label and version it was given under stays readable after the
question is edited or removed. Answers are plain text: a short text up to 200 characters, a long
text up to 2000, a choice one of the offered choices, yes/no as "yes" or "no", a date as YYYY-MM-DD.
Answers to questions the service does not ask are ignored; a required question left empty is refused
(422 `answers_required`), as is an answer that is too long or not one of the allowed values (422
`invalid_answer`).
"""

import hashlib
from datetime import date

from bson import ObjectId

from models.errors import ValidationFailed

LIMITS = {"text": 200, "long_text": 2000, "choice": 100, "yes_no": 3, "date": 10}
YES = {"yes", "true", "y", "1", "on"}
NO = {"no", "false", "n", "0", "off"}


def _fingerprint(question):
    text = "\x1f".join([question.label or "", question.kind or "", *(question.choices or [])])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def stamp_questions(questions):
    """Give new questions an id and, with no order given, a place after the last; bump a question's
    version when what it asks has changed."""
    last = max((q.position for q in questions or [] if q.position is not None), default=0)
    for question in questions or []:
        if question.position is None:
            last = min(last + 1, 999)
            question.position = last
        if not question.qid:
            question.qid = str(ObjectId())
        print_ = _fingerprint(question)
        if question.fingerprint and question.fingerprint != print_:
            question.version = (question.version or 1) + 1
        question.fingerprint = print_


def check_value(question, raw):
    """The plain-text answer to one question ("" for none), or ValidationFailed."""
    if raw is None:
        return ""
    if question.kind == "yes_no" and isinstance(raw, bool):
        return "yes" if raw else "no"
    if not isinstance(raw, str):
        raise ValidationFailed(f"The answer to “{question.label}” must be text.", code="invalid_answer",
                               fields={f"answers.{question.qid}": "must be text"})
    value = raw.replace("\r\n", "\n").strip()
    if question.kind != "long_text":
        value = " ".join(value.split())
    if not value:
        return ""
    limit = LIMITS.get(question.kind, 200)
    if len(value) > limit:
        raise ValidationFailed(f"The answer to “{question.label}” is too long (at most {limit} characters).",
                               code="invalid_answer", fields={f"answers.{question.qid}": f"at most {limit} characters"})
    if question.kind == "yes_no":
        if value.lower() in YES:
            return "yes"
        if value.lower() in NO:
            return "no"
        raise ValidationFailed(f"Answer “{question.label}” with yes or no.", code="invalid_answer",
                               fields={f"answers.{question.qid}": "yes or no"})
    if question.kind == "choice" and value not in (question.choices or []):
        raise ValidationFailed(f"Choose one of the offered answers to “{question.label}”.", code="invalid_answer",
                               fields={f"answers.{question.qid}": "not one of the choices"})
    if question.kind == "date":
        try:
            value = date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValidationFailed(f"The answer to “{question.label}” must be a date like 2026-11-30.",
                                   code="invalid_answer", fields={f"answers.{question.qid}": "a date"}) from None
    return value


def answer_text(answer):
    """An answer as a person reads it (yes/no capitalised; other text as given)."""
    return {"yes": "Yes", "no": "No"}.get(answer.value, answer.value) if answer.kind == "yes_no" else answer.value
