/* Save a card on file: Stripe.js confirms the SetupIntent in the browser, then the account page
 * loads, and the server re-fetches the SetupIntent from Stripe before it shows the card. The card
 * field is prepared as on the payment page (pay.js): labelled inputs, numbers typed in groups. */
(function () {
  "use strict";
  var section = document.getElementById("card-setup");
  if (!section) { return; }
  var message = document.getElementById("card-message");
  function say(text, isError) {
    message.textContent = text;
    message.setAttribute("role", isError ? "alert" : "status");
    message.className = isError ? "flash error" : "";
  }
  if (typeof window.Stripe !== "function") {
    say("Saving a card is not available right now. Please try again in a moment.", true);
    document.getElementById("card-button").disabled = true;
    return;
  }
  var LABELS = {
    number: "Card number", exp_month: "Expiry month (MM)", exp_year: "Expiry year (YY)",
    cvc: "Security code (CVC)", postal_code: "Postcode"
  };
  var HINTS = {number: "1234 1234 1234 1234", exp_month: "MM", exp_year: "YY", cvc: "CVC", postal_code: "Postcode"};
  var stripe = window.Stripe(section.dataset.publishableKey);
  var card = stripe.elements().create("card");
  var cardElement = document.getElementById("card-element");
  card.mount(cardElement);
  // Stand-ins put a text label in front of their plain inputs; the page has its own label.
  Array.prototype.slice.call(cardElement.childNodes).forEach(function (node) {
    var isText = node.nodeType === 3;
    var isElement = node.nodeType === 1;
    var holdsField = isElement && (/^(INPUT|SELECT|TEXTAREA|IFRAME)$/.test(node.tagName) ||
                                   node.querySelector("input, select, textarea, iframe"));
    if ((isText && node.textContent.trim()) || (isElement && !holdsField)) { node.remove(); }
  });
  cardElement.addEventListener("input", function (event) {
    var field = event.target;
    if (field.tagName === "INPUT" && field.dataset.cardPart === "number" && /[\s-]/.test(field.value)) {
      field.value = field.value.replace(/[\s-]+/g, "");
    }
  }, true);
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
  document.getElementById("card-form").addEventListener("submit", function (event) {
    event.preventDefault();
    say("Saving your card…", false);
    stripe.confirmCardSetup(section.dataset.clientSecret, {payment_method: {card: card}})
      .then(function (result) {
        if (result.error) {
          say(result.error.message || "The card could not be saved.", true);
          return;
        }
        window.location.assign(section.dataset.done);
      });
  });
}());
