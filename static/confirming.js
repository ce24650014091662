/* The appointment page while a payment is being confirmed: ask the server (which re-checks with
 * Stripe) every second and show the page again once the appointment is no longer held. After
 * 30 tries it stops; the "Check again" link still works. */
(function () {
  "use strict";
  var note = document.getElementById("confirming");
  if (!note) { return; }
  var url = "/api/appointments/" + encodeURIComponent(note.dataset.appointment) + "/payment";
  var tries = 0;

  function check() {
    tries += 1;
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (state) {
        if (state.appointment_status && state.appointment_status !== "held") {
          window.location.replace(note.dataset.done);
        } else if (tries < 30) {
          window.setTimeout(check, 1000);
        }
      })
      .catch(function () { if (tries < 30) { window.setTimeout(check, 2000); } });
  }
  window.setTimeout(check, 1000);
}());
