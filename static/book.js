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
 * chosen; without this script it states the default six, and the line beside it the price a visit.
 * The submit button follows the choice too: "Hold these 4 visits and pay £240.00" for the whole
 * course, "… and pay £60.00 for each" per visit, so it never names one visit's price for a course.
 * Amounts follow the clinic's locale (`data-locale`), as the server writes them. */
(function () {
  "use strict";
  var total = document.getElementById("course-total");
  var count = document.getElementById("count");
  var every = document.getElementById("every_weeks");
  if (!count || !every || !window.Intl) { return; }
  var button = count.form && count.form.querySelector("button[type=submit]");
  var single = button ? button.textContent : "";
  var money = total && new Intl.NumberFormat(total.dataset.locale || "en-GB", {style: "currency", currency: total.dataset.currency.toUpperCase()});
  function courseChosen() {
    var radio = count.form && count.form.querySelector("input[name=pay][value=course]");
    return !!(radio && radio.checked);
  }
  function update() {
    var n = parseInt(count.value, 10) || 0;
    var sum = total ? money.format(n * parseInt(total.dataset.unit, 10) / 100) : "";
    if (total) {
      total.textContent = "Pay " + sum + total.dataset.what + " now for all " + n + " visits";
    }
    if (!button) { return; }
    if (every.value === "0") {
      button.textContent = single;
    } else if (total && courseChosen()) {
      button.textContent = "Hold these " + n + " visits and pay " + sum + total.dataset.what;
    } else {
      button.textContent = single.replace("this time", "these " + n + " visits") + (total ? " for each" : "");
    }
  }
  count.addEventListener("change", update);
  every.addEventListener("change", update);
  count.form.addEventListener("change", update);
  update();
}());
