/* The payment page: tokenise the card with Stripe.js, let the server confirm the PaymentIntent,
 * complete 3-D Secure in Stripe.js when asked, then reload so the page shows the server's status.
 * The redirect or the answer of Stripe.js is never taken as proof of payment. */
(function () {
  "use strict";
  var section = document.getElementById("payment");
  if (!section || section.dataset.flow !== "elements") { return; }
  var form = document.getElementById("pay-form");
  var button = document.getElementById("pay-button");
  var message = document.getElementById("pay-message");
  var base = "/api/appointments/" + encodeURIComponent(section.dataset.appointment) + "/payment";
  // Names for the inputs of Stripe.js stand-ins that render plain fields without labels.
  var LABELS = {
    number: "Card number", exp_month: "Expiry month (MM)", exp_year: "Expiry year (YY)",
    cvc: "Security code (CVC)", postal_code: "Postcode"
  };

  function say(text, isError) {
    message.textContent = text;
    message.setAttribute("role", isError ? "alert" : "status");
    message.className = isError ? "flash error" : "";
  }

  if (typeof window.Stripe !== "function") {
    say("Card payments are not available right now. Please try again later or call the clinic.", true);
    button.disabled = true;
    return;
  }

  var stripe = window.Stripe(section.dataset.publishableKey);
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  Array.prototype.forEach.call(document.querySelectorAll("#card-element input"), function (input) {
    var name = input.getAttribute("placeholder");
    if (!input.labels || !input.labels.length) {
      input.setAttribute("aria-label", LABELS[name] || name || "Card detail");
    }
    if (name === "number" || name === "cvc") { input.setAttribute("inputmode", "numeric"); }
    if (name === "number") { input.setAttribute("autocomplete", "cc-number"); }
  });

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrf_access_token=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : (section.dataset.csrf || "");
  }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-TOKEN": csrfToken()},
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error((data.error && data.error.message) ||
                                "The payment could not be started. Please try again.");
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function finish() {
    say("Checking your payment with the clinic…");
    window.location.reload();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    say("Processing your payment…");
    post(base, {})
      .then(function () { return stripe.createToken(card); })
      .then(function (result) {
        if (result.error || !result.token) {
          throw new Error((result.error && result.error.message) || "Please check your card details.");
        }
        return post(base + "/confirm", {token: result.token.id});
      })
      .then(function (answer) {
        if (answer.requires_action && answer.client_secret) {
          say("Your bank asks you to confirm this payment…");
          // Whatever Stripe.js answers, the server re-checks with Stripe when the page reloads.
          return stripe.confirmCardPayment(answer.client_secret).then(finish, finish);
        }
        return finish();
      })
      .catch(function (error) {
        if (error.status === 401) {
          say("Your session has expired. Reload the page to sign in again; nothing was charged.", true);
        } else {
          say(error.message || "The payment did not go through. Please try again.", true);
        }
        button.disabled = false;
      });
  });
}());
