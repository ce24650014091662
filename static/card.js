/* Save a card on file: Stripe.js confirms the SetupIntent in the browser, then the account page
 * loads, and the server re-fetches the SetupIntent from Stripe before it shows the card. */
(function () {
  "use strict";
  var section = document.getElementById("card-setup");
  if (!section || typeof window.Stripe !== "function") { return; }
  var stripe = window.Stripe(section.dataset.publishableKey);
  var card = stripe.elements().create("card");
  card.mount(document.getElementById("card-element"));
  var form = document.getElementById("card-form");
  var message = document.getElementById("card-message");
  Array.prototype.forEach.call(document.querySelectorAll("#card-element input"), function (input) {
    if (!input.labels || !input.labels.length) {
      input.setAttribute("aria-label", input.getAttribute("placeholder") || "Card detail");
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    message.textContent = "Saving your card…";
    stripe.confirmCardSetup(section.dataset.clientSecret, {payment_method: {card: card}})
      .then(function (result) {
        if (result.error) {
          message.textContent = result.error.message || "The card could not be saved.";
          message.setAttribute("role", "alert");
          return;
        }
        window.location.assign(section.dataset.done);
      });
  });
}());
