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

The package, module by module (import a name from the module that defines it, e.g.
`from models.payments.inbox import receive_event`; this package's top imports nothing, and its
`_`-private names stay private to the package):

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
