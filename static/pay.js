/* The payment page: tokenise the card with Stripe.js, let the server confirm the PaymentIntent,
 * complete 3-D Secure in Stripe.js when asked, then reload so the page shows the server's status.
 * The redirect or the answer of Stripe.js is never taken as proof of payment.
 * When Stripe cannot be reached the page says so in plain words: the hold is untouched, so the
 * patient can simply try again. */
(function () {
  "use strict";
  var section = document.getElementById("payment");
  if (!section || section.dataset.flow !== "elements") { return; }
  var form = document.getElementById("pay-form");
  var button = document.getElementById("pay-button");
  var message = document.getElementById("pay-message");
  var retry = document.getElementById("pay-retry");
  var base = "/api/appointments/" + encodeURIComponent(section.dataset.appointment) + "/payment";
  // The same words as the server's 503 `payments_unavailable` (models/payments/gateway.py).
  var UNAVAILABLE = "Card payments are not available right now; your time is still held. " +
                    "Please try again in a moment.";
  // Names for the inputs of Stripe.js stand-ins that render plain fields without labels.
  var LABELS = {
    number: "Card number", exp_month: "Expiry month (MM)", exp_year: "Expiry year (YY)",
    cvc: "Security code (CVC)", postal_code: "Postcode"
  };
  var HINTS = {number: "1234 1234 1234 1234", exp_month: "MM", exp_year: "YY", cvc: "CVC", postal_code: "Postcode"};

  function say(text, isError) {
    message.textContent = text;
    message.setAttribute("role", isError ? "alert" : "status");
    message.className = isError ? "flash error" : "";
  }

  // A browser's words for a request that never reached the server ("Failed to fetch" in
  // Chromium, "NetworkError when attempting to fetch resource." in Firefox, "Load failed" in
  // Safari), or Stripe.js's own type for it: never shown to the patient.
  function isNetworkFailure(error) {
    if (!error) { return false; }
    if (error.unavailable || error.type === "api_connection_error") { return true; }
    return /failed to fetch|networkerror|network error|load failed|network request failed/i
      .test(String(error.message || error));
  }

  if (typeof window.Stripe !== "function") {
    // Stripe.js did not load: there is no card field to fill, so offer a reload instead.
    say(UNAVAILABLE, true);
    Array.prototype.forEach.call(form.querySelectorAll("#card-label, #card-help, #card-element, #pay-button"),
      function (node) { node.hidden = true; });
    button.disabled = true;
    retry.hidden = false;
    retry.querySelector("button").addEventListener("click", function () { window.location.reload(); });
    return;
  }

  var stripe = window.Stripe(section.dataset.publishableKey);
  var card = stripe.elements().create("card");
  var cardElement = document.getElementById("card-element");
  card.mount(cardElement);
  // Stand-ins put a text label ("localstripe: ") in front of their plain inputs; the page has its
  // own label. Only nodes without a field are removed: real Stripe's frame stays.
  Array.prototype.slice.call(cardElement.childNodes).forEach(function (node) {
    var isText = node.nodeType === 3;
    var isElement = node.nodeType === 1;
    var holdsField = isElement && (/^(INPUT|SELECT|TEXTAREA|IFRAME)$/.test(node.tagName) ||
                                   node.querySelector("input, select, textarea, iframe"));
    if ((isText && node.textContent.trim()) || (isElement && !holdsField)) { node.remove(); }
  });
  // People type card numbers in groups ("4242 4242 4242 4242", as cards print them and the page's
  // hint shows); Stripe's own Element takes that, a stand-in's plain field sends it as typed and is
  // refused. Spaces and dashes go before the stand-in reads the field (capture runs first).
  cardElement.addEventListener("input", function (event) {
    var field = event.target;
    if (field.tagName === "INPUT" && field.dataset.cardPart === "number" && /[\s-]/.test(field.value)) {
      field.value = field.value.replace(/[\s-]+/g, "");
    }
  }, true);
  // A stand-in's plain fields get the page's layout (number on its own line); Stripe's frame sizes itself.
  if (cardElement.querySelector(":scope > input")) { cardElement.classList.add("plain-fields"); }
  Array.prototype.forEach.call(cardElement.querySelectorAll("input"), function (input) {
    var name = input.getAttribute("placeholder");
    if (!input.labels || !input.labels.length) {
      input.setAttribute("aria-label", LABELS[name] || name || "Card detail");
    }
    if (HINTS[name]) { input.setAttribute("placeholder", HINTS[name]); }
    if (name === "number" || name === "cvc") { input.setAttribute("inputmode", "numeric"); }
    if (name === "number") { input.setAttribute("autocomplete", "cc-number"); input.dataset.cardPart = "number"; }
  });

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrf_access_token=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : (section.dataset.csrf || "");
  }

  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // One Idempotency-Key per request (issue 31), kept until an answer arrives: when the connection
  // dies or the server answers 503, the patient's retry of the same request sends the same key,
  // so the server finishes the first attempt instead of starting a second. A new body (a new card
  // token) is a new request and gets a new key.
  var pendingKeys = {};

  function keyFor(request) {
    if (!pendingKeys[request]) { pendingKeys[request] = newKey(); }
    return pendingKeys[request];
  }

  function post(path, body) {
    var payload = JSON.stringify(body || {});
    var request = path + " " + payload;
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-TOKEN": csrfToken(),
                "Idempotency-Key": keyFor(request)},
      body: payload
    }).catch(function () {
      // fetch rejects only when no answer came back at all.
      var error = new Error(UNAVAILABLE);
      error.unavailable = true;
      throw error;
    }).then(function (response) {
      if (response.status !== 503) { delete pendingKeys[request]; }
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.status === 503) {
          var down = new Error(UNAVAILABLE);
          down.unavailable = true;
          throw down;
        }
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
        var problem = result.error;
        if (isNetworkFailure(problem)) {
          var error = new Error(UNAVAILABLE);
          error.unavailable = true;
          throw error;
        }
        if (problem instanceof Error) {
          // A script error inside Stripe.js (e.g. an empty field in a stand-in), not Stripe's answer.
          throw new Error("Please check your card details.");
        }
        if (problem || !result.token) {
          // Stripe's own messages are written for people; a bare HTTP reason ("Bad request") is not.
          var said = problem && problem.message;
          throw new Error(said && !/^bad request$/i.test(said) ? said : "Please check your card details.");
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
        if (isNetworkFailure(error)) {
          say(UNAVAILABLE, true);
        } else if (error.status === 401) {
          say("Your session has expired. Reload the page to sign in again; nothing was charged.", true);
        } else {
          say(error.message || "The payment did not go through. Please try again.", true);
        }
        button.disabled = false;
      });
  });
}());
