"""[sandbox] browser: Chromium runs inside the sandboxed worker.

Chromium reserves terabytes of address space at its start, so under the usual RLIMIT_AS it
dies at once (SIGTRAP, no output). With the declaration the worker's memory is bounded as
written memory (RLIMIT_DATA) instead; every other protection stays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
DOCKER_DEFAULT = Path(__file__).resolve().parents[1] / "support" / "docker_default.py"
REPO = Path(__file__).resolve().parents[2]
needs_browser = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                   reason=f"no browser at {CHROMIUM} (Debian: apt-get install "
                                          "chromium; .ci/run installs it)")

BROWSE = '''

def render(html):
    import subprocess
    import tempfile
    profile = tempfile.mkdtemp()
    done = subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           f"--user-data-dir={profile}", "--dump-dom", "data:text/html," + html],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout


def screenshot(html):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page()
        page.set_content(html)
        text, png = page.inner_text("p"), page.screenshot()
        browser.close()
    return text, png
'''

TEST = '''
def test_render(student):
    """Chromium renders a page in the worker"""
    code, dom = student.module("ops").render("<p>rendered%20here</p>")
    assert (code, "<p>rendered here</p>" in dom) == (0, True), (code, dom[-300:])


def test_screenshot(student):
    """Playwright drives Chromium in the worker; the page text and a PNG come back as data"""
    text, png = student.module("ops").screenshot("<p>driven</p>")
    assert text == "driven" and png[:8] == bytes([137, 80, 78, 71, 13, 10, 26, 10])
'''


def _grade(course: Path, browser: bool, docker: bool = False) -> dict:
    ref = course / "reference_tests" / "a9_tiny"
    toml = ref / "assignment.toml"
    text = (toml.read_text().replace("call_timeout = 10", "call_timeout = 60")
            .replace("memory_mb = 2048", "memory_mb = 4096\nprocesses = 512"))
    toml.write_text(text + f"\n[sandbox]\nbrowser = {str(browser).lower()}\n")
    (ref / "hidden" / "test_browser.py").write_text(TEST)
    ops = course / "solutions" / "a9_tiny" / "ops.py"
    ops.write_text(ops.read_text() + BROWSE)
    out = course / "out" / "results.json"
    cmd = [sys.executable, "-m", "autograder", "grade", "a9",
           str(course / "solutions" / "a9_tiny"), "-o", str(out), "--course", str(course)]
    if docker:  # no namespaces: Landlock, the filter and a home of the worker's own in /tmp
        cmd = [sys.executable, str(DOCKER_DEFAULT), "--reachable", sys.executable,
               "--reachable", str(REPO), "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def _browser_tests(data: dict) -> dict[str, dict]:
    return {t["name"]: t for t in data["tests"] if "Chromium" in t["name"]}


@needs_browser
@pytest.mark.parametrize("docker", [False, pytest.param(True, marks=pytest.mark.skipif(
    os.getuid() != 0, reason="Docker's defaults are reproduced as root (capsh)"))],
    ids=["namespaces", "docker-defaults"])
def test_browser_runs_in_the_sandbox(course: Path, docker: bool) -> None:
    data = _grade(course, True, docker)
    tests = _browser_tests(data)
    assert len(tests) == 2 and all(t["status"] == "passed" for t in tests.values()), [
        t["output"][-2000:] for t in tests.values()]
    prot = {p["name"]: p for p in data["extra_data"]["protections"]}
    assert "data segment ([sandbox] browser" in prot["rlimits"]["detail"]
    assert prot["syscall-filter"]["active"], prot["syscall-filter"]


@needs_browser
def test_without_the_declaration_chromium_cannot_start(course: Path) -> None:
    """The address-space limit is what stops it: the declaration is needed, not decoration."""
    tests = _browser_tests(_grade(course, False))
    assert tests and all(t["status"] == "failed" for t in tests.values()), tests


def test_browser_must_be_true_or_false(tmp_path: Path) -> None:
    from autograder.config import AssignmentConfig
    from autograder.errors import CourseError

    toml = tmp_path / "assignment.toml"
    toml.write_text('[assignment]\nid = "x"\ntitle = "x"\nmodules = ["m"]\n\n[sandbox]\nbrowser = 1\n')
    with pytest.raises(CourseError, match="browser = 1; write true or false"):
        AssignmentConfig.load(toml)


def test_browser_needs_enough_memory(tmp_path: Path) -> None:
    """Below 4096 MB or 256 processes (threads count) Chromium hangs or crashes (measured):
    a course error, not flaky tests."""
    from autograder.config import AssignmentConfig
    from autograder.errors import CourseError

    toml = tmp_path / "assignment.toml"
    toml.write_text('[assignment]\nid = "x"\ntitle = "x"\nmodules = ["m"]\n\n[limits]\n'
                    'memory_mb = 3072\n\n[sandbox]\nbrowser = true\n')
    with pytest.raises(CourseError, match="memory_mb of at least 4096 \\(it is 3072\\)"):
        AssignmentConfig.load(toml)
    toml.write_text('[assignment]\nid = "x"\ntitle = "x"\nmodules = ["m"]\n\n[limits]\n'
                    'memory_mb = 4096\n\n[sandbox]\nbrowser = true\n')
    with pytest.raises(CourseError, match="processes of at least 256 \\(it is 64\\)"):
        AssignmentConfig.load(toml)
