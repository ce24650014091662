/* Staff booking form (issue 26): choosing a service narrows the clinician list to those who offer
   it. Progressive enhancement: without this script the server lists only the clinicians of the
   service the page was drawn with, and "Show free times" draws it again for another service. */
(function () {
  "use strict";
  var service = document.getElementById("book-service");
  var provider = document.getElementById("book-provider");
  var all = document.getElementById("all-providers");
  var note = document.getElementById("provider-note");
  if (!service || !provider || !all) { return; }
  function narrow() {
    var chosen = provider.value;
    var wanted = service.value;
    var options = all.content.querySelectorAll("option");
    provider.innerHTML = "";
    var kept = 0;
    for (var i = 0; i < options.length; i++) {
      var services = (options[i].getAttribute("data-services") || "").split(" ");
      if (services.indexOf(wanted) >= 0) {
        var copy = options[i].cloneNode(true);
        if (copy.value === chosen) { copy.selected = true; }
        provider.appendChild(copy);
        kept++;
      }
    }
    if (note) {
      note.textContent = kept ? "" : "No clinician offers this service.";
    }
  }
  service.addEventListener("change", narrow);
})();
