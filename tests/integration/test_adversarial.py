"""Adversarial submissions against the sandboxed grader (DESIGN.md: "the one rule").

Each malicious submission in ``tests/fixtures/adversarial/subs/<case>/`` is graded in a
subprocess, the way Gradescope would run it: ``autograder.grading.runner.grade`` (which calls
``run_suite``) with the default ``isolation="sandbox"``, on a throw-away course tree made
for the case under /tmp (world-readable, like a checkout: only the sandbox may keep the
worker out of the hidden tests). The grading process is started with cwd = the
submission folder, with TMPDIR a folder like /tmp (mode 1777) and its results file in it,
as in ``autograder grade a1 SUB -o /tmp/results.json``.

For every case the test asserts that
  (a) the score is no more than the template's (which is graded once per session: 0),
  (b) results.json exists, validates against the shipped schema and lists every test,
  (c) nothing is left running: no descendant of the grading process survives it (the
      grading process is a child subreaper, so orphans cannot slip away), and no new
      process of the case (working directory or command line in the case's tree, or the
      case's tag as name or argv[0]) is alive afterwards,
  (d) no forged results.json was kept and no secret (hidden tests, solutions) leaked into it,
  (e) the grading process exited normally with exit code 0 (grading completed),
plus what the student is told where it is the student's fault (timeouts name the
function, memory and output floods say so).

Every attack that can earn points only earns them when it succeeds (the network case
answers correctly only if it reached the network, the hidden-tests reader only if it read
them...). ``test_attack_works_without_sandbox`` runs the safe ones with
``isolation="none"`` and checks that they do earn points there, so the sandboxed
assertions are not vacuous. Cases that once exposed harness weaknesses (results
path squatting, other assignments readable, a patched yardstick, forged reply frames,
files left in /tmp, a JSON bomb, concurrent gradings reading each other) raise
``HarnessBug`` when the weakness comes back.

Sanity tests keep the rest honest: the reference solution scores full marks (so the
suite can award points at all), an honest but slow pool loses the performance points, and
the harness reports every protection active where the kernel supports it.

What each submission does is told in its calc.py docstring. The malicious code is
written to be safe for the host even if the sandbox is broken: every bomb is bounded,
everything it writes or starts carries an "agadv" mark, and it only touches paths of the
case's throw-away tree (named "agadv-<case>-*").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from autograder.grading import results as results_mod

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "adversarial"
SUBS = FIXTURE / "subs"
FORGED_MARK = "FORGED-BY-AGADV"
PROC_MARK = "agadv"
NOBODY = 65534
GRADE_TIMEOUT = 120
# Split so that this file never contains a secret's prefix (submissions grep for them).
SECRET_PREFIX = "AGADV" + "SECRET"
OTHER_PREFIX = "AGADV" + "OTHER"
LEFTOVER_DIRS = ("/tmp", "/var/tmp", "/dev/shm")

T_DOUBLE = "double returns 2*x"
T_LOOSE = "double, compared loosely"
T_MEAN = "mean of a list"
T_COUNTER = "Counter keeps"
T_POOL = "pool (2x2 max pooling)"


DOCKER_DEFAULT = Path(__file__).resolve().parents[1] / "support" / "docker_default.py"
# How the grading process is started: as root with every capability (namespaces), or as
# `docker run` and Gradescope start it (no CAP_SYS_ADMIN, namespaces refused by seccomp).
MODES = {
    "full": [],
    "docker-default": [sys.executable, str(DOCKER_DEFAULT), "--reachable", sys.executable,
                       "--reachable", str(REPO), "--"],
    "container": [],
}
# Set by tests/integration/test_docker_images.py, which runs this file inside a grading
# image's container: the grader is root with Docker's real defaults (capabilities, seccomp
# profile, masked /proc), the real form of "docker-default".
IN_CONTAINER = os.environ.get("AUTOGRADER_TEST_IN_CONTAINER") == "1"


class HarnessBug(AssertionError):
    """Raised when an attack that once exposed a harness weakness succeeds again."""


def _kernel_can_sandbox() -> str | None:
    """None if this kernel lets root make the namespaces the sandbox needs, else why not."""
    if sys.platform != "linux":
        return "the sandbox needs Linux"
    if os.getuid() != 0:
        return ("the sandbox drops to uid nobody and enters namespaces only when the grader "
                "runs as root (CI runs as root)")
    if IN_CONTAINER:
        return None  # namespaces are refused there, as they must be: the fallback is tested
    import ctypes

    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.unshare(0x40000000 | 0x20000000 | 0x00020000) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return "this kernel/container refuses unshare(NEWNET|NEWPID|NEWNS) even to root"
    return None


SANDBOX_UNAVAILABLE = _kernel_can_sandbox()
needs_sandbox = pytest.mark.skipif(SANDBOX_UNAVAILABLE is not None,
                                   reason=f"sandbox tests skipped: {SANDBOX_UNAVAILABLE}")
# Protections that need namespaces: off in docker-default mode, where the others must
# still hold by other means (file modes, the seccomp filter, the uid).
NAMESPACE_ONLY = {"pid-namespace", "ipc-namespace", "read-only-filesystems", "host-folders",
                  "private-tmp", "private-proc"}


def _docker_mode_unavailable() -> str | None:
    if SANDBOX_UNAVAILABLE is not None:
        return SANDBOX_UNAVAILABLE
    if shutil.which("capsh") is None and not Path("/usr/sbin/capsh").exists():
        return "capsh is missing (Debian: apt-get install libcap2-bin; .ci/run installs it)"
    return None


@pytest.fixture(scope="session", params=["container"] if IN_CONTAINER else ["full", "docker-default"])
def mode(request: pytest.FixtureRequest) -> str:
    """Every sandboxed attack runs twice: as root with every capability, and as `docker run`
    and Gradescope start the grader (no CAP_SYS_ADMIN, namespaces refused); inside a real
    container, once, as it is."""
    if request.param == "docker-default" and _docker_mode_unavailable() is not None:
        pytest.skip(f"docker-default mode: {_docker_mode_unavailable()}")
    return str(request.param)

# The grading process: run `grade` (-> run_suite) as a child subreaper, then report every
# descendant still alive (waiting up to 5 s for the kernel to tear namespaces down), kill
# them, and print one JSON line. Its own exit code is grading's exit code.
GRADE_SCRIPT = r"""
import ctypes, json, os, resource, signal, sys, time
from pathlib import Path
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
args = json.loads(sys.argv[1])
# Diagnosis of a hang: every thread's stack, on a copy of stderr that pytest's capture of
# an in-process grading cannot swallow, shortly before the test gives up on this process.
import faulthandler
_diag = os.fdopen(os.dup(2), "w")
faulthandler.dump_traceback_later(args.pop("dump_after"), exit=False, file=_diag)
from autograder.grading.runner import grade
outcome = grade(assignment=args["assignment"], submission=Path(args["submission"]),
                output=Path(args["output"]), isolation=args["isolation"], root=Path(args["root"]))

