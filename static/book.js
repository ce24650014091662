/* The booking and reschedule pages: send the browser's time zone to the server (`tz`), which then
 * shows the patient's own time beside the clinic's. The pages work without this script. */
(function () {
  "use strict";
  var root = document.querySelector("[data-clinic-zone]");
  if (!root || !window.Intl) { return; }
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone || zone === root.dataset.clinicZone) { return; }
  var url = new URL(window.location.href);
  if (url.searchParams.get("tz") === zone) { return; }
  url.searchParams.set("tz", zone);
  window.location.replace(url.toString());
}());

/* The review step's "Pay £360.00 now for all 6 visits" (issue 28) follows the number of visits
 * chosen; without this script it states the default six, and the line beside it the price a visit. */
(function () {
  "use strict";
  var total = document.getElementById("course-total");
  var count = document.getElementById("count");
  if (!total || !count || !window.Intl) { return; }
  var money = new Intl.NumberFormat("en-GB", {style: "currency", currency: total.dataset.currency.toUpperCase()});
  function update() {
    var n = parseInt(count.value, 10) || 0;
    total.textContent = "Pay " + money.format(n * parseInt(total.dataset.unit, 10) / 100) + total.dataset.what +
      " now for all " + n + " visits";
  }
  count.addEventListener("change", update);
  update();
}());
