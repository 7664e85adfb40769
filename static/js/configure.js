/* Configure defences: keeps the simple fields and the Advanced JSON documents in sync, live.
 *
 * The JSON documents are what the key stores (and the X-Features / X-Policy / X-Config headers carry).
 * A change of a simple field rewrites the JSON; a valid edit of the JSON re-renders the simple fields.
 * Switching the architecture swaps the policy/config documents for the new preset while they still equal
 * the old preset (the SQRT code is kept) - the server applies the same rule without JavaScript
 * (apikeys/forms.py).
 */
(function () {
  "use strict";
  var form = document.getElementById("configure-form");
  if (!form) return;

  var presets = JSON.parse(document.getElementById("presets-data").textContent);
  var CLASSIFIERS = ["toxicity_filter", "pii_redaction", "healthcare_topic_guardrail", "finance_topic_guardrail"];
  var BLOCKERS = ["url_blocker", "file_blocker"];
  var LABELS = {
    toxicity_filter: "Toxicity filter", pii_redaction: "PII redaction",
    healthcare_topic_guardrail: "Healthcare guardrail", finance_topic_guardrail: "Finance guardrail",
    url_blocker: "URL blocker", file_blocker: "File blocker"
  };
  var el = form.elements;
  var docs = { features: el.features_json, policy: el.policy_json, config: el.config_json };
  var code = el.policy_code;
  var summary = document.getElementById("config-summary");

  function clone(v) { return JSON.parse(JSON.stringify(v)); }
  function canon(v) {
    if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
    if (v && typeof v === "object") {
      return "{" + Object.keys(v).sort().map(function (k) { return JSON.stringify(k) + ":" + canon(v[k]); }).join(",") + "}";
    }
    return JSON.stringify(v);
  }
  function stripCode(policy) {
    var p = clone(policy || {});
    if (p.codes && typeof p.codes === "object") p.codes.code = "";
    return p;
  }
  function archValue() {
    var checked = form.querySelector('input[name="arch"]:checked');
    return checked ? checked.value : null;
  }
  var currentArch = archValue();

  var quiet = true;  // on load the server's own error is shown; the hint only follows later edits
  function hint(kind, show) {
    var field = docs[kind].closest(".field");
    var editor = docs[kind].closest("[data-code-editor]");
    var h = field && field.querySelector("[data-json-hint]");
    if (h) h.hidden = !show || quiet;
    if (editor) editor.classList.toggle("invalid", show);
  }
  function parse(kind) {
    var text = docs[kind].value;
    if (!text.trim()) return {};
    try {
      var v = JSON.parse(text);
      if (v && typeof v === "object" && !Array.isArray(v)) { hint(kind, false); return v; }
    } catch (e) { /* fall through */ }
    hint(kind, true);
    return null;
  }
  function write(kind, obj) {
    var text = JSON.stringify(obj, null, 2);
    if (docs[kind].value !== text) {
      docs[kind].value = text;
      if (window.SequrityEditors) window.SequrityEditors.refresh(docs[kind]);
    }
    hint(kind, false);
  }

  /* Switching architecture: presets follow while untouched (same rule as the server). */
  function swapPresets(oldArch, newArch) {
    if (!oldArch || !newArch || oldArch === newArch || !presets[oldArch] || !presets[newArch]) return;
    var config = parse("config");
    if (config && canon(config) === canon(presets[oldArch].config)) write("config", clone(presets[newArch].config));
    var policy = parse("policy");
    if (policy && canon(stripCode(policy)) === canon(stripCode(presets[oldArch].policy))) {
      var next = clone(presets[newArch].policy);
      next.codes.code = (policy.codes && policy.codes.code) || "";
      write("policy", next);
    }
  }

  /* Simple fields -> JSON. */
  function fieldsToFeatures() {
    var features = parse("features");
    if (!features) return;
    var arch = archValue();
    if (arch) features.agent_arch = arch;
    var classifiers = [];
    CLASSIFIERS.forEach(function (name) {
      if (!el[name].checked) return;
      var t = parseFloat(el[name + "_threshold"].value);
      var item = { name: name, threshold: isNaN(t) ? 0.5 : t };
      var mode = el[name + "_mode"].value;
      if (mode) item.mode = mode;
      classifiers.push(item);
    });
    var blockers = BLOCKERS.filter(function (n) { return el[n].checked; }).map(function (n) { return { name: n }; });
    if (classifiers.length) features.content_classifiers = classifiers; else delete features.content_classifiers;
    if (blockers.length) features.content_blockers = blockers; else delete features.content_blockers;
    write("features", features);
  }
  function codeToPolicy() {
    var policy = parse("policy");
    if (!policy) return;
    var value = code.value;
    if (policy.codes && typeof policy.codes === "object") policy.codes.code = value;
    else if (typeof policy.codes === "string" || value.trim()) policy.codes = { code: value, language: "sqrt" };
    write("policy", policy);
  }

  /* JSON -> simple fields. */
  function featuresToFields() {
    var features = parse("features");
    if (!features) return;
    var arch = features.agent_arch;
    if (arch && arch !== currentArch) {
      var radio = form.querySelector('input[name="arch"][value="' + arch + '"]');
      if (radio) { radio.checked = true; swapPresets(currentArch, arch); currentArch = arch; }
    }
    var items = Array.isArray(features.content_classifiers) ? features.content_classifiers : [];
    CLASSIFIERS.forEach(function (name) {
      var item = items.filter(function (c) { return c && c.name === name; })[0];
      el[name].checked = !!item;
      if (item) {
        el[name + "_threshold"].value = item.threshold === undefined || item.threshold === null ? 0.5 : item.threshold;
        var select = el[name + "_mode"], mode = item.mode || "";
        if (mode && !Array.prototype.some.call(select.options, function (o) { return o.value === mode; })) {
          select.add(new Option(mode, mode));
        }
        select.value = mode;
      }
    });
    var blockers = Array.isArray(features.content_blockers) ? features.content_blockers : [];
    BLOCKERS.forEach(function (name) {
      el[name].checked = blockers.some(function (b) { return b && b.name === name; });
    });
  }
  function policyToCode() {
    var policy = parse("policy");
    if (!policy) return;
    var value = typeof policy.codes === "string" ? policy.codes : (policy.codes && policy.codes.code) || "";
    if (code.value !== value) {
      code.value = value;
      if (window.SequrityEditors) window.SequrityEditors.refresh(code);
    }
  }

  function updateSummary() {
    if (!summary) return;
    var arch = archValue();
    var names = CLASSIFIERS.concat(BLOCKERS).filter(function (n) { return el[n].checked; });
    var archLabel = arch === "dual-llm" ? "Dual LLM" : arch === "single-llm" ? "Single LLM" : "No architecture";
    summary.innerHTML = "";
    var strong = document.createElement("strong");
    strong.textContent = archLabel;
    summary.appendChild(strong);
    summary.appendChild(document.createTextNode(
      " · " + (names.length ? names.map(function (n) { return LABELS[n]; }).join(", ") : "no extra defences")));
  }

  form.addEventListener("change", function (event) {
    var t = event.target;
    if (t.name === "arch") {
      swapPresets(currentArch, t.value);
      currentArch = t.value;
      fieldsToFeatures();
    } else if (CLASSIFIERS.concat(BLOCKERS).indexOf(t.name) >= 0 || /_(threshold|mode)$/.test(t.name)) {
      fieldsToFeatures();
    }
    updateSummary();
  });
  form.addEventListener("input", function (event) {
    var t = event.target;
    if (/_threshold$/.test(t.name)) fieldsToFeatures();
    else if (t === code) codeToPolicy();
    else if (t === docs.features) featuresToFields();
    else if (t === docs.policy) policyToCode();
    else if (t === docs.config) parse("config");
    updateSummary();
  });

  var deselect = form.querySelector('[data-select-defences="none"]');
  if (deselect) deselect.addEventListener("click", function () {
    CLASSIFIERS.forEach(function (n) { el[n].checked = false; });
    fieldsToFeatures();
    updateSummary();
  });

  var reset = document.getElementById("reset-preset");
  if (reset) reset.addEventListener("click", function () {
    var arch = archValue();
    if (!presets[arch]) return;
    var preset = clone(presets[arch]);
    write("features", preset.features);
    write("policy", preset.policy);
    write("config", preset.config);
    featuresToFields();
    policyToCode();
    updateSummary();
  });

  ["features", "policy", "config"].forEach(parse);  // flag a document re-rendered invalid after a failed save
  quiet = false;
  updateSummary();
})();

