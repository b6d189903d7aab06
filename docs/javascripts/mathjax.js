// MathJax settings, as mkdocs-material's docs give them for pymdownx.arithmatex (generic
// mode), plus the notebooks' markdown cells, which mkdocs-jupyter renders with $...$ and
// $$...$$ left as they are. MathJax itself (tex-svg.js, loaded next) is served by the site:
// docs/_ext/offline_math.py copies it from its npm package, so nothing comes from the network.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  svg: {
    fontCache: "global",
  },
  options: {
    // Only math in these elements: arithmatex's spans, and the notebooks' markdown cells
    // (their paragraphs and lists, which carry no class, inherit it; any element with a
    // class, such as the navigation, is skipped unless it is one of these).
    ignoreHtmlClass: ".+",
    processHtmlClass: "arithmatex|jp-MarkdownOutput",
  },
};

document$.subscribe(() => {
  if (!MathJax.typesetPromise) {
    return; // the first page: MathJax typesets it when it has loaded
  }
  if (MathJax.startup.output.clearCache) {
    MathJax.startup.output.clearCache(); // CommonHTML output only
  }
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
