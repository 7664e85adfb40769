/* Configure page: "What would this policy have done?" and the versions panel.
 *
 * The dry-run posts the whole configure form (so the policy replayed is exactly the one Save would store) to
 * the dry-run endpoint, which saves nothing, and shows the fragment it returns. Diff links load the diff
 * fragment in place; revert buttons are plain form posts (they work without this script).
 */
(function () {
  "use strict";

  function dryRun(panel) {
    var button = document.getElementById("dryrun-button");
    var status = document.getElementById("dryrun-status");
    var result = document.getElementById("dryrun-result");
    var limit = document.getElementById("dryrun-limit");
    var form = document.getElementById("configure-form");
    button.addEventListener("click", function () {
      // Let an editor that mirrors into the form's textareas write its text first.
      form.dispatchEvent(new CustomEvent("configure:sync", { bubbles: true }));
      var data = new FormData(form);
      data.set("limit", limit.value);
      button.disabled = true;
      status.classList.remove("error");
      status.textContent = "Replaying recorded tool calls…";
      fetch(panel.dataset.url, { method: "POST", body: data, credentials: "same-origin",
                                 headers: { "X-Requested-With": "fetch" } })
        .then(function (resp) { return resp.json().then(function (body) { return { ok: resp.ok, body: body }; }); })
        .then(function (r) {
          if (!r.ok) {
            status.classList.add("error");
            var fields = Object.keys(r.body.errors || {}).map(function (name) {
              return name + ": " + r.body.errors[name].join(" ");
            });
            status.textContent = fields.length ? fields.join(" — ") : (r.body.error || "The dry-run failed.");
            result.innerHTML = "";
            return;
          }
          status.textContent = "";
          result.innerHTML = r.body.html;
        })
        .catch(function () {
          status.classList.add("error");
          status.textContent = "The dry-run could not be run (network error).";
        })
        .then(function () { button.disabled = false; });
    });
  }

  function versions(panel) {
    var box = document.getElementById("version-diff");
    panel.addEventListener("click", function (ev) {
      var link = ev.target.closest("[data-version-diff-link]");
      if (!link) return;
      ev.preventDefault();
      fetch(link.href, { credentials: "same-origin" })
        .then(function (resp) { return resp.text(); })
        .then(function (html) { box.innerHTML = html; box.scrollIntoView({ block: "nearest" }); });
    });
  }

  var dry = document.getElementById("policy-dryrun");
  if (dry) dryRun(dry);
  var ver = document.getElementById("policy-versions");
  if (ver) versions(ver);
})();
