/* Staff booking form (issue 26): choosing a service narrows the clinician list to those who offer
   it, and shows that service's intake questions (issue 28; every service's are in the page, hidden
   and disabled, so a hidden one is neither sent nor required). Progressive enhancement: without this
   script the server draws only the chosen service's clinicians and questions, and "Show free times"
   draws the page again for another service. */
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
  function showQuestions() {
    var sets = document.querySelectorAll("[data-questions-for]");
    for (var i = 0; i < sets.length; i++) {
      var mine = sets[i].getAttribute("data-questions-for") === service.value;
      sets[i].hidden = !mine;
      sets[i].disabled = !mine;
    }
  }
  service.addEventListener("change", narrow);
  service.addEventListener("change", showQuestions);
  showQuestions();  // a page restored by Back may hold another service than it was drawn with
})();
