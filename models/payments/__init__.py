"""Payments: one Payment per appointment, mirrored from Stripe, and the sync that moves money state.

A course paid up front (issue 28) is one PaymentIntent (or Checkout Session) that every held visit's
own Payment follows, each Payment being that visit's share (the model is explained in `ledger`).

Rules of this module (every door calls them: the portal, the webhook, the sweeper, staff actions):

- Money state only moves from an object fetched from Stripe by its id (`sync_payment_intent`,
  `sync_checkout_session`). An event's payload is a hint of *which* object changed, never proof.
- Every transition is a guarded single-document update: the Payment moves only from the statuses
  its table (`ledger.TRANSITIONS`) lists, the Appointment only from `held`/`expired` to `confirmed`. Running a
  sync twice, or for events that arrive out of order, changes nothing twice.
- A payment that succeeds after its hold lapsed confirms the appointment when its time can still
  be secured (its own claims are intact, or `claim_time` can take the time again); otherwise the
  payment is refunded in full and the appointment is marked `expired` with the reason.
- A refund is first reserved on the Payment (a guarded update that keeps `amount_refunded` at or
  under the amount paid), then sent to Stripe with the key `refund:<payment_id>:<n>`, `n` being
  the refund's position on the Payment. A refund that Stripe could not be reached for stays
  `pending` and the sweeper sends it again with the same key (looking for it first, because
  localstripe ignores idempotency keys).
- Client secrets are handed to the patient's browser and never stored.
- One live way to pay per Payment: the doors only start the configured `PAYMENT_FLOW` (another
  flow answers 409 `wrong_payment_flow`), and when the configuration changed while a payment was
  under way, starting the new flow first stops the old one (the Checkout Session is expired, our
  own PaymentIntent cancelled; if it had already taken the money, the payment is settled instead).
- A payment never confirms a time the provider can no longer give: an appointment that has
  started, or whose time now falls in the provider's time off or outside their hours, is refunded
  in full like a time someone else took.

The package, module by module (each name is offered here, loaded on first use, so
`models.payments.X` keeps working):

- `gateway`: the only module that imports `stripe`; fetches, error translation, localstripe quirks;
- `ledger`: Payment statuses and their guarded moves, the per-Payment lock, audit;
- `start`: starting a payment (the card page's PaymentIntent, or a Checkout Session);
- `sync`: the one adopt/apply path for intents and sessions, staff re-syncs, the page's re-fetch;
- `settlement`: a succeeded payment confirms its appointment or is refunded (amount checked);
- `refunds`: reserving, sending, retrying and mirroring refunds;
- `cancellation`: what a cancellation does to the money (`after_cancellation`, subscribed to
  `booking.cancel` through `models.booking.hooks`);
- `desk`: money taken at the front desk (cash or the card terminal), and what a cancellation
  would refund;
- `inbox`: Stripe's webhook events, stored once and handed to the sync (`receive_event`);
- `documents`: Payment, Refund, StripeEvent;
- `cards` (issue 27): the Stripe Customer and the card on file (SetupIntent or Checkout `setup` mode);
- `fees` (issue 27): late-cancellation and no-show fees charged off-session, once; waivers; pay links.
"""

from typing import TYPE_CHECKING

from models.facade import lazy_exports

