// Back-office behaviour that Flask-Admin wires with inline handlers, moved here so that the back
// office's Content-Security-Policy needs no 'unsafe-inline' script.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-action], a.filter, button[data-confirm], [data-inline-add]") : null;
    if (!target) {
      return;
    }
    if (target.hasAttribute("data-inline-add")) {
      // "Add a question" under an inline list (a service's intake questions): form.js's faForm adds the row.
      event.preventDefault();
      if (window.faForm) {
        window.faForm.addInlineField(target, target.getAttribute("data-inline-add"));
        labelInlineFields();
        enhanceInlineAdd();
      }
    } else if (target.hasAttribute("data-action")) {
      // The "With selected" menu: run the list's bulk action (actions.js defines modelActions).
      event.preventDefault();
      if (window.modelActions) {
        window.modelActions.execute(target.getAttribute("data-action"));
      }
    } else if (target.matches("a.filter")) {
      // "Add filter" items: bs4_filters.js adds the filter row; do not follow the link.
      event.preventDefault();
    } else if (target.hasAttribute("data-confirm") && !window.confirm(target.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // Name the filter controls that bs4_filters.js builds without labels.
  function labelFilters() {
    var rows = document.querySelectorAll("#filter_form table.filters tr");
    Array.prototype.forEach.call(rows, function (row) {
      var name = (row.querySelector(".remove-filter") || {}).textContent || "Filter";
      name = name.replace(/\u00d7/g, "").trim();
      var remove = row.querySelector(".remove-filter");
      if (remove && !remove.getAttribute("aria-label")) {
        remove.setAttribute("aria-label", "Remove the filter " + name);
        remove.setAttribute("role", "button");
      }
      Array.prototype.forEach.call(row.querySelectorAll("select.filter-op"), function (el) {
        el.setAttribute("aria-label", name + ": how to compare");
      });
      Array.prototype.forEach.call(row.querySelectorAll("input.filter-val, select.filter-val"), function (el) {
        if (el.type !== "hidden") {
          el.setAttribute("aria-label", name + ": value");
        }
      });
      Array.prototype.forEach.call(row.querySelectorAll(".select2-selection"), function (el) {
        el.setAttribute("aria-label", name + ": how to compare");
      });
    });
  }

  // The schedule editor: add and remove break rows in place (the buttons also work without JS,
  // by posting the form back with one more or one fewer row).
  function scheduleEditor() {
    var form = document.querySelector("form.schedule-form");
    if (!form) {
      return;
    }
    form.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button[name=remove_break]") : null;
      if (!button) {
        return;
      }
      var row = button.closest(".schedule-break");
      if (row) {
        event.preventDefault();
        Array.prototype.forEach.call(row.querySelectorAll("input"), function (input) { input.value = ""; });
        row.hidden = true;
      }
    });
  }

  // Select2 draws a "remove" link for each chosen item (a service on a provider) with no text.
  function labelSelect2() {
    Array.prototype.forEach.call(document.querySelectorAll(".select2-search-choice-close:not([aria-label])"),
      function (el) {
        var item = el.parentNode ? el.parentNode.textContent.trim() : "";
        el.setAttribute("aria-label", "Remove " + (item || "this choice"));
        el.setAttribute("role", "button");
      });
  }

  // Rows that form.js adds from its template keep the template's label targets ("label" for an input
  // renamed "questions-0-label"): point each label at its renamed field, and name the remove links.
  function labelInlineFields() {
    Array.prototype.forEach.call(document.querySelectorAll(".inline-field-list .inline-field"), function (row) {
      Array.prototype.forEach.call(row.querySelectorAll("label[for]"), function (label) {
        var wanted = label.getAttribute("for");
        if (document.getElementById(wanted)) {
          return;
        }
        var field = row.querySelector('[id$="-' + wanted + '"]');
        if (field) {
          label.setAttribute("for", field.id);
        }
      });
      Array.prototype.forEach.call(row.querySelectorAll(".inline-remove-field:not([aria-label])"), function (link) {
        link.setAttribute("aria-label", "Remove this row");
        link.setAttribute("role", "button");
      });
    });
  }

  // Issue 28: an inline list's "Add" button submits the form when there is no script (the server
  // adds the row); here the script adds it, so the button stops being a submit button (and Enter in
  // a field saves the form rather than adding a row).
  function enhanceInlineAdd() {
    Array.prototype.forEach.call(document.querySelectorAll("button[data-inline-add]"), function (button) {
      button.type = "button";
      button.removeAttribute("name");
    });
  }

  function ready() {
    enhanceInlineAdd();
    labelInlineFields();
    labelFilters();
    labelSelect2();
    scheduleEditor();
    if (window.MutationObserver) {
      new MutationObserver(labelSelect2).observe(document.body, { childList: true, subtree: true });
    }
    var table = document.querySelector("#filter_form table.filters");
    if (table && window.MutationObserver) {
      new MutationObserver(labelFilters).observe(table, { childList: true, subtree: true });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