def descendants():
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            fields = s[s.rfind(")") + 2:].split()
            parent[int(d)] = (int(fields[1]), fields[0])
    out, todo = [], [os.getpid()]
    while todo:
        p = todo.pop()
        for c, (pp, state) in parent.items():
            if pp == p:
                out.append((c, state))
                todo.append(c)
    return out

def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return

deadline = time.monotonic() + 5
while True:
    reap()
    live = [p for p, state in descendants() if state != "Z"]
    if not live or time.monotonic() > deadline:
        break
    time.sleep(0.1)
leftovers = []
for p in live:
    info = {"pid": p}
    for key, path in (("cmdline", f"/proc/{p}/cmdline"), ("comm", f"/proc/{p}/comm"),
                      ("status", f"/proc/{p}/status")):
        try:
            with open(path, "rb") as f:
                info[key] = f.read().decode("utf-8", "replace").replace("\0", " ").strip()
        except OSError:
            info[key] = "?"
    uid = [l.split()[1] for l in info.pop("status").splitlines() if l.startswith("Uid:")]
    info["uid"] = int(uid[0]) if uid else -1
    leftovers.append(info)
for _ in range(50):  # kill until nothing is left (a fork bomb may fork meanwhile)
    for p in live:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.1)
    reap()
    live = [p for p, state in descendants() if state != "Z"]
    if not live:
        break
