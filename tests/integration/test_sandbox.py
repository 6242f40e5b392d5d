"""The sandbox contract, checked end to end on a fixture assignment.

One graded run (a subprocess, as `autograder grade` runs it) of
tests/fixtures/plugin/sandbox: its hidden tests probe the worker from the grader side
(uid, network, hidden folders, environment, timeouts, crashes, leftovers), and the tests
here read their verdicts from results.json. Protections that need root are skipped with
a reason elsewhere; a second run as `nobody` checks that they then degrade visibly.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from autograder.grading import results
from autograder.sandbox import landlock

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "plugin" / "sandbox"
from autograder.grading.runner import GRADING_INI  # noqa: E402

IS_ROOT = os.getuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason=(
    "needs root: without it the worker keeps the grader's uid, network and view of the "
    "file system (reported as inactive protections)"))
SECRET = "hunter2-grader-only"
ALL_PROTECTIONS = {"network", "pid-namespace", "ipc-namespace", "hidden-paths", "private-tmp", "private-proc",
                   "read-only-filesystems", "rlimits", "scrubbed-env", "process-cleanup",
                   "unprivileged-user", "syscall-filter", "host-folders", "landlock-scopes"}
# Landlock's scopes need Linux 6.12; an older kernel reports them off, and says why.
SCOPES_HERE = landlock.abi_version() >= landlock.MIN_ABI
REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "tests" / "support" / "docker_default.py"


def daemons(seconds: str) -> list[int]:
    """Pids of `sleep SECONDS` processes (the daemon the fixture submission tries to leave)."""
    want = b"sleep\0" + seconds.encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == want:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def kill_daemons(seconds: str) -> None:
    for pid in daemons(seconds):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def course():
    """COURSE/reference_tests/s1 (+ solutions/s1) and SUB/, all world-readable, so only the
    sandbox (not file modes) can keep the worker out of the hidden folders."""
    base = Path(tempfile.mkdtemp(prefix="ag-sandbox-test-"))
    try:
        ref = base / "course" / "reference_tests" / "s1"
        shutil.copytree(FIXTURE / "ref", ref)
        shutil.copytree(FIXTURE / "solution", base / "course" / "solutions" / "s1")
        shutil.copytree(FIXTURE / "sub", base / "sub")
        (base / "out").mkdir()
        for p in [base, *base.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_graded(base: Path, out: Path, *extra: str, user: str | None = None,
               host_leak: Path = Path("/nonexistent"),
               ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], float, str]:
    seconds = f"{random.randint(1000, 9999)}.{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(SECRET_TOKEN=SECRET, SUBMISSION_DIR=str(base / "sub"), DAEMON_SECONDS=seconds,
               HOME=str(out.parent), HOST_LEAK=str(host_leak))
    ref = base / "course" / "reference_tests" / "s1"
    cmd = [sys.executable, "-m", "pytest", *(extra or [str(ref)]), "-c", str(GRADING_INI),
           "--rootdir", str(ref), "--submission", str(base / "sub"), "--ag-results", str(out),
           "-q", "-p", "no:randomly"]
    kwargs: dict[str, Any] = {}
    if user is not None:
        # Through the wrapper: in a checkout in a 0700 folder the venv is otherwise out of
        # the user's reach (a mount namespace of the wrapper's makes it traversable).
        cmd = [sys.executable, str(LAUNCHER), "--reachable", sys.executable, "--reachable",
               str(REPO), "--user", user, "--", *cmd]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=base,
                              env=env, **kwargs)
    finally:
        leftovers = daemons(seconds)
        kill_daemons(seconds)
    elapsed = time.monotonic() - start
    assert out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    results.validate(data)
    return proc, data, elapsed, ",".join(map(str, leftovers))


@pytest.fixture(scope="module")
def host_leak():
    """A world-readable copy of a solution in a folder at / that no allow-list names."""
    folder = Path(f"/ag-sandbox-leak-{os.getpid()}-{random.randint(0, 10**9)}")
    leak = folder / "solution.py"
    if IS_ROOT:
        folder.mkdir(mode=0o755)
        leak.write_text("copied solution")
        leak.chmod(0o644)
    try:
        yield leak
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def graded(course, host_leak):
    proc, data, elapsed, leftovers = run_graded(course, course / "out" / "results.json",
                                                host_leak=host_leak)
    tests = {t["name"]: t for t in data["tests"]}
    return {"proc": proc, "data": data, "tests": tests, "elapsed": elapsed,
            "leftovers": leftovers}


def verdict(graded: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in graded["tests"], sorted(graded["tests"])
    return graded["tests"][name]


def assert_passed(graded: dict[str, Any], name: str) -> None:
    t = verdict(graded, name)
    assert t["status"] == "passed", f"{name}: {t['output']}"


# ------------------------------------------------------------------ root-only protections

@needs_root
def test_worker_runs_as_unprivileged_user(graded):
    assert_passed(graded, "Worker runs as an unprivileged uid of its own")


@needs_root
def test_worker_has_no_network(graded):
    assert_passed(graded, "Worker has no network")


@needs_root
def test_worker_cannot_read_hidden_tests_or_solutions(graded, course):
    # the files are world-readable: only the sandbox's tmpfs mounts keep the worker out
    assert os.stat(course / "course" / "reference_tests" / "s1" / "test_sandbox_checks.py").st_mode & 0o004
    assert_passed(graded, "Worker cannot read hidden tests or solutions")
    prot = {p["name"]: p for p in graded["data"]["extra_data"]["protections"]}
    # The whole course checkout: other assignments' hidden tests, .git, demo output too.
    hidden = prot["hidden-paths"]["detail"].removeprefix("hidden: ").split(", ")
    target = course / "course"
    assert any(Path(h) == target or Path(h) in target.parents for h in hidden), hidden
    assert prot["read-only-filesystems"]["active"]


@needs_root
def test_processes_left_by_the_worker_are_killed(graded):
    assert_passed(graded, "Processes started by the worker die with it")
    assert graded["leftovers"] == "", f"processes left behind: {graded['leftovers']}"


@needs_root
def test_worker_sees_only_system_folders_of_the_host(graded):
    assert_passed(graded, "Worker sees only system folders of the host")


@needs_root
def test_protections_are_listed_and_active(graded):
    data = graded["data"]
    prot = {p["name"]: p for p in data["extra_data"]["protections"]}
    assert ALL_PROTECTIONS <= set(prot)
    assert all(p["active"] for n, p in prot.items() if n != "landlock-scopes"), prot
    assert prot["landlock-scopes"]["active"] is SCOPES_HERE, prot["landlock-scopes"]
    assert data["extra_data"]["isolation"] == "sandbox"
    assert "protections" not in data["output"].lower()  # nothing to warn about


# ------------------------------------------------------------------ everywhere

def test_environment_is_scrubbed(graded):
    assert_passed(graded, "Worker environment holds no grader secrets")


def test_assignment_environment_reaches_the_worker(graded):
    """[environment] of assignment.toml travels in the SandboxSpec to enter_worker."""
    assert_passed(graded, "Worker environment holds the assignment's [environment], harness "
                          "variables unchanged")


def test_worker_runs_in_a_private_copy(graded):
    assert_passed(graded, "Worker runs in a private copy of the submission")


def test_timeout_fails_only_that_test(graded):
    t = verdict(graded, "A call that sleeps past its timeout")
    assert t["status"] == "failed" and t["score"] == 0
    assert "exceeded 1 s" in t["output"] and "snoop.nap" in t["output"]
    # where it was stuck, from the worker's stack (also without root: test_without_root...)
    assert "it was running nap (snoop.py, line 68)" in t["output"], t["output"]
    assert 'File "snoop.py", line 68, in nap\n    time.sleep(seconds)' in t["output"]
    assert_passed(graded, "Next test after a timeout gets a fresh worker")
    # The nap was cut short: an hour-long nap, and run_graded's subprocess timeout is 120 s.


def test_os_exit_fails_the_test_with_a_message(graded):
    t = verdict(graded, "A call that ends the worker with os._exit")
    assert t["status"] == "failed"
    assert "exited with code 3" in t["output"] and "snoop.die" in t["output"]
    assert_passed(graded, "Next test after os._exit works")


def test_sys_exit_is_reported(graded):
    t = verdict(graded, "sys.exit in student code is reported")
    assert t["status"] == "failed" and "SystemExit in snoop.leave: 4" in t["output"]
    assert 'File "snoop.py"' in t["output"]


def test_kernel_interfaces_are_filtered(graded):
    assert_passed(graded, "Worker cannot create namespaces, mount, trace or reach bpf/io_uring")


def test_fresh_replaces_the_worker(graded):
    assert_passed(graded, "student.fresh() replaces the worker")


def test_the_grader_survives_and_reports_everything(graded):
    proc, data = graded["proc"], graded["data"]
    assert proc.returncode == 1, proc.stdout[-3000:]  # some tests failed, nothing crashed
    assert "harness_error" not in data["extra_data"]
    assert len(data["tests"]) == 15
    assert "INTERNALERROR" not in proc.stdout + proc.stderr


# ------------------------------------------------------------------ visible degradation

@pytest.mark.skipif(not IS_ROOT, reason="needs root to start the grader as another user")
def test_without_root_protections_degrade_visibly(course):
    """Graded by an unprivileged user: namespaces and the uid switch are off, and the
    results say so; scrubbing, timeouts and crash handling still work."""
    out_dir = course / "out-nobody"
    out_dir.mkdir()
    shutil.chown(out_dir, "nobody")
    ref = course / "course" / "reference_tests" / "s1"
    picked = [f"{ref}/test_sandbox_checks.py::{name}" for name in (
        "test_environment_is_scrubbed", "test_environment_of_the_assignment", "test_timeout", "test_after_timeout", "test_os_exit",
        "test_after_os_exit", "test_kernel_calls_are_filtered")]
    proc, data, _, _ = run_graded(course, out_dir / "results.json", *picked, user="nobody")
    prot = {p["name"]: p for p in data["extra_data"]["protections"]}
    assert ALL_PROTECTIONS <= set(prot)
    off = {n for n, p in prot.items() if not p["active"]}
    assert {"pid-namespace", "hidden-paths", "host-folders", "unprivileged-user"} <= off
    assert prot["syscall-filter"]["active"]  # seccomp needs no root...
    assert prot["network"]["active"] and "AF_UNIX" in prot["network"]["detail"]  # ...nor this
    assert all(prot[n]["detail"] for n in off)
    summary = data["output"].lower()
    assert "protections" in summary  # said where students and staff read it
    for name in off:
        assert name in data["output"]
    status = {t["name"]: t["status"] for t in data["tests"]}
    nap = next(t for t in data["tests"] if t["name"] == "A call that sleeps past its timeout")
    assert "it was running nap (snoop.py, line 68)" in nap["output"], nap["output"]
    assert status == {
        "Worker environment holds no grader secrets": "passed",
        "Worker environment holds the assignment's [environment], harness variables unchanged":
            "passed",
        "A call that sleeps past its timeout": "failed",
        "Next test after a timeout gets a fresh worker": "passed",
        "A call that ends the worker with os._exit": "failed",
        "Next test after os._exit works": "passed",
        "Worker cannot create namespaces, mount, trace or reach bpf/io_uring": "passed",
    }, proc.stdout[-3000:]
