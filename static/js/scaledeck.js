// ScaleDeck page glue. No inline scripts: behaviour hangs off data attributes.
//
// Charts: a fragment ships a figure as `{{ figure|json_script:"some-id" }}` next to
// `<div class="plotly-chart" data-figure="some-id"></div>`; this draws it with Plotly.newPlot
// whenever that markup arrives (page load or HTMX swap).
(function () {
  "use strict";

  // plotly.js loads `async` (marked data-plotly), so the page and its chart fragments do not wait
  // for 1.5 MB of script to parse; a figure that arrives first waits for it instead.
  function whenPlotlyLoaded(callback) {
    var tag = document.querySelector("script[data-plotly]");
    if (typeof window.Plotly !== "undefined" || !tag) return callback();
    tag.addEventListener("load", callback, { once: true });
    tag.addEventListener("error", callback, { once: true });
  }

  function drawCharts(root) {
    if (!root || !root.querySelectorAll) return;
    var targets = root.querySelectorAll("[data-figure]");
    if (root.matches && root.matches("[data-figure]")) targets = [root].concat(Array.from(targets));
    if (targets.length) whenPlotlyLoaded(function () { drawFigures(targets); });
  }

  function drawFigures(targets) {
    Array.prototype.forEach.call(targets, function (el) {
      var source = document.getElementById(el.getAttribute("data-figure"));
      if (!source) return;
      if (typeof window.Plotly === "undefined") {
        el.textContent = "Charts could not load (plotly.js is missing).";
        return;
      }
      // One newPlot per figure, drawn once: the figures give their margins (core/charts.py turns
      // plotly's automargin off), so plotly.js does not measure and redraw; `responsive` redraws
      // only when the window is resized.
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(el, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
        modeBarButtonsToRemove: ["select2d", "lasso2d"],
      });
    });
  }

  // A fragment that fails to load says so, instead of "Loading…" forever; a failed poll keeps
  // the last good content and says since when it is stale.
  function showFailure(evt) {
    var target = evt.detail.target;
    if (!target) return;
    var xhr = evt.detail.xhr;
    var why = xhr && xhr.status ? "HTTP " + xhr.status : "no answer from the server";
    var when = new Date().toLocaleTimeString();
    if (target.querySelector(".loading")) {
      var box = document.createElement("p");
      box.className = "notice error";
      box.textContent = "Could not load this part (" + why + "). Reload the page to retry.";
      target.replaceChildren(box);
      return;
    }
    var note = target.previousElementSibling;
    if (!note || !note.classList.contains("refresh-failed")) {
      note = document.createElement("p");
      note.className = "notice warning refresh-failed";
      target.parentNode.insertBefore(note, target);
    }
    note.textContent = "Live refresh failed at " + when + " (" + why + "): the figures below are older.";
  }

  function clearFailure(evt) {
    var target = evt.detail.target;
    var note = target && target.previousElementSibling;
    if (note && note.classList.contains("refresh-failed") && evt.detail.successful) note.remove();
  }

  document.addEventListener("htmx:responseError", showFailure);
  document.addEventListener("htmx:sendError", showFailure);
  document.addEventListener("htmx:afterRequest", clearFailure);

  if (window.htmx) {
    // Runs for the page and for every swapped-in fragment (scripts are deferred: htmx is loaded first).
    window.htmx.onLoad(drawCharts);
  } else {
    document.addEventListener("DOMContentLoaded", function () { drawCharts(document.body); });
  }
})();