EXPORTS = {
    "models.payments.gateway": (
        "_fetch_intent", "_fetch_session", "_find_refund", "_id_of", "is_transient", "_not_found", "_obj",
        "_payment_method_from_token", "PaymentDeclined", "PaymentProviderError", "PaymentUnavailable",
        "status_from_intent", "stripe_api", "translate_stripe_errors",
    ),
    "models.payments.ledger": (
        "TRANSITIONS", "_audit", "CONFIRMED_STATUSES", "_move_payment", "may_move", "new_payment", "payment_for", "_payment_lock",
        "PAYMENT_LOCK_SECONDS", "_ref_id", "SyncResult", "course_due", "course_followers",
    ),
    "models.payments.refunds": (
        "_mark_refunded_if_done", "refund_payment", "_refund_stray_intent", "RefundFailed",
        "retry_pending_refunds", "_send_refund", "sync_refunds",
    ),
    "models.payments.settlement": (
        "_amount_mismatch", "CANCELLED_BEFORE_PAID_REASON", "LATE_STARTED_REASON", "LATE_TAKEN_REASON",
        "LATE_UNAVAILABLE_REASON", "_refund_unconfirmable", "_refuse_mismatched_money", "_secure_time",
        "settle_paid", "_unavailable_because", "UNCONFIRMABLE",
    ),
    "models.payments.sync": (
        "_apply_intent", "_intent_of_charge_or_refund", "PAGE_REFETCHES_PER_MINUTE", "page_state",
        "payment_for_intent_id", "_payment_for_metadata", "_refetch_allowed", "resync_object",
        "sync_checkout_session", "sync_payment", "sync_payment_intent",
    ),
    "models.payments.start": (
        "_check_payable", "checkout_expiry", "CHECKOUT_MARGIN", "CHECKOUT_MIN_LIFETIME", "configured_flow",
        "_extend_hold", "_from_checkout", "_intent_params", "pay_with_token", "_refuse_if_settled",
        "require_flow", "_start_checkout", "start_payment", "_stop_checkout_session", "_stop_own_intent",
        "TOKEN_RE", "_usable_intent",
    ),
    "models.payments.cancellation": (
        "after_cancellation", "refund_due", "stop_and_sync", "_stop_remote",
    ),
    "models.payments.desk": (
        "DESK_METHODS", "PAYABLE_STATUSES", "due_at_desk", "mark_paid_at_desk", "cancel_at_desk",
        "refund_preview",
    ),
    "models.payments.inbox": (
        "EventDeferred", "EventFailed", "EventInProgress", "EventReceipt", "receive_event",
    ),
    "models.payments.documents": (
        "PAYMENT_STATUSES", "Payment", "Refund", "StripeEvent", "PAYMENT_KINDS", "FEE_KINDS", "UPFRONT_KINDS",
    ),
    # No-show protection (issue 27).
    "models.payments.cards": (
        "ensure_customer", "start_card_setup", "sync_setup_intent", "sync_setup_session", "card_on_file",
        "remove_card",
    ),
    "models.payments.fees": (
        "fee_amount", "fee_of", "fee_view", "charge_fee", "late_cancel_fee", "no_show", "waive_fee",
        "start_fee_payment", "retry_fees", "paid_online", "cancellation_money", "refund_fee",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

if TYPE_CHECKING:  # the same names, imported for readers and for the import graph
    from models.payments.gateway import (  # noqa: F401
        _fetch_intent,
        _fetch_session,
        _find_refund,
        _id_of,
        is_transient,
        _not_found,
        _obj,
        _payment_method_from_token,
        PaymentDeclined,
        PaymentProviderError,
        PaymentUnavailable,
        status_from_intent,
        stripe_api,
        translate_stripe_errors,
    )
    from models.payments.ledger import (  # noqa: F401
        TRANSITIONS,
        may_move,
        new_payment,
        _audit,
        CONFIRMED_STATUSES,
        _move_payment,
        payment_for,
        _payment_lock,
        PAYMENT_LOCK_SECONDS,
        _ref_id,
        SyncResult,
        course_due,
        course_followers,
    )
    from models.payments.refunds import (  # noqa: F401
        _mark_refunded_if_done,
        refund_payment,
        _refund_stray_intent,
        RefundFailed,
        retry_pending_refunds,
        _send_refund,
        sync_refunds,
    )
    from models.payments.settlement import (  # noqa: F401
        _amount_mismatch,
        CANCELLED_BEFORE_PAID_REASON,
        LATE_STARTED_REASON,
        LATE_TAKEN_REASON,
        LATE_UNAVAILABLE_REASON,
        _refund_unconfirmable,
        _refuse_mismatched_money,
        _secure_time,
        settle_paid,
        _unavailable_because,
        UNCONFIRMABLE,
    )
    from models.payments.sync import (  # noqa: F401
        _apply_intent,
        _intent_of_charge_or_refund,
        PAGE_REFETCHES_PER_MINUTE,
        page_state,
        payment_for_intent_id,
        _payment_for_metadata,
        _refetch_allowed,
        resync_object,
        sync_checkout_session,
        sync_payment,
        sync_payment_intent,
    )
    from models.payments.start import (  # noqa: F401
        _check_payable,
        checkout_expiry,
        CHECKOUT_MARGIN,
        CHECKOUT_MIN_LIFETIME,
        configured_flow,
        _extend_hold,
        _from_checkout,
        _intent_params,
        pay_with_token,
        _refuse_if_settled,
        require_flow,
        _start_checkout,
        start_payment,
        _stop_checkout_session,
        _stop_own_intent,
        TOKEN_RE,
        _usable_intent,
    )
    from models.payments.cancellation import (  # noqa: F401
        after_cancellation,
        refund_due,
        stop_and_sync,
        _stop_remote,
    )
    from models.payments.desk import (  # noqa: F401
        DESK_METHODS,
        PAYABLE_STATUSES,
        due_at_desk,
        mark_paid_at_desk,
        cancel_at_desk,
        refund_preview,
    )
    from models.payments.inbox import (  # noqa: F401
        EventDeferred,
        EventFailed,
        EventInProgress,
        EventReceipt,
        receive_event,
    )
    from models.payments.documents import (  # noqa: F401
        PAYMENT_STATUSES,
        Payment,
        Refund,
        StripeEvent,
        PAYMENT_KINDS,
        FEE_KINDS,
        UPFRONT_KINDS,
    )
    from models.payments.cards import (  # noqa: F401
        ensure_customer,
        start_card_setup,
        sync_setup_intent,
        sync_setup_session,
        card_on_file,
        remove_card,
    )
    from models.payments.fees import (  # noqa: F401
        fee_amount,
        fee_of,
        fee_view,
        charge_fee,
        late_cancel_fee,
        no_show,
        waive_fee,
        start_fee_payment,
        retry_fees,
        paid_online,
        cancellation_money,
        refund_fee,
    )
