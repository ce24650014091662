// The hold's live countdown (issue 25): "(14:32 left)" after the time it ends. Without JavaScript
// the page shows that end time alone, which is the whole information.
(function () {
  "use strict";
  var spans = document.querySelectorAll(".countdown[data-until]");
  if (!spans.length) { return; }
  function tick() {
    var now = Date.now();
    spans.forEach(function (span) {
      var left = Math.max(0, Math.floor((Date.parse(span.getAttribute("data-until")) - now) / 1000));
      var minutes = Math.floor(left / 60), seconds = left % 60;
      span.textContent = left > 0
        ? " (" + minutes + ":" + (seconds < 10 ? "0" : "") + seconds + " left)"
        : " (the hold has ended; reload the page)";
      span.hidden = false;
    });
  }
  tick();
  setInterval(tick, 1000);
}());
