/* Pay a fee on-line from the emailed link: Stripe.js completes the bank's 3-D Secure step, then the
 * page reloads and shows what the server re-fetched from Stripe. */
(function () {
  "use strict";
  var section = document.getElementById("fee-pay");
  if (!section || typeof window.Stripe !== "function") { return; }
  var stripe = window.Stripe(section.dataset.publishableKey);
  var message = document.getElementById("fee-message");
  document.getElementById("fee-button").addEventListener("click", function () {
    message.textContent = "Asking your bank…";
    stripe.confirmCardPayment(section.dataset.clientSecret).then(function (result) {
      if (result.error) {
        message.textContent = result.error.message || "The payment did not go through.";
        message.setAttribute("role", "alert");
        return;
      }
      window.location.assign(section.dataset.done);
    });
  });
}());
