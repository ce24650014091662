"""Intake answers (issue 28): the one place a booking's answers are checked and made into stored answers.

The booking action (`book`) calls `check_answers` before anything is written; the per-answer rules
(lengths, choices, yes/no, dates) are `models.catalog.questions.check_value`. See that module for
the limits and the codes (`answers_required`, `invalid_answer`).
"""

from models.booking.documents import Answer
from models.catalog.questions import check_value
from models.errors import ValidationFailed


def check_answers(service, answers):
    """The service's answers as Answer documents, or ValidationFailed (422) naming what is wrong.

    `answers` is `{question_id: value}` (None: no answers given); unknown ids are ignored.
    """
    if answers is not None and not isinstance(answers, dict):
        raise ValidationFailed("'answers' must be an object of question ids and answers.", code="invalid",
                               fields={"answers": "must be an object"})
    answers = answers or {}
    stored, missing = [], []
    for question in service.ordered_questions() if hasattr(service, "ordered_questions") else []:
        value = check_value(question, answers.get(question.qid))
        if not value:
            if question.required:
                missing.append(question)
            continue
        stored.append(Answer(question=question.qid, label=question.label, version=question.version or 1,
                             kind=question.kind, value=value))
    if missing:
        names = ", ".join(f"“{q.label}”" for q in missing)
        raise ValidationFailed(f"Please answer {names}.", code="answers_required",
                               fields={f"answers.{q.qid}": "is required" for q in missing})
    return stored
