"""A mkdocs hook: MathJax served from the built site itself, so the equations render with no
network when the site is read (a cluster node, a laptop on a train).

MathJax comes from its npm package, installed next to the repository (not committed):

    npm install --prefix .docs-js --no-save --no-package-lock mathjax@3.2.2

(`.ci/run` does this before `mkdocs build`; `JSYN_MATHJAX` may point to another copy of the
package's `es5` folder, such as the one in Debian's `node-mathjax-full`.) The hook adds the
SVG build (`tex-svg.js`, which carries its glyphs, so no web font is fetched) and the
components it loads on demand to the site under `javascripts/mathjax/`; `mkdocs.yml` loads
it after `javascripts/mathjax.js` (the settings).
"""

import os
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

SITE_FOLDER = "javascripts/mathjax"
ENTRY = "tex-svg.js"
# what tex-svg.js loads on demand (TeX extensions, the menu, assistive MathML); the other
# combined builds and the CommonHTML fonts are not needed
COMPONENTS = ("a11y", "adaptors", "input", "output/svg", "output/svg.js", "sre", "ui")
INSTALL = "npm install --prefix .docs-js --no-save --no-package-lock mathjax@3.2.2"


def mathjax_folder(config_dir: Path) -> Path:
    """The `es5` folder of the MathJax package: `$JSYN_MATHJAX`, else the one `INSTALL`
    puts under `.docs-js/` beside mkdocs.yml."""
    default = config_dir / ".docs-js" / "node_modules" / "mathjax" / "es5"
    folder = Path(os.environ.get("JSYN_MATHJAX", default))
    if not (folder / ENTRY).is_file():
        raise PluginError(
            f"MathJax not found: no {ENTRY} in {folder}. The site serves MathJax itself so that "
            f"its equations render offline; install it first with `{INSTALL}` (from the "
            "repository root), or set JSYN_MATHJAX to the `es5` folder of a MathJax 3 package."
        )
    return folder


def site_files(folder: Path) -> list[Path]:
    paths = [folder / ENTRY]
    for name in COMPONENTS:
        path = folder / name
        paths.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return paths


def on_files(files: Files, config) -> Files:
    folder = mathjax_folder(Path(config.config_file_path).parent)
    for path in site_files(folder):
        uri = f"{SITE_FOLDER}/{path.relative_to(folder).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
