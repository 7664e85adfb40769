// The parts of CodeMirror 6 the dashboard's policy editor uses, exposed as window.SequrityCodeMirror.
// Built by build.mjs into static/vendor/codemirror-sqrt.js (one file, no CDN).
export { EditorState, Compartment } from "@codemirror/state";
export {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection,
  highlightSpecialChars, placeholder
} from "@codemirror/view";
export { history, defaultKeymap, historyKeymap, indentWithTab } from "@codemirror/commands";
export {
  StreamLanguage, syntaxHighlighting, HighlightStyle, bracketMatching, indentOnInput, indentUnit
} from "@codemirror/language";
export { tags } from "@lezer/highlight";
export { linter, lintGutter, forceLinting, diagnosticCount } from "@codemirror/lint";
export { autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
export { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
