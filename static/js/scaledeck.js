// ScaleDeck page glue. No inline scripts: behaviour hangs off data attributes.
//
// Charts: a fragment ships a figure as `{{ figure|json_script:"some-id" }}` next to
// `<div class="plotly-chart" data-figure="some-id"></div>`; this draws it with Plotly.newPlot
// whenever that markup arrives (page load or HTMX swap). A list of figures on one time range
// (`<div data-figures="some-id">`, the deployment page's panels) is drawn one panel at a time:
// see drawPanels.
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

  // A list whose filter was refused answers 400 with the notice naming the parameter in place of
  // its rows (core.htmx.render_filtered): swap it in like any answer, so the notice shows.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status === 400 && xhr.getResponseHeader("X-ScaleDeck-Filter-Errors")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  var PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  function matching(root, selector) {
    var found = Array.from(root.querySelectorAll(selector));
    if (root.matches && root.matches(selector)) found.unshift(root);
    return found;
  }

  function drawCharts(root) {
    if (!root || !root.querySelectorAll) return;
    var single = matching(root, "[data-figure]");
    var lists = matching(root, "[data-figures]");
    // The panels' boxes are laid out now, before plotly.js arrives, so the page does not jump.
    var groups = lists.map(panelBoxes).filter(Boolean);
    if (single.length || groups.length) {
      whenPlotlyLoaded(function () {
        single.forEach(drawFigure);
        groups.forEach(drawPanels);
      });
    }
  }

  function plotlyMissing(el) {
    if (typeof window.Plotly !== "undefined") return false;
    el.textContent = "Charts could not load (plotly.js is missing).";
    return true;
  }

  // One newPlot per figure, drawn once: the figures give their margins (core/charts turns plotly's
  // automargin off), so plotly.js does not measure and redraw; `responsive` redraws only when the
  // window is resized.
  function drawFigure(el) {
    var source = document.getElementById(el.getAttribute("data-figure"));
    if (!source || plotlyMissing(el)) return;
    var figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(el, figure.data, figure.layout, PLOT_CONFIG);
  }

  // One box per figure of a `data-figures` list, as high as its figure will be.
  function panelBoxes(container) {
    var source = document.getElementById(container.getAttribute("data-figures"));
    if (!source || container.children.length) return null;
    var figures = JSON.parse(source.textContent);
    var boxes = figures.map(function (figure) {
      var box = document.createElement("div");
      box.className = "plotly-chart chart-panel";
      box.style.minHeight = (figure.layout.height || 300) + "px";
      box.setAttribute("role", "img");
      box.setAttribute("aria-label", (figure.layout.title && figure.layout.title.text) || "chart");
      container.appendChild(box);
      return box;
    });
    return { container: container, figures: figures, boxes: boxes };
  }

  // Draws a list of panels on one time range without holding the browser for all of them at once:
  // the first panel at once, then one panel per animation frame, those in (or near) view first,
  // the others while the browser is idle; a panel scrolled into view before its turn goes next.
  // Each drawn box gets `data-drawn`. Zooming or panning the time axis of one panel applies the
  // same range to every other (they were one figure with shared axes before).
  function drawPanels(group) {
    if (plotlyMissing(group.container)) return;
    var pending = group.boxes.slice();
    var near = new Set();
    var busy = false; // a panel is being drawn, or its turn is scheduled
    var idleRequest = null;
    var zoom = { range: null, busy: false, whole: (group.figures[0].layout.xaxis || {}).range };
    var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) near.add(entry.target); else near.delete(entry.target);
      });
      schedule();
    }, { rootMargin: "50% 0px" }) : null;
    if (observer) pending.forEach(function (box) { observer.observe(box); });

    function next() {
      for (var i = 0; i < pending.length; i++) if (near.has(pending[i])) return pending.splice(i, 1)[0];
      return pending.shift();
    }
    function draw(box) {
      var figure = group.figures[group.boxes.indexOf(box)];
      if (observer) observer.unobserve(box);
      near.delete(box);
      if (zoom.range) figure.layout.xaxis = Object.assign({}, figure.layout.xaxis, { range: zoom.range });
      return window.Plotly.newPlot(box, figure.data, figure.layout, PLOT_CONFIG).then(function () {
        box.setAttribute("data-drawn", "");
        box.on("plotly_relayout", function (change) { followZoom(box, change); });
      });
    }
    function step() {
      if (!pending.length || !group.container.isConnected) {
        busy = false;
        return;
      }
      draw(next()).then(done, done);
    }
    function done() {
      busy = false;
      schedule();
    }
    function schedule() {
      var inView = pending.some(function (box) { return near.has(box); });
      if (idleRequest !== null && inView) { // waiting for idle time, but a panel came into view
        window.cancelIdleCallback(idleRequest);
        idleRequest = null;
        busy = false;
      }
      if (busy || !pending.length) return;
      busy = true;
      if (inView || !window.requestIdleCallback) {
        window.requestAnimationFrame(function () { setTimeout(step, 0); });
      } else {
        idleRequest = window.requestIdleCallback(function () { idleRequest = null; step(); }, { timeout: 1000 });
      }
    }
    function followZoom(source, change) {
      var range;
      if ("xaxis.range[0]" in change) range = [change["xaxis.range[0]"], change["xaxis.range[1]"]];
      else if (change["xaxis.range"]) range = change["xaxis.range"];
      else if (change["xaxis.autorange"]) range = zoom.whole;
      if (!range || zoom.busy) return;
      zoom.range = range;
      zoom.busy = true;
      var others = group.boxes.filter(function (box) { return box !== source && box.hasAttribute("data-drawn"); });
      Promise.all(others.map(function (box) { return window.Plotly.relayout(box, { "xaxis.range": range }); }))
        .finally(function () { zoom.busy = false; });
    }

    busy = true;
    step();
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
