/* Live price of the configuration being edited in the Configure defences form: base + architecture + each
   enabled defence, per 1M tokens. Reads the features JSON (kept in sync with the simple fields by
   configure.js), so it prices exactly what the server will store. */
(function () {
  "use strict";
  var box = document.getElementById("price-estimate");
  var source = document.getElementById("price-table");
  var form = document.getElementById("configure-form");
  if (!box || !source || !form) return;
  var table = JSON.parse(source.textContent);
  var total = box.querySelector("[data-price-total]");

  function features() {
    var doc = form.querySelector("[name=features_json]");
    if (doc) { try { return JSON.parse(doc.value || "{}"); } catch (e) { /* fall back to the fields */ } }
    var arch = form.querySelector("input[name=arch]:checked");
    var names = [];
    Object.keys(table.prices).forEach(function (code) {
      var box = form.querySelector("input[type=checkbox][name='" + code + "']");
      if (box && box.checked) names.push(code);
    });
    return { agent_arch: arch ? arch.value : "", content_classifiers: names.map(function (n) { return { name: n }; }) };
  }

  function money(v) {  /* like the server's |usd filter: $1.20 · $0.31 · $0.0105 */
    if (v >= 1) return "$" + v.toFixed(2);
    var s = v.toFixed(v >= 0.01 ? 4 : 6).replace(/0+$/, "");
    if (s.split(".")[1].length < 2) s = v.toFixed(2);
    return "$" + s;
  }

  function update() {
    var f = features() || {};
    var arch = f.agent_arch || ((form.querySelector("input[name=arch]:checked") || {}).value) || "";
    var parts = [["base", table.prices.base || 0]];
    if (arch) parts.push([arch, table.prices[arch] || 0]);
    (f.content_classifiers || []).concat(f.content_blockers || []).forEach(function (d) {
      if (d && d.name) parts.push([d.name, table.prices[d.name] || 0]);
    });
    var sum = parts.reduce(function (a, p) { return a + p[1]; }, 0);
    total.textContent = money(sum);
    box.title = parts.map(function (p) { return (table.labels[p[0]] || p[0]) + " $" + p[1]; }).join(" + ");
    box.hidden = false;
  }
  form.addEventListener("change", function () { window.setTimeout(update, 0); });
  form.addEventListener("input", function () { window.setTimeout(update, 0); });
  update();
})();
