/* The SQRT policy editor on Configure defences: CodeMirror 6 (static/vendor/codemirror-sqrt.js) over the
 * policy textarea, with SQRT highlighting, live diagnostics from the server (underlines, gutter markers and a
 * list under the editor) and completion of the tool and argument names the key's sessions have used.
 *
 * The textarea stays the form field: the editor writes every change back to it (with an "input" event, so
 * configure.js keeps the X-Policy document in sync) and follows it when a script or the Generate-policy
 * helper changes it. Without JavaScript, or if the bundle did not load, the plain textarea is used.
 */
(function () {
  "use strict";
  var CM = window.SequrityCodeMirror;
  var host = document.getElementById("policy-editor");
  if (!CM || !host) return;
  var frame = host.querySelector("[data-code-editor]");
  var area = frame && frame.querySelector("textarea");
  if (!area) return;
  var form = area.form;
  var problems = document.getElementById("policy-problems");
  var statusLine = document.getElementById("policy-status");
  var problemList = document.getElementById("policy-problem-list");
  var csrf = form && form.querySelector("input[name=csrfmiddlewaretoken]");

  /* ---- SQRT highlighting (a stream tokenizer; the server's parser is the authority on errors) ---- */
  var KEYWORDS = /^(?:let|tool|priority|must|hard|should|soft|allow|deny|when|always|result|session|before|after|not|and|or|in|overlaps|subset|superset|of|is|empty|universal|with|without|xor|minus|intersect|union|from|args|matching|like|length)$/;
  var TYPES = /^(?:bool|int|float|str|datetime)$/;
  var ATOMS = /^(?:true|false|inf)$/;
  var META = /^(?:tags|producers|consumers|value)$/;
  var sqrt = CM.StreamLanguage.define({
    name: "sqrt",
    startState: function () { return { inBlockComment: false, afterDot: false }; },
    token: function (stream, state) {
      if (state.inBlockComment) {
        if (stream.skipTo("*/")) { stream.next(); stream.next(); state.inBlockComment = false; } else stream.skipToEnd();
        return "comment";
      }
      if (stream.eatSpace()) return null;
      var afterDot = state.afterDot;
      state.afterDot = false;
      if (stream.match("///")) { stream.skipToEnd(); return "docComment"; }
      if (stream.match("//")) { stream.skipToEnd(); return "lineComment"; }
      if (stream.match("/*")) { state.inBlockComment = true; return "blockComment"; }
      if (stream.match(/^[rwd]"(?:[^"\\]|\\.)*"?/)) return "regexp";
      if (stream.match(/^"(?:[^"\\]|\\.)*"?/)) return "string";
      if (stream.match(/^@(?:result|session|args)?/)) return "self";
      if (stream.match(/^[+-]?inf\b/) || stream.match(/^-?[0-9]+(?:\.[0-9]+)?/)) return "number";
      if (stream.match(/^[A-Za-z_][A-Za-z0-9_]*/)) {
        var word = stream.current();
        if (afterDot && META.test(word)) return "propertyName";
        if (KEYWORDS.test(word)) return "keyword";
        if (TYPES.test(word)) return "typeName";
        if (ATOMS.test(word)) return "bool";
        if (stream.peek() === ".") return "variableName";
        return "variableName";
      }
      if (stream.match(/^(?:<\.\.<|<\.\.|\.\.<|\.\.|->|==|[|&^-]=)/)) return "operator";
      if (stream.eat(".")) { state.afterDot = true; return "punctuation"; }
      var ch = stream.next();
      if (/[{}()\[\]]/.test(ch)) return "bracket";
      if (/[;,]/.test(ch)) return "punctuation";
      return "operator";
    },
    languageData: { commentTokens: { line: "//", block: { open: "/*", close: "*/" } },
                    closeBrackets: { brackets: ["(", "[", "{", '"'] } }
  });
  var CEDAR_KEYWORDS = /^(?:permit|forbid|when|unless|principal|action|resource|context|has|like|in|is|if|then|else)$/;
  var cedar = CM.StreamLanguage.define({
    name: "cedar",
    startState: function () { return {}; },
    token: function (stream) {
      if (stream.eatSpace()) return null;
      if (stream.match("//")) { stream.skipToEnd(); return "lineComment"; }
      if (stream.match(/^"(?:[^"\\]|\\.)*"?/)) return "string";
      if (stream.match(/^@[A-Za-z_][A-Za-z0-9_]*/)) return "meta";
      if (stream.match(/^-?[0-9]+/)) return "number";
      if (stream.match(/^[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*(?=::)/)) return "typeName";
      if (stream.match(/^[A-Za-z_][A-Za-z0-9_]*/)) {
        var word = stream.current();
        if (CEDAR_KEYWORDS.test(word)) return "keyword";
        if (word === "true" || word === "false") return "bool";
        return "variableName";
      }
      var ch = stream.next();
      if (/[{}()\[\]]/.test(ch)) return "bracket";
      if (/[;,.:]/.test(ch)) return "punctuation";
      return "operator";
    },
    languageData: { commentTokens: { line: "//" } }
  });
  var t = CM.tags;
  var dark = frame.classList.contains("code-dark");
  var highlight = CM.HighlightStyle.define([
    { tag: t.keyword, color: dark ? "#c4b5fd" : "#7c3aed", fontWeight: "600" },
    { tag: [t.string], color: dark ? "#86efac" : "#15803d" },
    { tag: [t.regexp], color: dark ? "#fcd34d" : "#b45309" },
    { tag: [t.number, t.bool], color: dark ? "#fda4af" : "#be123c" },
    { tag: [t.typeName], color: dark ? "#67e8f9" : "#0e7490" },
    { tag: [t.self], color: dark ? "#f9a8d4" : "#be185d" },
    { tag: [t.propertyName], color: dark ? "#93c5fd" : "#1d4ed8" },
    { tag: [t.variableName], color: dark ? "#e2e8f0" : "#0f172a" },
    { tag: [t.comment, t.lineComment, t.blockComment], color: dark ? "#64748b" : "#64748b", fontStyle: "italic" },
    { tag: [t.docComment], color: dark ? "#94a3b8" : "#475569" },
    { tag: [t.operator, t.punctuation, t.bracket], color: dark ? "#cbd5e1" : "#334155" }
  ]);
  var theme = CM.EditorView.theme({
    "&": { backgroundColor: dark ? "#0f172a" : "#fbfcfe", color: dark ? "#e2e8f0" : "#0f172a" },
    ".cm-content": { caretColor: dark ? "#93c5fd" : "#1d4ed8" },
    ".cm-cursor, .cm-dropCursor": { borderLeftColor: dark ? "#93c5fd" : "#1d4ed8" },
    ".cm-gutters": { backgroundColor: dark ? "#0b1222" : "#f1f4f9", color: dark ? "#475569" : "#94a3b8", border: "none" },
    ".cm-activeLine": { backgroundColor: dark ? "rgba(148,163,184,.07)" : "rgba(37,99,235,.05)" },
    ".cm-activeLineGutter": { backgroundColor: dark ? "#111a2e" : "#e8eef8", color: dark ? "#cbd5e1" : "#334155" },
    "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": {
      backgroundColor: dark ? "rgba(96,165,250,.3)" : "rgba(37,99,235,.18)" },
    ".cm-lintRange-error": { backgroundPosition: "left bottom", backgroundSize: "6px 3px" },
    ".cm-tooltip": { backgroundColor: "#ffffff", color: "#0f172a", border: "1px solid #cbd5e1", borderRadius: "8px",
                     boxShadow: "0 8px 24px rgba(15,23,42,.18)", overflow: "hidden" },
    ".cm-tooltip-autocomplete > ul > li": { padding: "3px 10px 3px 6px" },
    ".cm-tooltip-autocomplete > ul > li[aria-selected]": { backgroundColor: "#2563eb", color: "#ffffff" },
    ".cm-completionDetail": { color: "#64748b", marginLeft: "10px" },
    "li[aria-selected] .cm-completionDetail": { color: "#dbeafe" },
    ".cm-completionMatchedText": { textDecoration: "none", fontWeight: "700" },
    ".cm-diagnostic": { padding: "6px 10px", whiteSpace: "pre-wrap" }
  }, { dark: dark });

  /* ---- positions: the server counts lines from 1 and columns in characters (code points) from 1 ---- */
  function offsetOf(doc, line, column) {
    var n = Math.min(Math.max(line || 1, 1), doc.lines);
    var l = doc.line(n);
    var units = Array.from(l.text).slice(0, Math.max((column || 1) - 1, 0)).join("").length;
    return l.from + Math.min(units, l.length);
  }

  function language() {
    var doc = form && form.elements.policy_json;
    if (doc) {
      try {
        var codes = JSON.parse(doc.value || "{}").codes;
        if (codes && typeof codes === "object" && codes.language) return String(codes.language).toLowerCase();
      } catch (e) { /* the Advanced document is being edited: keep SQRT */ }
    }
    return "sqrt";
  }

  /* ---- live diagnostics ---- */
  function setStatus(kind, text) {
    problems.hidden = false;
    statusLine.className = "policy-status small " + kind;
    statusLine.textContent = text;
  }
  function renderProblems(view, list) {
    problemList.textContent = "";
    list.forEach(function (d) {
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "policy-problem";
      var where = document.createElement("span");
      where.className = "where";
      where.textContent = "Line " + d.line + ", col " + d.column;
      var what = document.createElement("span");
      what.className = "what";
      what.textContent = d.message;
      button.appendChild(where);
      button.appendChild(what);
      if (d.expected && d.expected.length) {
        var expected = document.createElement("span");
        expected.className = "expected";
        var shown = d.expected.slice(0, 8).join(", ") + (d.expected.length > 8 ? ", …" : "");
        expected.textContent = "Expected: " + shown;
        button.appendChild(expected);
      }
      button.addEventListener("click", function () {
        var pos = offsetOf(view.state.doc, d.line, d.column);
        view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
        view.focus();
      });
      li.appendChild(button);
      problemList.appendChild(li);
    });
  }
  function lintSource(view) {
    var code = view.state.doc.toString();
    var lang = language();
    return fetch(host.dataset.diagnosticsUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
      body: JSON.stringify({ code: code, language: lang })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    }).then(function (res) {
      if (!res.ok) throw new Error(res.body.error || ("the server answered " + res.status));
      if (view.state.doc.toString() !== code) return [];  // stale: a newer check follows
      var found = res.body.diagnostics || [];
      renderProblems(view, found);
      var name = lang === "cedar" ? "Cedar" : "SQRT";
      if (!found.length) {
        setStatus("ok", code.trim() ? "No problems: the " + name + " policy compiles." :
          "Empty: the preset's default rules apply.");
      } else {
        setStatus("bad", found.length === 1 ? "1 problem" : found.length + " problems");
      }
      frame.classList.toggle("invalid", found.length > 0);
      return found.map(function (d) {
        var from = offsetOf(view.state.doc, d.from.line, d.from.column);
        var to = offsetOf(view.state.doc, d.to.line, d.to.column);
        var message = d.message + (d.expected && d.expected.length ?
          "\nExpected: " + d.expected.slice(0, 8).join(", ") + (d.expected.length > 8 ? ", …" : "") : "");
        return { from: Math.min(from, to), to: Math.max(from, to), severity: d.severity || "error",
                 source: lang === "cedar" ? "Cedar" : "SQRT", message: message };
      });
    }).catch(function (err) {
      setStatus("", "The policy could not be checked just now (" + err.message + "). It is checked again on save.");
      return [];
    });
  }

  /* ---- completion: tool and argument names from the key's recorded sessions, and the keywords ---- */
  var vocabulary = null;
  function loadVocabulary() {
    if (!vocabulary) {
      vocabulary = fetch(host.dataset.vocabularyUrl, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { tools: [] }; })
        .then(function (body) { return body.tools || []; })
        .catch(function () { vocabulary = null; return []; });
    }
    return vocabulary;
  }
  var KEYWORD_OPTIONS = ("tool let priority must hard should soft allow deny when always result session before after " +
    "not and or in overlaps is empty universal with without union intersect").split(" ").map(function (w) {
    return { label: w, type: "keyword" };
  }).concat([{ label: "subset of", type: "keyword" }, { label: "superset of", type: "keyword" }]);
  var META_OPTIONS = ["tags", "producers", "consumers", "value"].map(function (w) {
    return { label: w, type: "property" };
  });
  function currentTool(text) {
    var re = /\btool\s+"((?:[^"\\]|\\.)*)"/g, m, last = null;
    while ((m = re.exec(text))) last = m[1];
    return last;
  }
  function complete(context) {
    var line = context.state.doc.lineAt(context.pos);
    var before = line.text.slice(0, context.pos - line.from);
    var quoted = /\btool\s+"([^"]*)$/.exec(before) || /Action::"([^"]*)$/.exec(before);
    if (quoted) {
      return loadVocabulary().then(function (tools) {
        if (!tools.length) return null;
        return {
          from: context.pos - quoted[1].length, validFor: /^[^"]*$/,
          options: tools.map(function (tool) {
            return { label: tool.name, type: "function",
                     detail: tool.calls + (tool.calls === 1 ? " recorded call" : " recorded calls") };
          })
        };
      });
    }
    if (language() === "cedar") return null;  // tool names only: the rest is SQRT's vocabulary
    var dotted = /(@?[A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_]*)$/.exec(before);
    if (dotted) return { from: context.pos - dotted[2].length, options: META_OPTIONS, validFor: /^\w*$/ };
    var word = context.matchBefore(/[A-Za-z_][A-Za-z0-9_]*/);
    if (!word && !context.explicit) return null;
    var from = word ? word.from : context.pos;
    var tool = currentTool(context.state.sliceDoc(0, context.pos));
    return loadVocabulary().then(function (tools) {
      var args = [];
      tools.forEach(function (entry) {
        if (tool === null || entry.name === tool) {
          entry.args.forEach(function (name) {
            if (args.indexOf(name) < 0) args.push(name);
          });
        }
      });
      var argOptions = args.map(function (name) {
        return { label: name, type: "variable", boost: 5,
                 detail: tool ? "argument of " + tool : "recorded argument" };
      });
      return { from: from, options: argOptions.concat(KEYWORD_OPTIONS), validFor: /^\w*$/ };
    });
  }

  /* ---- the editor, mirrored into the textarea ---- */
  var languageMode = new CM.Compartment();
  function modeFor(name) {
    return [name === "cedar" ? cedar : sqrt,
            CM.EditorView.contentAttributes.of({ "aria-label": (name === "cedar" ? "Cedar" : "SQRT") + " policy" })];
  }
  var readOnly = area.matches(":disabled") || area.readOnly;
  var syncing = false;
  var extensions = [
    CM.lineNumbers(), CM.highlightActiveLineGutter(), CM.highlightSpecialChars(), CM.history(), CM.drawSelection(),
    CM.indentOnInput(), CM.bracketMatching(), CM.closeBrackets(), CM.highlightActiveLine(),
    CM.highlightSelectionMatches(), CM.indentUnit.of("    "),
    languageMode.of(modeFor(language())), CM.syntaxHighlighting(highlight), theme, CM.EditorView.lineWrapping,
    CM.lintGutter(), CM.linter(lintSource, { delay: 450 }),
    CM.autocompletion({ override: [complete], activateOnTyping: true }),
    CM.keymap.of([].concat(CM.closeBracketsKeymap, CM.defaultKeymap, CM.searchKeymap, CM.historyKeymap,
                           CM.completionKeymap, [CM.indentWithTab])),
    CM.EditorView.contentAttributes.of({ "aria-describedby": "policy-status" }),
    CM.EditorView.updateListener.of(function (update) {
      if (!update.docChanged || syncing) return;
      area.value = update.state.doc.toString();
      area.dispatchEvent(new Event("input", { bubbles: true }));
    })
  ];
  if (area.placeholder) extensions.push(CM.placeholder(area.placeholder));
  if (readOnly) extensions.push(CM.EditorState.readOnly.of(true), CM.EditorView.editable.of(false));

  var view = new CM.EditorView({
    state: CM.EditorState.create({ doc: area.value, extensions: extensions }),
    parent: frame
  });
  frame.classList.add("has-cm");
  area.tabIndex = -1;
  area.setAttribute("aria-hidden", "true");

  function followTextarea() {
    var text = area.value, current = view.state.doc.toString();
    if (text === current) return;
    syncing = true;
    try {
      view.dispatch({ changes: { from: 0, to: current.length, insert: text } });
    } finally {
      syncing = false;
    }
  }
  area.addEventListener("input", followTextarea);
  var editors = window.SequrityEditors;
  if (editors && editors.refresh) {
    var refresh = editors.refresh;
    editors.refresh = function (changed) {
      refresh(changed);
      if (changed === area) followTextarea();
    };
  }
  /* The section's label focuses the editor, not the hidden field. */
  document.querySelectorAll('label[for="' + area.id + '"]').forEach(function (label) {
    label.addEventListener("click", function (event) { event.preventDefault(); view.focus(); });
  });
  /* A change of language in the X-Policy document re-checks the code. */
  if (form && form.elements.policy_json) {
    var lastLanguage = language();
    form.elements.policy_json.addEventListener("input", function () {
      var now = language();
      if (now !== lastLanguage) {
        lastLanguage = now;
        view.dispatch({ effects: languageMode.reconfigure(modeFor(now)) });
        document.querySelectorAll('label[for="' + area.id + '"]').forEach(function (label) {
          label.textContent = now === "cedar" ? "Cedar policy" : "SQRT policy";
        });
        CM.forceLinting(view);
      }
    });
  }
  window.SequrityPolicyEditor = { view: view, textarea: area };
})();