print("AGADV-REPORT " + json.dumps({
    "exit_code": int(outcome.exit_code), "leftovers": leftovers,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
sys.exit(int(outcome.exit_code))
"""


# -- one grading ---------------------------------------------------------------------------

@dataclass
class Graded:
    case: str
    base: Path
    submission: Path
    output: Path
    secrets: dict[str, str]
    rc: int | None
    stdout: str
    stderr: str
    elapsed: float
    report: dict[str, Any] | None
    text: str | None  # results.json as written
    data: dict[str, Any] | None
    marked: list[dict[str, Any]] = field(default_factory=list)
    listener_hits: int = 0
    leftover_files: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"case {self.case}: rc={self.rc} elapsed={self.elapsed:.1f}s report={self.report}\n"
                f"stderr (head and tail; a hang's stack dump starts with its innermost frames):\n"
                f"{_head_tail(self.stderr, 3000)}\nstdout tail:\n{self.stdout[-2000:]}")

    def test(self, fragment: str) -> dict[str, Any]:
        assert self.data is not None, self.describe()
        hits = [t for t in self.data["tests"] if t["name"].startswith(fragment)]
        assert len(hits) == 1, f"no single test named {fragment!r} in {self.data['tests']}"
        return hits[0]

    def output_of(self, fragment: str) -> str:
        return str(self.test(fragment)["output"])


def _head_tail(text: str, n: int) -> str:
    return text if len(text) <= 2 * n else f"{text[:n]}\n[...]\n{text[-n:]}"


def _copy_tree(src: Path, dst: Path, replace: dict[str, str]) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    for p in [dst, *dst.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
            continue
        p.chmod(0o644)
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            continue
        new = text
        for k, v in replace.items():
            new = new.replace(k, v)
        if new != text:
            p.write_text(new)


def _proc_snapshot() -> set[int]:
    return {int(d) for d in os.listdir("/proc") if d.isdigit()}


def _proc_info(pid: int) -> dict[str, Any] | None:
    info: dict[str, Any] = {"pid": pid}
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            info["cmdline"] = f.read().decode("utf-8", "replace").replace("\0", " ")
        with open(f"/proc/{pid}/comm") as f:
            info["comm"] = f.read().strip()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        info["state"] = re.search(r"^State:\s+(\S)", status, re.M).group(1)  # type: ignore[union-attr]
        info["uid"] = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return None
    try:
        info["cwd"] = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        info["cwd"] = ""
    return info


def case_tag(base: Path) -> str:
    """The mark the malicious processes of the case under ``base`` give themselves (comm or
    argv[0]): "agadv" + 8 hex digits of the case's tree (see the subs' ``_tag``)."""
    return PROC_MARK + hashlib.sha1(str(base).encode()).hexdigest()[:8]


def _marked_processes(before: set[int], base: Path) -> list[dict[str, Any]]:
    """New live processes that belong to this case: their command line or working
    directory is in the case's tree, or they carry the case's tag.

    Only marks specific to this case are used: other gradings (other cases under
    pytest-xdist, other test sessions on the host) run workers of uid nobody at the
    same time, so "any new process of uid nobody" would be flaky and would kill theirs.
    The exact check is the grading process's own list of surviving descendants.
    """
    tag = case_tag(base)
    found = []
    for pid in sorted(_proc_snapshot() - before - {os.getpid()}):
        info = _proc_info(pid)
        if info is None or info["state"] == "Z":
            continue
        if str(base) in info["cmdline"] or str(base) in info["cwd"] \
                or tag in info["comm"] or tag in info["cmdline"]:
            found.append(info)
    return found


def _kill_tree(root: int) -> None:
    """Kill ``root`` and every descendant (only used when a grading overran its time)."""
    parent = {}
    for pid in _proc_snapshot():
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
            parent[pid] = int(s[s.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    tree, todo = [root], [root]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        tree += kids
        todo += kids
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def _leftover_files(case_marks: list[str]) -> list[str]:
    out = []
    for d in LEFTOVER_DIRS:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        out += [os.path.join(d, n) for n in names if any(n.startswith(m) for m in case_marks)]
    return out


def _forged_files() -> list[Path]:
    """Forged results files a case left outside its tree (it may only write to agadv paths
    and /autograder/results); those inside the tree go with it."""
    out = []
    for p in (Path("/autograder/results/results.json"),):
        try:
            if FORGED_MARK in p.read_text(errors="replace"):
                out.append(p)
        except OSError:
            pass
    return out


def _escape_files() -> list[Path]:
    """Files the escape case may have managed to create (only if the sandbox is broken)."""
    import sysconfig

    import autograder

    harness = Path(autograder.__file__).resolve().parent
    folders = {harness, harness.parent, Path(sysconfig.get_paths()["purelib"]),
               Path(sys.executable).parent, Path(sysconfig.get_paths()["stdlib"]),
               Path("/etc"), Path("/root"), Path("/usr/local/bin")}
    return [p for d in folders if d.is_dir() for p in d.glob("agadv-escape-*")]


def grade_submission(case: str, submission_src: Path, *, isolation: str = "sandbox",
                     mode: str = "full", timeout: float = GRADE_TIMEOUT,
                     tmpdir: Path | None = None,
                     replace: dict[str, str] | None = None,
                     ref_replace: dict[str, str] | None = None) -> Graded:
    """Grade ``submission_src`` as a fresh copy in a throw-away course tree; the caller
    must ``cleanup`` the result. ``tmpdir``: the grader's TMPDIR (default: one of its own);
    ``replace``: text substitutions in the submission's copy; ``ref_replace``: in the
    hidden suite's copy (its assignment.toml, e.g. a limit)."""
    base = Path(tempfile.mkdtemp(prefix=f"{PROC_MARK}-{case}-", dir="/tmp"))
    try:
        return _grade_in(base, case, submission_src, isolation, mode, timeout, tmpdir,
                         replace or {}, ref_replace or {})
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def _grade_in(base: Path, case: str, submission_src: Path, isolation: str, mode: str,
              timeout: float, shared_tmp: Path | None, replace: dict[str, str],
              ref_replace: dict[str, str]) -> Graded:
    base.chmod(0o755)
    secrets = {"hidden": SECRET_PREFIX + uuid.uuid4().hex, "other": OTHER_PREFIX + uuid.uuid4().hex}
    course = base / "course"
    _copy_tree(FIXTURE / "ref", course / "reference_tests" / "x1_calc",
               {"@@SENTINEL@@": secrets["hidden"], **ref_replace})
    _copy_tree(FIXTURE / "good", course / "solutions" / "x1_calc", {"@@SENTINEL@@": secrets["hidden"]})
    other = course / "reference_tests" / "x2_other"
    _copy_tree(FIXTURE / "other", other, {"@@SENTINEL@@": secrets["other"]})
    (course / "solutions" / "x2_other").mkdir(parents=True)
    (other / "other.py").rename(course / "solutions" / "x2_other" / "other.py")
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    # Abstract UNIX sockets carry no permissions: only a network namespace or Landlock's
    # scope keeps a worker from this one.
    abstract_name = f"agadv-{uuid.uuid4().hex}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0" + abstract_name)
    abstract.listen(16)
    abstract.setblocking(False)
    submission = base / "submission" / case
    _copy_tree(submission_src, submission, {"@@HOST_PORT@@": str(port),
                                            "@@HOST_ABSTRACT@@": abstract_name, **replace})
    # The grader's TMPDIR is a folder like /tmp (mode 1777) and results.json goes into it:
    # `autograder grade a1 SUB -o /tmp/results.json` with the default TMPDIR.
    tmpdir = shared_tmp or base / "tmp"
    if shared_tmp is None:
        tmpdir.mkdir()
        tmpdir.chmod(0o1777)
    output = tmpdir / ("results.json" if shared_tmp is None else f"{case}-results.json")
    args = {"assignment": "x1", "submission": str(submission), "output": str(output),
            "isolation": isolation, "root": str(course), "dump_after": max(timeout - 10, 1)}
    env = dict(os.environ, TMPDIR=str(tmpdir))
    leftover_marks = [f"{case_tag(base)}-leftover-"]
    before = _proc_snapshot()
    start = time.monotonic()
    proc = subprocess.Popen([*MODES[mode], sys.executable, "-I", "-c", GRADE_SCRIPT, json.dumps(args)],
                            cwd=submission, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        stdout, stderr = proc.communicate()
        rc = None
    elapsed = time.monotonic() - start
    report = None
    for line in stdout.splitlines():
        if line.startswith("AGADV-REPORT "):
            report = json.loads(line[len("AGADV-REPORT "):])
    text = data = None
    if output.is_file():
        text = output.read_text(errors="replace")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    hits = 0
    for server in (listener, abstract):
        while True:
            try:
                conn, _ = server.accept()
            except (BlockingIOError, OSError):
                break
            conn.close()
            hits += 1
        server.close()
    marked: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while True:  # namespaces are torn down asynchronously: give them a moment
        marked = _marked_processes(before, base)
        if not marked or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for info in marked:  # report them, then do not leave them to the next test
        try:
            os.kill(info["pid"], signal.SIGKILL)
        except OSError:
            pass
    graded = Graded(case=case, base=base, submission=submission, output=output, secrets=secrets,
                    rc=rc, stdout=stdout, stderr=stderr, elapsed=elapsed, report=report,
                    text=text, data=data, marked=marked, listener_hits=hits,
                    leftover_files=_leftover_files(leftover_marks))
    return graded


def cleanup(graded: Graded) -> None:
    for p in graded.leftover_files + [str(p) for p in _forged_files()] \
            + [str(p) for p in _escape_files()]:
        try:
            os.unlink(p)
        except OSError:
            pass
    shutil.rmtree(graded.base, ignore_errors=True)


# -- the checks ---------------------------------------------------------------------------

def check_completed(g: Graded) -> None:
    """(e) grading completed: exit 0, and the grading process reported."""
    assert g.rc == 0, f"the grading process did not exit 0\n{g.describe()}"
    assert g.report is not None and g.report["exit_code"] == 0, g.describe()


def check_results(g: Graded, expected_names: list[str]) -> None:
    """(b) results.json exists, validates, lists every expected test, no harness error."""
    assert g.text is not None, f"no results.json at {g.output}\n{g.describe()}"
    assert g.data is not None, f"results.json is not JSON: {g.text[:500]!r}"
    results_mod.validate(g.data)
    names = [t["name"] for t in g.data["tests"]]
    assert names == expected_names, f"tests listed: {names}"
    assert not g.data.get("extra_data", {}).get("harness_error"), g.text[:5000]
    assert len(g.text) < 1_000_000, f"results.json is {len(g.text)} bytes"


def check_score(g: Graded, template_score: float) -> None:
    """(a) no more points than the template, and (d) no forgery, no leaked secret."""
    assert g.data is not None and g.text is not None
    assert FORGED_MARK not in g.text, "a forged results.json was kept"
    for kind, secret in g.secrets.items():
        assert secret not in g.text, f"the {kind} secret leaked into results.json"
    assert g.data["score"] <= template_score, (
        f"{g.case} scored {g.data['score']} > template {template_score}: "
        + json.dumps([(t["name"], t["score"], t["output"][:300]) for t in g.data["tests"]], indent=1))


def check_no_leftovers(g: Graded) -> None:
    """(c) nothing of the case is still running."""
    assert g.report is not None, g.describe()
    assert not g.report["leftovers"], f"processes outlived the grading: {g.report['leftovers']}"
    assert not g.marked, f"processes of {g.case} still alive after the grading: {g.marked}"


# -- per-case expectations ----------------------------------------------------------------

@dataclass
class Baseline:
    mode: str
    score: float
    names: list[str]
    maxrss_mb: float
    protections: list[dict[str, Any]]


def _expect_in(g: Graded, fragment: str, *needles: str) -> None:
    out = g.output_of(fragment)
    for needle in needles:
        assert needle in out, f"{fragment!r}: {needle!r} not in the student's output:\n{out}"


ALL_TESTS = (T_DOUBLE, T_LOOSE, T_MEAN, T_COUNTER, T_POOL)


def _forge(g: Graded, b: Baseline) -> None:
    for name in ALL_TESTS:
        _expect_in(g, name, "exited with code 0", "sys.exit or os._exit")


def _sys_exit(g: Graded, b: Baseline) -> None:
    for name in ALL_TESTS:
        _expect_in(g, name, "SystemExit")


def _pytest_patch(g: Graded, b: Baseline) -> None:
    _expect_in(g, T_DOUBLE, "NotImplementedError")


def _shipped_files(g: Graded, b: Baseline) -> None:
    ran = sorted(p.name for p in g.submission.glob("*-ran"))
    assert not ran, f"shipped files were executed by the grader: {ran}"
    assert g.data is not None
    for name in ("conftest.py", "numpy.py", "sitecustomize.py", "agadv.pth", "pytest.ini"):
        assert name in g.data["output"], f"{name} not reported as ignored: {g.data['output']}"
    assert "never loaded" in g.data["output"]


def _lying_values(g: Graded, b: Baseline) -> None:
    # the liars arrive as plain zeros (arrays) or as opaque handles (everything else)
    _expect_in(g, T_DOUBLE, "ACTUAL")
    _expect_in(g, T_MEAN, "returned a value of type LyingFloat from calc.mean, which the "
               "grader cannot use")
    _expect_in(g, T_COUNTER, "a value of type LyingInt", "which the grader cannot use")


def _loop_import(g: Graded, b: Baseline) -> None:
    for name in ALL_TESTS:
        _expect_in(g, name, "exceeded 3 s in the import of calc")


def _loop_call(g: Graded, b: Baseline) -> None:
    # ...and where the code was stuck (the worker's stack, taken before it is killed)
    spinning = "; it was running _spin (calc.py, line"
    _expect_in(g, T_DOUBLE, "exceeded 3 s in calc.double" + spinning, 'File "calc.py"')
    _expect_in(g, T_LOOSE, "exceeded 3 s in calc.double" + spinning)
    _expect_in(g, T_MEAN, "exceeded 3 s in calc.mean" + spinning)
    _expect_in(g, T_COUNTER, "exceeded 3 s in calc.Counter" + spinning)
    _expect_in(g, T_POOL, "exceeded 3 s in calc.pool" + spinning)


def _fork_bomb(g: Graded, b: Baseline) -> None:
    for name in (T_DOUBLE, T_COUNTER):
        out = g.output_of(name)
        m = re.search(r"fork bomb stopped after (\d+) forks", out)
        assert m, out
        assert int(m.group(1)) <= 64, f"{m.group(1)} forks succeeded with a process limit of 64"


def _memory_bomb(g: Graded, b: Baseline) -> None:
    for name in (T_DOUBLE, T_LOOSE, T_MEAN, T_COUNTER):
        out = g.output_of(name)
        assert "MemoryError" in out or "memory" in out, f"{name}: {out}"
    assert "Unable to allocate" in g.output_of(T_DOUBLE)


def _output_flood(g: Graded, b: Baseline) -> None:
    # the worker is stopped once it printed 16 MB: the grader does not drain 400 MB per call
    stopped = "printed more than 16 MB during {}; the worker was stopped"
    _expect_in(g, T_DOUBLE, stopped.format("calc.double"), "Your code printed:",
               "START-OF-FLOOD", "output truncated", "bytes left out")
    _expect_in(g, T_MEAN, stopped.format("calc.mean"), "Your code printed:", "output truncated")
    assert g.data is not None  # junk bytes arrive escaped: no terminal escapes for `check`
    assert not any(c in t["output"] for t in g.data["tests"] for c in "\x1b\x00\x07")
    assert g.text is not None and len(g.text) < 200_000, f"results.json is {len(g.text or '')} bytes"


def _network(g: Graded, b: Baseline) -> None:
    assert g.listener_hits == 0, "the worker connected to a listener on the host's loopback"
    out = g.output_of(T_MEAN)
    assert "NETWORK-PROBE" in out and ": OK" not in out, out


def _hidden_read(g: Graded, b: Baseline) -> None:
    _expect_in(g, T_MEAN, "HIDDEN-READ found: nothing",
               "HIDDEN-READ phases: own-folders+cmdlines+user-namespace")


def _kill_parents(g: Graded, b: Baseline) -> None:
    # the grader survived every kill and went on grading each test; without a pid
    # namespace the worker is not pid 1, so its own killpg ends it (and only it)
    for name in ALL_TESTS:
        if b.mode == "full":
            _expect_in(g, name, "KILL-REPORT", "NotImplementedError")
        else:
            _expect_in(g, name, "KILL-REPORT", "killed", "during the import of calc")
            report = re.search(r"KILL-REPORT (\[.*\])", g.output_of(name))
            assert report and ": killed" not in report.group(1), report


def _escape(g: Graded, b: Baseline) -> None:
    assert not _escape_files(), f"files created outside the sandbox: {_escape_files()}"
    _expect_in(g, T_MEAN, "ESCAPE-REPORT", "ESCAPED: nothing")


def _daemon(g: Graded, b: Baseline) -> None:
    _expect_in(g, T_MEAN, "DAEMONS started")  # they ran; check_no_leftovers is the point


def _results_squat(g: Graded, b: Baseline) -> None:
    if not g.output.is_file() or g.rc != 0 or g.data is None:
        kind = "a directory" if g.output.is_dir() else "missing"
        raise HarnessBug(f"results path squatted by the worker: results.json is {kind}, "
                         f"rc={g.rc}\n{g.stderr[-1500:]}")


def _course_read(g: Graded, b: Baseline) -> None:
    if g.secrets["other"] in (g.text or "") or (g.data or {}).get("score", 0) > b.score:
        raise HarnessBug("the worker read another assignment's hidden tests/solution: "
                         + g.output_of(T_MEAN)[:800])


def _perf_attack(g: Graded, b: Baseline) -> None:
    pool = g.test(T_POOL)
    if pool["score"] > 0:
        raise HarnessBug(f"a slow pool passed the performance test: {pool}")


def _tmp_leftover(g: Graded, b: Baseline) -> None:
    if g.leftover_files:
        raise HarnessBug(f"the worker left files on the host: {g.leftover_files}")


def _tmp_fill(g: Graded, b: Baseline) -> None:
    # bounded in both modes: the private tmpfs fills up, or the monitor stops the worker
    if b.mode == "full":
        _expect_in(g, T_DOUBLE, "TMPFILL stopped", "No space left on device")
    else:
        _expect_in(g, T_DOUBLE, "wrote more than 128 MB to the shared temp folders")
    if g.leftover_files:
        raise HarnessBug(f"the filler's files outlived the grading: {g.leftover_files}")


def _shm_shield(g: Graded, b: Baseline) -> None:
    if b.mode == "full":  # the private /dev/shm (a tmpfs) fills up first
        _expect_in(g, T_DOUBLE, "SHIELD")
    else:
        _expect_in(g, T_DOUBLE, "to the shared temp folders", "the worker was stopped")
    if g.leftover_files:
        raise HarnessBug(f"files hidden behind the flood outlived the grading: "
                         f"{g.leftover_files[:5]} ({len(g.leftover_files)} in all)")


def _late_shield(g: Graded, b: Baseline) -> None:
    if b.mode != "full":  # full: a private tmpfs, the writes fail
        _expect_in(g, T_DOUBLE, "to the shared temp folders", "the worker was stopped")
    if g.leftover_files:
        raise HarnessBug(f"files written after the import outlived the grading: "
                         f"{g.leftover_files[:5]}")


def _chain(g: Graded, b: Baseline) -> None:
    _expect_in(g, T_DOUBLE, "CHAIN started")  # it ran; check_no_leftovers is the point


def _raw_frames(g: Graded, b: Baseline) -> None:
    _expect_in(g, T_DOUBLE, "exceeds the", "limit")
    _expect_in(g, T_MEAN, "malformed message")
    _expect_in(g, T_COUNTER, "malformed array")
    _expect_in(g, T_POOL, "buffer table")


def _json_bomb(g: Graded, b: Baseline) -> None:
    assert g.report is not None, g.describe()
    grown = g.report["maxrss_mb"] - b.maxrss_mb
    if grown > 512:
        raise HarnessBug(f"a 64 MiB JSON reply made the grader grow by {grown:.0f} MB "
                         f"(peak {g.report['maxrss_mb']:.0f} MB)")


@dataclass(frozen=True)
class Case:
    name: str
    check: Callable[[Graded, Baseline], None]
    slow: bool = False
    check_first: bool = False  # its check runs before anything the attack could break
    # Substitutions in the hidden suite's assignment.toml for this case (a limit).
    ref_replace: tuple[tuple[str, str], ...] = ()

    def param(self) -> Any:
        marks: list[Any] = []
        if self.slow:
            marks.append(pytest.mark.slow)
        return pytest.param(self, id=self.name, marks=marks)


CASES = [
    Case("forge", _forge),
    Case("sys_exit", _sys_exit),
    Case("pytest_patch", _pytest_patch),
    Case("shipped_files", _shipped_files),
    Case("lying_values", _lying_values),
    Case("loop_import", _loop_import, slow=True),
    Case("loop_call", _loop_call, slow=True),
    Case("fork_bomb", _fork_bomb),
    # Filling 2 GiB up to the limit takes seconds on a loaded machine: the call timeout
    # must not end it first, or the check cannot see the memory limit at work.
    Case("memory_bomb", _memory_bomb, ref_replace=(("call_timeout = 3", "call_timeout = 30"),)),
    Case("output_flood", _output_flood),
    Case("network", _network),
    Case("hidden_read", _hidden_read),
    Case("kill_parents", _kill_parents),
    Case("escape", _escape),
    Case("daemon", _daemon),
    Case("raw_frames", _raw_frames),
    Case("results_squat", _results_squat, check_first=True),
    Case("course_read", _course_read, check_first=True),
    Case("probe_patch", _perf_attack, check_first=True),
    Case("desync", _perf_attack, check_first=True),
    Case("lazy_result", _perf_attack, check_first=True),
    Case("throttle_yardstick", _perf_attack, check_first=True),
    Case("tmp_leftover", _tmp_leftover, check_first=True),
    Case("tmp_fill", _tmp_fill),
    Case("shm_shield", _shm_shield),
    Case("late_shield", _late_shield),
    Case("chain", _chain),
    Case("json_bomb", _json_bomb, check_first=True),
]


# -- fixtures and tests -------------------------------------------------------------------

@pytest.fixture(scope="session")
def template_baseline(mode: str) -> Baseline:
    """The template, graded once per session and mode with the same machinery: it must
    score 0."""
    g = grade_submission("template", FIXTURE / "template", mode=mode)
    try:
        check_completed(g)
        assert g.data is not None, g.describe()
        results_mod.validate(g.data)
        assert g.data["score"] == 0, f"the template scored {g.data['score']}"
        assert len(g.data["tests"]) == 5
        assert g.report is not None
        return Baseline(mode=mode, score=g.data["score"], names=[t["name"] for t in g.data["tests"]],
                        maxrss_mb=g.report["maxrss_mb"],
                        protections=g.data["extra_data"]["protections"])
    finally:
        cleanup(g)


def test_reference_solution_gets_full_marks(template_baseline: Baseline) -> None:
    """The hidden suite can award points at all (else "score <= template" proves nothing)."""
    g = grade_submission("good", FIXTURE / "good", mode=template_baseline.mode)
    try:
        check_completed(g)
        check_results(g, template_baseline.names)
        assert g.data is not None
        assert g.data["score"] == 6, json.dumps(g.data["tests"], indent=1)
        check_no_leftovers(g)
    finally:
        cleanup(g)


@needs_sandbox
def test_sandbox_protections_active(template_baseline: Baseline) -> None:
    """Where the kernel allows it, the harness must not silently run without protections;
    in docker-default mode only those that need namespaces are off, and say why."""
    from autograder.sandbox import landlock

    off = [p for p in template_baseline.protections if not p["active"]
           and not (p["name"] == "landlock-scopes" and landlock.abi_version() < landlock.MIN_ABI)]
    if template_baseline.mode == "full":
        assert not off, f"protections off although this machine supports them: {off}"
        return
    # Landlock (Linux 5.13) gives the allow-list and the read-only host without a mount
    # namespace; what only namespaces give stays off, and says why.
    expected = NAMESPACE_ONLY - ({"read-only-filesystems", "host-folders"}
                                 if landlock.abi_version() >= 1 else set())
    assert {p["name"] for p in off} == expected, off
    assert all("refuses new namespaces" in p["detail"] for p in off), off
    active = {p["name"]: p["detail"] for p in template_baseline.protections if p["active"]}
    assert "file permissions" in active["hidden-paths"], active
    assert "AF_UNIX" in active["network"], active
    assert "this grading's own" in active["unprivileged-user"], active
    assert "tmp-cleanup" in active and "syscall-filter" in active, active
    if landlock.abi_version() >= landlock.MIN_ABI:  # abstract sockets, signals: Linux 6.12
        assert "Landlock" in active["landlock-scopes"], active


@needs_sandbox
@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_adversarial(case: Case, template_baseline: Baseline) -> None:
    g = grade_submission(case.name, SUBS / case.name, mode=template_baseline.mode,
                         ref_replace=dict(case.ref_replace))
    try:
        if case.check_first:
            case.check(g, template_baseline)
        check_completed(g)
        check_results(g, template_baseline.names)
        check_score(g, template_baseline.score)
        check_no_leftovers(g)
        if not case.check_first:
            case.check(g, template_baseline)
    finally:
        cleanup(g)


def test_slow_pool_fails_the_performance_test(template_baseline: Baseline) -> None:
    """An honest but slow pool must lose the performance points (else the probe_patch and
    desync cases prove nothing)."""
    g = grade_submission("slow", FIXTURE / "slow", mode=template_baseline.mode)
    try:
        check_completed(g)
        check_results(g, template_baseline.names)
        pool = g.test(T_POOL)
        assert pool["score"] == 0 and "x the time of a vectorized version" in pool["output"], pool
    finally:
        cleanup(g)


@needs_sandbox
def test_concurrent_gradings_cannot_read_each_other(template_baseline: Baseline) -> None:
    """Two gradings on one machine with the default shared TMPDIR (here a 1777 folder like
    /tmp): the peek_other submission must not see the victim's code."""
    from concurrent.futures import ThreadPoolExecutor

    shared = Path(tempfile.mkdtemp(prefix=f"{PROC_MARK}-shared-", dir="/tmp"))
    shared.chmod(0o1777)
    victim_secret = "AGADV" + "VICTIM" + uuid.uuid4().hex
    graded: list[Graded] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            victim_f = pool.submit(grade_submission, "victim", FIXTURE / "good", tmpdir=shared,
                                   replace={"@@SENTINEL@@": victim_secret},
                                   mode=template_baseline.mode)
            attacker_f = pool.submit(grade_submission, "peek_other", SUBS / "peek_other",
                                     tmpdir=shared, mode=template_baseline.mode)
            victim, attacker = victim_f.result(), attacker_f.result()
        graded = [victim, attacker]
        if victim_secret in (attacker.text or "") or (attacker.data or {}).get("score", 0) > 0:
            raise HarnessBug("a concurrent worker read the other submission's code: "
                             + attacker.output_of(T_MEAN)[:600])
        for g in graded:
            check_completed(g)
            check_results(g, template_baseline.names)
            check_no_leftovers(g)
        assert victim.data is not None and victim.data["score"] == 6, victim.text
        check_score(attacker, template_baseline.score)
        _expect_in(attacker, T_MEAN, "PEEK found:")
    finally:
        for g in graded:
            cleanup(g)
        shutil.rmtree(shared, ignore_errors=True)


def _succeeded(g: Graded, b: Baseline) -> bool:
    return FORGED_MARK in (g.text or "") or (g.data or {}).get("score", 0) > b.score


def _left_daemons(g: Graded, b: Baseline) -> bool:
    tag = case_tag(g.base)
    return bool(g.report and any(tag in f"{p['comm']} {p['cmdline']}"
                                 for p in g.report["leftovers"]))


CONTROLS: dict[str, Callable[[Graded, Baseline], bool]] = {
    "forge": _succeeded, "pytest_patch": _succeeded, "network": _succeeded,
    "hidden_read": _succeeded, "course_read": _succeeded, "probe_patch": _succeeded,
    "daemon": _left_daemons,
}


@pytest.mark.parametrize("mode", ["full"], indirect=True)  # no sandbox: the mode is moot
@pytest.mark.parametrize("case", sorted(CONTROLS))
def test_attack_works_without_sandbox(case: str, template_baseline: Baseline) -> None:
    """Control: with isolation="none" (student code in the grader process) these attacks
    succeed (points, a forged results.json, processes left behind), so the sandboxed
    tests above are not vacuous and the leftover detector does see leftovers. Only
    attacks that are harmless to the host when unconfined are run this way."""
    # A generous call timeout: the control asks whether the attack works, and on a busy
    # CI machine (other sandboxed attacks in parallel) hidden_read's search ran past 3 s.
    g = grade_submission(case, SUBS / case, isolation="none",
                         ref_replace={"call_timeout = 3": "call_timeout = 60"})
    try:
        toml = g.base / "course" / "reference_tests" / "x1_calc" / "assignment.toml"
        assert "call_timeout = 60" in toml.read_text(), "the fixture's call_timeout line changed"
        assert CONTROLS[case](g, template_baseline), (
            f"{case} did not succeed without the sandbox; the attack is broken, so its "
            f"sandboxed test proves nothing\n{g.describe()}\n{(g.text or '')[:3000]}")
    finally:
        cleanup(g)
