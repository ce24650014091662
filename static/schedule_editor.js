/* The weekly hours editor without page loads (issue 26). Progressive enhancement: every button is a
   real submit button that the server handles without this script; with it, "Add a break",
   "Remove break" and the copy buttons change the page in place, ticking "Open" fills in
   09:00-17:00, a new break suggests 12:00-13:00, "Whole day off" hides the part-day times, and the
   preview of the week follows every change. Only "Save hours" loads a page. */
(function () {
  "use strict";
  var form = document.querySelector("form.schedule-form");
  var template = document.getElementById("break-template");
  if (!form || !template) { return; }
  var WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
  var status = document.getElementById("editor-status");

  function field(day, name) { return document.getElementById("days-" + day + "-" + name); }
  function dayBox(day) { return document.getElementById("day-" + day); }
  function breaks(day) { return dayBox(day).querySelectorAll(".schedule-break"); }
  function say(text) { if (status) { status.textContent = text; } }

  function nextIndex(day) {
    var most = -1;
    var rows = breaks(day);
    for (var i = 0; i < rows.length; i++) {
      var n = parseInt(rows[i].getAttribute("data-break"), 10);
      if (n > most) { most = n; }
    }
    return most + 1;
  }

  function addBreak(day, start, end) {
    var n = nextIndex(day);
    var html = template.innerHTML.split("__DAY__").join(String(day)).split("__N__").join(String(n))
      .split("__WEEKDAY__").join(WEEKDAYS[day]);
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var row = holder.firstElementChild;
    row.querySelector("input[name$='-start']").value = start || "";
    row.querySelector("input[name$='-end']").value = end || "";
    var add = dayBox(day).querySelector("button[name='add_break']");
    add.parentNode.insertBefore(row, add);
    return row;
  }

  function clearBreaks(day) {
    var rows = breaks(day);
    for (var i = rows.length - 1; i >= 0; i--) { rows[i].parentNode.removeChild(rows[i]); }
  }

  function openDay(day) {
    var open = field(day, "open");
    open.checked = true;
    if (!field(day, "start").value) { field(day, "start").value = "09:00"; }
    if (!field(day, "end").value) { field(day, "end").value = "17:00"; }
  }

  function copyMonday(targets) {
    var open = field(0, "open").checked;
    var rows = breaks(0);
    var spans = [];
    for (var i = 0; i < rows.length; i++) {
      spans.push([rows[i].querySelector("input[name$='-start']").value,
                  rows[i].querySelector("input[name$='-end']").value]);
    }
    targets.forEach(function (day) {
      field(day, "open").checked = open;
      field(day, "start").value = field(0, "start").value;
      field(day, "end").value = field(0, "end").value;
      clearBreaks(day);
      spans.forEach(function (span) { addBreak(day, span[0], span[1]); });
    });
  }

  function preview() {
    for (var day = 0; day < 7; day++) {
      var cell = document.querySelector("[data-preview-day='" + day + "']");
      if (!cell) { continue; }
      if (!field(day, "open").checked) { cell.textContent = "Closed"; continue; }
      var start = field(day, "start").value, end = field(day, "end").value;
      if (!start || !end) { cell.textContent = "hours missing"; continue; }
      var spans = [];
      var rows = breaks(day);
      for (var i = 0; i < rows.length; i++) {
        var bs = rows[i].querySelector("input[name$='-start']").value;
        var be = rows[i].querySelector("input[name$='-end']").value;
        if (bs && be) { spans.push([bs, be]); }
      }
      spans.sort();
      var parts = [], cursor = start;
      spans.forEach(function (span) {
        if (span[0] > cursor) { parts.push(cursor + "–" + (span[0] < end ? span[0] : end)); }
        if (span[1] > cursor) { cursor = span[1]; }
      });
      if (cursor < end) { parts.push(cursor + "–" + end); }
      cell.textContent = parts.join(", ") || "Closed";
    }
  }

  function partDay(box) {
    var times = box.closest(".schedule-override").querySelector(".schedule-part-day");
    if (times) { times.hidden = box.checked; }
  }

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button[type='submit']");
    if (!button) { return; }
    var name = button.getAttribute("name");
    if (name === "add_break") {
      event.preventDefault();
      var day = parseInt(button.value, 10);
      openDay(day);
      var row = addBreak(day, breaks(day).length ? "" : "12:00", breaks(day).length ? "" : "13:00");
      row.querySelector("input").focus();
      say("Break added on " + WEEKDAYS[day] + ".");
    } else if (name === "remove_break") {
      event.preventDefault();
      var which = parseInt(button.value, 10);
      var gone = button.closest(".schedule-break");
      gone.parentNode.removeChild(gone);
      field(which, "open").focus();
      say("Break removed on " + WEEKDAYS[which] + ".");
    } else if (name === "copy_weekdays") {
      event.preventDefault();
      copyMonday([1, 2, 3, 4]);
      say("Monday's hours copied to Tuesday to Friday.");
    } else if (name === "copy_all") {
      event.preventDefault();
      copyMonday([1, 2, 3, 4, 5, 6]);
      say("Monday's hours copied to every day.");
    } else {
      return;
    }
    preview();
  });

  form.addEventListener("change", function (event) {
    var target = event.target;
    var match = /^days-(\d)-open$/.exec(target.id || "");
    if (match && target.checked) { openDay(parseInt(match[1], 10)); }
    if (target.hasAttribute("data-whole-day")) { partDay(target); }
    preview();
  });
  form.addEventListener("input", preview);

  var wholeDays = form.querySelectorAll("[data-whole-day]");
  for (var i = 0; i < wholeDays.length; i++) { partDay(wholeDays[i]); }
  preview();
})();
