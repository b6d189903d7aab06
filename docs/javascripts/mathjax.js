// MathJax settings, as mkdocs-material's docs give them for pymdownx.arithmatex (generic
// mode), plus the notebooks' markdown cells, which mkdocs-jupyter renders with $...$ and
// $$...$$ left as they are. MathJax itself is loaded from a CDN when a page is viewed.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-MarkdownOutput",
  },
};

document$.subscribe(() => {
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
