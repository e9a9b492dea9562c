// Render the formulas pymdownx.arithmatex (generic mode) leaves as \( \) and \[ \] spans, with the
// bundled KaTeX (no network). `document$` is mkdocs-material's page-load observable (instant nav too).
function renderFormulas(root) {
  root.querySelectorAll(".arithmatex").forEach(function (el) {
    renderMathInElement(el, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  });
}
if (typeof document$ !== "undefined") {
  document$.subscribe(function (page) { renderFormulas(page.body || document.body); });
} else {
  document.addEventListener("DOMContentLoaded", function () { renderFormulas(document.body); });
}
