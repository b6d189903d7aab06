"""The documentation site as a reader sees it: built by `mkdocs build`, served from
127.0.0.1, and opened page by page in headless Chromium with every other host unreachable
(as on a cluster node or a laptop on a train). Every equation is typeset (no raw TeX left),
every image loads, the console stays free of errors, every link within the site reaches a
page and an anchor that exist, the search finds "STDP", and the notebooks show figures.

Needs Debian's `chromium` and `chromium-driver` and selenium (the `docs` extra); `.ci/run`
installs them. `JSYN_SITE=path` tests a site already built there instead of building one;
the screenshots of a model-reference page and a notebook go to `JSYN_SITE_SHOTS` (default:
the test's temporary folder), to be looked at.
"""

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).parents[1]
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
RAW_TEX = ("\\(", "\\)", "\\[", "\\]", "$$")
INLINE_DOLLARS = re.compile(r"\$[^$\s][^$\n]*\$")  # $x$ left as typed (the notebooks' inline math)
NOT_PAGES = ("assets", "javascripts", "search")

pytestmark = pytest.mark.slow  # builds the site (running the notebooks) and opens every page


def _tools_or_skip():
    """mkdocs, selenium and chromedriver, or a skip that CI turns into a failure."""
    try:
        import mkdocs  # noqa: F401
        import selenium  # noqa: F401
    except ImportError as error:
        missing = f"{error.name} (pip install '.[docs]')"
    else:
        driver = Path(CHROMEDRIVER).exists()
        missing = None if driver else "chromedriver (apt-get install chromium chromium-driver)"
    if missing and os.environ.get("CI"):
        pytest.fail(f"{missing} is missing; .ci/run installs it")
    if missing:
        pytest.skip(f"{missing} is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    _tools_or_skip()
    if os.environ.get("JSYN_SITE"):
        return Path(os.environ["JSYN_SITE"])
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # Agg, as scripts and CI often set it, must not hide the notebooks' figures
        env={**os.environ, "MPLBACKEND": "Agg", "NO_MKDOCS_2_WARNING": "1"},
        timeout=1800,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def server(site):
    """The site over HTTP on 127.0.0.1 (search needs HTTP, not file://)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(server):
    _tools_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        # the network off: every host but 127.0.0.1 fails to resolve or to connect
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",  # loopback bypasses it, nothing else does
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()


def pages(site: Path) -> list[str]:
    """The site's pages, as paths below its root ("" for the home page)."""
    found = []
    for index in sorted(site.rglob("index.html")):
        relative = index.parent.relative_to(site)
        if relative.parts and relative.parts[0] in NOT_PAGES:
            continue
        found.append("" if not relative.parts else relative.as_posix() + "/")
    return found


# Waits until MathJax has typeset the page (or says why not), then reports what a reader
# would notice: visible text outside code, images that did not load, and the page's links.
INSPECT = """
const done = arguments[arguments.length - 1];
const report = () => {
  const style = document.createElement("style");
  style.textContent = "pre, code, script, .md-search { display: none !important; }";
  document.head.appendChild(style);
  const text = document.querySelector("article, .md-content").innerText;
  style.remove();
  done({
    text: text,
    math: document.querySelectorAll("mjx-container").length,
    mathErrors: [...document.querySelectorAll("mjx-merror")].map((e) => e.textContent),
    brokenImages: [...document.images]
      .filter((img) => !(img.complete && img.naturalWidth > 0))
      .map((img) => img.src.slice(0, 120)),
    outputImages: document.querySelectorAll(".jp-OutputArea img").length,
    links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
    ids: [...document.querySelectorAll("[id]")].map((e) => e.id),
  });
};
if (!window.MathJax || !window.MathJax.startup || !window.MathJax.startup.promise) {
  report();  // MathJax did not load: the raw TeX stays, and the checks below say so
} else {
  MathJax.startup.promise.then(report, report);
}
"""


def _anchor_exists(site: Path, path: str, fragment: str) -> bool:
    file = site / path.lstrip("/")
    if file.is_dir() or not file.suffix:
        file = file / "index.html"
    if not file.is_file():
        return False
    if not fragment:
        return True
    html = file.read_text(errors="replace")
    return f'id="{fragment}"' in html or f"id={fragment}" in html


def test_every_page_reads_well_offline(site, server, browser, tmp_path):
    problems = []
    all_pages = pages(site)
    assert len(all_pages) > 20, all_pages
    for page in all_pages:
        browser.get_log("browser")  # drop what an earlier page left
        browser.get(f"{server}/{page}")
        seen = browser.execute_async_script(INSPECT)
        where = f"/{page}"
        raw = [d for d in RAW_TEX if d in seen["text"]]
        if raw:
            at = min(seen["text"].find(d) for d in raw)
            problems.append(f"{where}: raw TeX {raw} left: ...{seen['text'][at - 40 : at + 60]!r}")
        inline = INLINE_DOLLARS.search(seen["text"])
        if inline:
            problems.append(f"{where}: raw inline TeX left: {inline.group()[:80]!r}")
        if seen["mathErrors"]:
            problems.append(f"{where}: MathJax errors {seen['mathErrors'][:3]}")
        if seen["brokenImages"]:
            problems.append(f"{where}: images that did not load {seen['brokenImages']}")
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        if errors:
            problems.append(f"{where}: console errors {errors[:3]}")
        ids = set(seen["ids"])
        for href in set(seen["links"]):
            url = urlsplit(href)
            if not href.startswith(server):
                continue  # another site: not reachable offline, and not the site's to check
            fragment = unquote(url.fragment)
            if url.path == f"/{page}" or (url.path == "/" and page == ""):
                if fragment and fragment not in ids:
                    problems.append(f"{where}: in-page link to a missing anchor #{fragment}")
            elif not _anchor_exists(site, unquote(url.path), fragment):
                problems.append(f"{where}: broken link {href[len(server) :]}")
        if page.startswith("notebooks/") and seen["outputImages"] == 0:
            problems.append(f"{where}: a notebook rendered without a figure")
        if page in ("models/", "getting-started/") and seen["math"] == 0:
            problems.append(f"{where}: no typeset equation")
    assert not problems, "\n".join(problems)


def test_search_finds_stdp(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/")
    box = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")  # in the header
    box.click()
    box.send_keys("STDP")

    def results(driver):
        found = driver.find_elements(By.CSS_SELECTOR, ".md-search-result__item")
        return found or None

    items = WebDriverWait(browser, 60).until(results, "the search found nothing for STDP")
    assert any("STDP" in item.text for item in items)


def test_screenshots_show_typeset_equations_and_figures(server, browser, tmp_path):
    """Pictures to look at (`JSYN_SITE_SHOTS`), and the facts behind them: the model
    reference's first equation and a notebook's first figure, on screen."""
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("JSYN_SITE_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    for page, target, name in (
        ("models/", "mjx-container[display='true']", "models.png"),
        ("notebooks/01_synapse_models/", ".jp-OutputArea img", "notebook.png"),
    ):
        browser.get(f"{server}/{page}")
        browser.execute_async_script(INSPECT)
        element = browser.find_element(By.CSS_SELECTOR, target)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        assert element.size["width"] > 0 and element.size["height"] > 0
        assert browser.save_screenshot(str(shots / name))