/* "Generate policy": asks the server for a compiled SQRT policy and puts it in the editor for review. */
(function () {
  "use strict";
  var box = document.getElementById("generate-policy");
  if (!box) return;
  var button = document.getElementById("gen-button");
  var status = document.getElementById("gen-status");
  var csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
  var dialog = document.getElementById("gen-confirm");

  /* Resolves true when the author agrees to replace the policy already in the editor (an in-page dialog;
     the browser's own confirm where <dialog> is missing). */
  function confirmReplace(generated) {
    if (!dialog || typeof dialog.showModal !== "function") {
      return Promise.resolve(window.confirm("Replace the policy in the editor with the generated one?"));
    }
    document.getElementById("gen-confirm-preview").textContent = generated;
    return new Promise(function (resolve) {
      var settled = false;
      function finish(answer) {
        if (settled) return;
        settled = true;
        dialog.removeEventListener("cancel", onCancel);
        dialog.querySelectorAll("[data-confirm]").forEach(function (b) { b.removeEventListener("click", onClick); });
        if (dialog.open) dialog.close();
        button.focus();
        resolve(answer);
      }
      function onClick(event) { finish(event.currentTarget.dataset.confirm === "replace"); }
      function onCancel(event) { event.preventDefault(); finish(false); }
      dialog.addEventListener("cancel", onCancel);
      dialog.querySelectorAll("[data-confirm]").forEach(function (b) { b.addEventListener("click", onClick); });
      dialog.showModal();
      dialog.querySelector("[data-confirm=keep]").focus();
    });
  }

  button.addEventListener("click", function () {
    var data = new FormData();
    data.append("description", document.getElementById("gen-description").value);
    data.append("tools", document.getElementById("gen-tools").value);
    data.append("provider", document.getElementById("gen-provider").value);
    data.append("model", document.getElementById("gen-model").value);
    data.append("provider_key", document.getElementById("gen-key").value);
    button.disabled = true;
    status.className = "small muted";
    status.textContent = "Generating…";
    fetch(box.dataset.url, { method: "POST", body: data, headers: { "X-CSRFToken": csrf ? csrf.value : "" },
                             credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) throw new Error(res.body.error || "Generation failed");
        var code = document.querySelector("textarea[name=policy_code]");
        var generated = res.body.policy;
        var current = code.value;
        var apply = function () {
          code.value = generated;
          code.dispatchEvent(new Event("input", { bubbles: true }));
          status.className = "small success";
          status.textContent = "Policy generated and compiled. Review it in the editor, then save.";
        };
        if (!current.trim() || current.trim() === generated.trim()) return apply();
        return confirmReplace(generated).then(function (replace) {
          if (replace) return apply();
          status.className = "small muted";
          status.textContent = "Kept your policy; the generated one was not put in the editor.";
        });
      })
      .catch(function (err) { status.className = "small error"; status.textContent = err.message; })
      .finally(function () { button.disabled = false; });
  });
})();
