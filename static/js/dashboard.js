/* Dashboard charts (Chart.js from static/vendor, no CDN) and filter niceties. Data comes from a
   <script type="application/json" id="chart-data"> block; each <canvas data-chart="..."> names its chart. */
(function () {
  "use strict";

  var C = {
    primary: "#2563eb", primarySoft: "rgba(37, 99, 235, .14)", danger: "#dc2626", purple: "#7c3aed",
    amber: "#d97706", green: "#16a34a", teal: "#0891b2", slate: "#64748b", grid: "#eef1f6", text: "#475569"
  };
  var PALETTE = ["#2563eb", "#7c3aed", "#0891b2", "#16a34a", "#d97706", "#db2777", "#4f46e5", "#94a3b8"];

  function compact(n) {
    if (n === null || n === undefined) return "";
    var a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(1).replace(/\.0$/, "") + "B";
    if (a >= 1e6) return (n / 1e6).toFixed(1).replace(/\.0$/, "") + "M";
    if (a >= 1e3) return (n / 1e3).toFixed(1).replace(/\.0$/, "") + "k";
    return String(Math.round(n * 100) / 100);
  }
  function ms(v) {
    if (v === null || v === undefined) return "—";
    return v >= 1000 ? (v / 1000).toFixed(2).replace(/\.00$/, "") + " s" : Math.round(v) + " ms";
  }
  function usd(v) {
    if (v === 0) return "$0";
    if (v >= 0.01) return "$" + v.toFixed(2);
    return "$" + v.toPrecision(2);
  }

  /* A line through one value draws nothing (one hour of traffic, a new key): show that value as a point. */
  function lonePoint(dataset) {
    var values = dataset.data.filter(function (v) { return v !== null && v !== undefined; });
    if (values.length === 1) {
      dataset.pointRadius = 4;
      dataset.pointHoverRadius = 6;
      dataset.pointBackgroundColor = dataset.borderColor;
      dataset.pointBorderColor = "#fff";
      dataset.pointBorderWidth = 1.5;
      dataset.clip = false;  /* the latest hour sits on the chart's edge: draw all of its point */
    }
    return dataset;
  }

  function baseOptions(extra) {
    var o = {
      responsive: true, maintainAspectRatio: false, animation: false, normalized: true,
      elements: { line: { cubicInterpolationMode: "monotone" } },
      interaction: { mode: "index", intersect: false },
      layout: { padding: { top: 6, right: 6 } },
      plugins: {
        legend: { position: "bottom", align: "start", labels: { usePointStyle: true, pointStyle: "rectRounded", boxWidth: 8, boxHeight: 8, padding: 14, color: C.text, font: { size: 12 } } },
        tooltip: { backgroundColor: "#0f172a", padding: 10, cornerRadius: 8, titleFont: { size: 12, weight: "600" }, bodyFont: { size: 12 }, boxPadding: 4 }
      },
      scales: {
        x: { grid: { display: false }, border: { color: C.grid }, ticks: { color: C.text, font: { size: 11 }, maxRotation: 0, autoSkip: true, autoSkipPadding: 14 } },
        y: { beginAtZero: true, grid: { color: C.grid }, border: { display: false }, ticks: { color: C.text, font: { size: 11 }, maxTicksLimit: 6, callback: function (v) { return compact(v); } } }
      }
    };
    return Object.assign(o, extra || {});
  }

  var builders = {
    requests: function (d) {
      var opts = baseOptions();
      opts.scales.x.stacked = true;
      opts.scales.y.stacked = true;
      return { type: "bar", data: { labels: d.labels, datasets: [
        { label: "Succeeded", data: d.requests_ok, backgroundColor: C.primary, borderRadius: 3, maxBarThickness: 26, stack: "r" },
        { label: "Errors", data: d.requests_err, backgroundColor: C.danger, borderRadius: 3, maxBarThickness: 26, stack: "r" }
      ] }, options: opts };
    },
    tokens: function (d) {
      var opts = baseOptions();
      opts.scales.y.stacked = true;
      return { type: "line", data: { labels: d.labels, datasets: [
        { label: "Prompt", data: d.prompt_tokens, borderColor: C.primary, backgroundColor: "rgba(37, 99, 235, .16)", fill: "origin", tension: .3, pointRadius: 0, borderWidth: 1.5 },
        { label: "Completion", data: d.completion_tokens, borderColor: C.purple, backgroundColor: "rgba(124, 58, 237, .30)", fill: "-1", tension: .3, pointRadius: 0, borderWidth: 1.5 }
      ] }, options: opts };
    },
    latency: function (d) {
      var opts = baseOptions();
      opts.scales.y.ticks.callback = function (v) { return ms(v); };
      opts.plugins.tooltip.callbacks = { label: function (c) { return " " + c.dataset.label + ": " + ms(c.parsed.y); } };
      return { type: "line", data: { labels: d.labels, datasets: [
        lonePoint({ label: "Median", data: d.p50, borderColor: C.primary, backgroundColor: C.primary, tension: .3, pointRadius: 0, borderWidth: 2, spanGaps: true }),
        lonePoint({ label: "p95", data: d.p95, borderColor: C.amber, backgroundColor: C.amber, tension: .3, pointRadius: 0, borderWidth: 2, borderDash: [5, 4], spanGaps: true })
      ] }, options: opts };
    },
    errors: function (d) {
      var opts = baseOptions();
      opts.scales.y.ticks.callback = function (v) { return v + "%"; };
      opts.scales.y.suggestedMax = 5;
      opts.plugins.legend.display = false;
      opts.plugins.tooltip.callbacks = { label: function (c) { return " Error rate: " + (c.parsed.y === null ? "—" : c.parsed.y.toFixed(2) + "%"); } };
      return { type: "line", data: { labels: d.labels, datasets: [
        lonePoint({ label: "Error rate", data: d.error_rate, borderColor: C.danger, backgroundColor: "rgba(220, 38, 38, .10)", fill: true, tension: .3, pointRadius: 0, borderWidth: 2, spanGaps: true })
      ] }, options: opts };
    },
    "by-key": function (d) {
      var opts = baseOptions({ indexAxis: "y" });
      opts.scales = {
        x: { beginAtZero: true, stacked: true, grid: { color: C.grid }, border: { display: false }, ticks: { color: C.text, font: { size: 11 }, maxTicksLimit: 5, callback: function (v) { return compact(v); } } },
        y: { stacked: true, grid: { display: false }, border: { color: C.grid }, ticks: { color: C.text, font: { size: 12 }, callback: function (v) { var l = this.getLabelForValue(v); return l.length > 28 ? l.slice(0, 27) + "…" : l; } } }
      };
      var ok = d.by_key.requests.map(function (r, i) { return r - d.by_key.errors[i]; });
      return { type: "bar", data: { labels: d.by_key.labels, datasets: [
        { label: "Succeeded", data: ok, backgroundColor: C.primary, borderRadius: 3, maxBarThickness: 22 },
        { label: "Errors", data: d.by_key.errors, backgroundColor: C.danger, borderRadius: 3, maxBarThickness: 22 }
      ] }, options: opts };
    },
    "by-model": function (d) {
      var opts = baseOptions();
      delete opts.scales;
      opts.cutout = "64%";
      opts.interaction = { mode: "nearest", intersect: true };
      opts.plugins.legend.position = "right";
      opts.plugins.legend.align = "center";
      opts.plugins.tooltip.callbacks = { label: function (c) { return " " + c.label + ": " + compact(c.parsed) + " tokens"; } };
      return { type: "doughnut", data: { labels: d.by_model.labels, datasets: [
        { data: d.by_model.tokens, backgroundColor: PALETTE, borderColor: "#fff", borderWidth: 2, hoverOffset: 4 }
      ] }, options: opts };
    },
    cost: function (d) {
      var opts = baseOptions();
      opts.plugins.legend.display = false;
      opts.scales.y.ticks.callback = function (v) { return usd(v); };
      opts.plugins.tooltip.callbacks = { label: function (c) { return " Cost: " + usd(c.parsed.y) + " · " + compact(d.tokens[c.dataIndex]) + " tokens"; } };
      return { type: "bar", data: { labels: d.labels, datasets: [
        { label: "Cost", data: d.cost, backgroundColor: C.green, borderRadius: 4, maxBarThickness: 22 }
      ] }, options: opts };
    }
  };

  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = C.text;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var build = builders[canvas.dataset.chart];
      if (!build) return;
      try {
        canvas._chart = new Chart(canvas, build(data));
        canvas.dataset.drawn = "true";
      } catch (e) {
        canvas.dataset.drawn = "error";
        if (window.console) console.error(e);
      }
    });
  }

  /* Filter forms submit on change; empty fields are left out of the URL. */
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.hasAttribute("data-autosubmit") && event.target.matches("select")) form.requestSubmit();
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-clean-query")) return;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && !el.value) el.disabled = true;
    });
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-clean-query] [disabled]").forEach(function (el) { el.disabled = false; });
  });

  /* Sessions list: "Live" refreshes the status counts, the rows and the pagination every few seconds while it is
     on and the tab is visible, swapping them in place (no reload); rows that were not there before are
     highlighted. The choice is remembered for the next visit. */
  var LIVE_KEY = "sequrity.sessions.live";
  var LIVE_INTERVAL = 4000;

  function remember(on) {
    try { window.localStorage.setItem(LIVE_KEY, on ? "on" : "off"); } catch (e) { /* private mode */ }
  }
  function remembered() {
    try { return window.localStorage.getItem(LIVE_KEY) === "on"; } catch (e) { return false; }
  }

  function swapRows(doc) {
    var body = document.getElementById("session-rows"), next = doc.getElementById("session-rows");
    if (!body || !next) return;
    var before = {};
    Array.prototype.forEach.call(body.rows, function (row) { before[row.dataset.sessionId] = true; });
    body.innerHTML = next.innerHTML;
    Array.prototype.forEach.call(body.rows, function (row) {
      if (row.dataset.sessionId && !before[row.dataset.sessionId]) row.classList.add("is-new");
    });
    var wrap = body.closest(".table-wrap");
    if (wrap && window.SequrityTables) window.SequrityTables.fitOne(wrap);
  }

  function swapPart(doc, id) {
    var now = document.getElementById(id), next = doc.getElementById(id);
    if (now && next && now.innerHTML !== next.innerHTML) now.innerHTML = next.innerHTML;
  }

  function live() {
    var box = document.getElementById("live"), toggle = document.getElementById("live-toggle");
    if (!box || !toggle || !window.fetch || !window.DOMParser) return;
    var status = document.getElementById("live-status");
    var url = box.dataset.liveUrl, timer = null, last = null, failures = 0, inFlight = false;
    box.hidden = false;

    function schedule(ms) {
      window.clearTimeout(timer);
      timer = toggle.checked && !document.hidden ? window.setTimeout(refresh, ms) : null;
    }
    function refresh() {
      if (inFlight || !toggle.checked) return;
      inFlight = true;
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" }, cache: "no-store" })
        .then(function (response) {
          if (response.redirected || !response.ok) throw new Error(response.redirected ? "signed out" : "HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          failures = 0;
          if (html !== last) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            swapPart(doc, "status-tabs");
            swapRows(doc);
            swapPart(doc, "session-pagination");
            last = html;
          }
          status.textContent = "Updated " + new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
          box.dataset.refreshed = String((Number(box.dataset.refreshed) || 0) + 1);
        })
        .catch(function (error) {
          failures += 1;
          status.textContent = String(error.message) === "signed out" ? "Signed out: reload the page" : "Cannot reach the server; retrying";
        })
        .then(function () {
          inFlight = false;
          schedule(Math.min(LIVE_INTERVAL * Math.pow(2, failures), 30000));
        });
    }
    function setLive(on) {
      toggle.checked = on;
      box.classList.toggle("on", on);
      remember(on);
      if (on) refresh();
      else { window.clearTimeout(timer); status.textContent = ""; }
    }
    toggle.addEventListener("change", function () { setLive(toggle.checked); });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); else schedule(0); });
    setLive(remembered());
  }

  function start() {
    draw();
    live();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
