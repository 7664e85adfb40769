/* Sequrity Control dashboard: small progressive enhancements. Everything works without it. */
(function () {
  "use strict";

  /* Copy buttons: navigator.clipboard where allowed, else a selection + execCommand("copy") fallback. */
  function fallbackCopy(source) {
    source.focus();
    source.select();
    source.setSelectionRange(0, source.value.length);
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    return ok;
  }

  function copied(button, ok) {
    var label = button.querySelector("[data-copy-label]") || button;
    var before = label.dataset.label || label.textContent;
    label.dataset.label = before;
    label.textContent = ok ? "Copied!" : "Press Ctrl+C";
    button.classList.toggle("copied", ok);
    button.dataset.copied = ok ? "true" : "false";
    window.setTimeout(function () { label.textContent = before; button.classList.remove("copied"); }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy-target"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { copied(button, true); },
        function () { copied(button, fallbackCopy(source)); }
      );
    } else {
      copied(button, fallbackCopy(source));
    }
  });

  /* Select the whole secret on focus, so a manual copy takes all of it. */
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-copy-source]")) event.target.select();
  });

  /* Forms with a [data-once] button submit once: the second submit is swallowed and the button disabled. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.submitted === "true") { event.preventDefault(); return; }
    form.dataset.submitted = "true";
    form.querySelectorAll("[data-once]").forEach(function (button) {
      button.setAttribute("aria-busy", "true");
      if (button.dataset.busyLabel) button.textContent = button.dataset.busyLabel;
      window.setTimeout(function () { button.disabled = true; }, 0);
    });
  });
  /* Coming back through the history (bfcache) must not leave the buttons disabled. */
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitted]").forEach(function (form) {
      delete form.dataset.submitted;
      form.querySelectorAll("[data-once]").forEach(function (button) {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      });
    });
  });

  /* Dismissible alerts; the account menu closes on outside click and Escape. */
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-dismiss]");
    if (close) close.parentElement.remove();
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") document.querySelectorAll("details.menu[open]").forEach(function (m) { m.removeAttribute("open"); });
  });

  /* Code editors: line numbers in a gutter that scrolls with the textarea; Tab indents. */
  function lineNumbers(editor) {
    var area = editor.querySelector("textarea");
    var gutter = editor.querySelector(".gutter");
    if (!area || !gutter) return;
    var count = area.value.split("\n").length;
    /* Grow with the content (up to a limit), so short documents don't hide in a scroll box. */
    var rows = Math.min(Math.max(count + 1, area.classList.contains("json-input") ? 6 : 10), 32);
    if (area.rows !== rows && !area.style.height) area.rows = rows;
    if (gutter.dataset.count !== String(count)) {
      var lines = [];
      for (var i = 1; i <= count; i++) lines.push(i);
      gutter.textContent = lines.join("\n");
      gutter.dataset.count = String(count);
    }
    gutter.scrollTop = area.scrollTop;
  }
  window.SequrityEditors = { refresh: function (area) { var e = area.closest("[data-code-editor]"); if (e) lineNumbers(e); } };

  document.querySelectorAll("[data-code-editor]").forEach(function (editor) {
    var area = editor.querySelector("textarea");
    if (!area) return;
    lineNumbers(editor);
    area.addEventListener("input", function () { lineNumbers(editor); });
    area.addEventListener("scroll", function () { editor.querySelector(".gutter").scrollTop = area.scrollTop; });
    area.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || event.shiftKey || event.ctrlKey || event.altKey || event.metaKey) return;
      if (area.dataset.tabEscaped === "true") return;
      event.preventDefault();
      var start = area.selectionStart, end = area.selectionEnd, indent = area.classList.contains("json-input") ? "  " : "    ";
      area.setRangeText(indent, start, end, "end");
      area.dispatchEvent(new Event("input", { bubbles: true }));
    });
    /* Escape then Tab leaves the editor (keyboard users are never trapped). */
    area.addEventListener("keyup", function (event) {
      if (event.key === "Escape") { area.dataset.tabEscaped = "true"; }
      else if (event.key !== "Tab") { area.dataset.tabEscaped = "false"; }
    });
    area.addEventListener("blur", function () { area.dataset.tabEscaped = "false"; });
  });
  /* Tables: one wider than its card is shown as cards, one per row, each cell under its column's name
     (.table.stacked in app.css). Whatever still scrolls sideways gets edge shadows and a hint saying so. */
  function labelCells(table) {
    var head = table.tHead && table.tHead.rows[0];
    if (!head) return;
    var labels = [];
    Array.prototype.forEach.call(head.cells, function (th) {
      for (var i = 0; i < th.colSpan; i++) labels.push(th.textContent.trim());
    });
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          var label = labels[column] || "";
          column += cell.colSpan;
          if (cell.colSpan > 1) return;
          if (label && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", label);
          if (cell.querySelector(".btn") && (!label || /^actions?$/i.test(label))) cell.classList.add("cell-actions");
        });
      });
    });
  }

  function fitTable(wrap) {
    var table = wrap.querySelector(":scope > table.table");
    if (table) {
      table.classList.remove("stacked");
      if (table.offsetWidth > wrap.clientWidth + 1) {
        labelCells(table);
        table.classList.add("stacked");
      }
    }
    var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
    wrap.classList.toggle("is-scrollable", scrolls);
    var hint = wrap.nextElementSibling;
    if (scrolls && !(hint && hint.classList.contains("scroll-hint"))) {
      hint = document.createElement("div");
      hint.className = "scroll-hint";
      hint.setAttribute("aria-hidden", "true");
      hint.textContent = "Scroll sideways for more columns →";
      wrap.after(hint);
    }
  }

  function fitTables(root) {
    (root || document).querySelectorAll(".table-wrap").forEach(fitTable);
  }
  window.SequrityTables = { fit: fitTables, fitOne: fitTable };
  fitTables();
  var fitPending = false;
  window.addEventListener("resize", function () {
    if (fitPending) return;
    fitPending = true;
    window.requestAnimationFrame(function () { fitPending = false; fitTables(); });
  });
  window.addEventListener("load", function () { fitTables(); });
})();
