"""jaxley is optional: `import jsyn` never imports it, and `jsyn.dendrites` without it says
which extra to install."""

import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_jsyn_does_not_import_jaxley():
    done = _run("import sys, jsyn; print('jaxley' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_dendrites_without_jaxley_names_the_extra():
    code = (
        "import sys; sys.modules['jaxley'] = None\n"  # as if jaxley were not installed
        "import jsyn\n"
        "try:\n    import jsyn.dendrites\nexcept ImportError as err:\n    print(err)\n"
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert "pip install 'jsyn[jaxley]'" in done.stdout
