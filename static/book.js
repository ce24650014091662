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
