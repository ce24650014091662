/* The waitlist form (issue 26): choosing a service narrows "Clinician" to those who offer it.
   Without this script the server lists the clinicians of the service the page was drawn with,
   and joining with a clinician who does not offer the service is refused with a message. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var service = document.getElementById("service");
    var provider = document.getElementById("provider");
    var all = document.getElementById("all-providers");
    if (!service || !provider || !all) { return; }
    service.addEventListener("change", function () {
      var chosen = provider.value;
      var options = all.content.querySelectorAll("option");
      while (provider.options.length > 1) { provider.remove(1); }  // keep "Any clinician"
      for (var i = 0; i < options.length; i++) {
        var services = (options[i].getAttribute("data-services") || "").split(" ");
        if (services.indexOf(service.value) >= 0) {
          var copy = options[i].cloneNode(true);
          copy.removeAttribute("data-services");
          if (copy.value === chosen) { copy.selected = true; }
          provider.appendChild(copy);
        }
      }
    });
  });
})();
