"""Docker grading images, built and attacked for real (marker ``docker``).

A session builds the grading image of the tiny course's a9 (its Gradescope bundle
installed by setup.sh in the image, offline from the wheelhouse), grades submissions in
containers with `autograder grade --image`, and runs the adversarial suite inside a
container of that image: the grader is root there with Docker's default capabilities and
seccomp profile, the real form of the suite's emulated "docker-default" mode.

Where no engine runs these tests skip with the reason; `.ci/run` starts dockerd, sets
AUTOGRADER_REQUIRE_DOCKER=1 (then a missing engine fails them) and builds the base image.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from course_cli import COURSE, ag

from autograder.grading import results

# An image build (a fresh dependency layer: minutes) and the adversarial suite in a
# container run far longer than the suite's default per-test timeout.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[2]
TAG = "dl-autograder-test-a9:cpu"
ADVERSARIAL_TAG = "dl-autograder-test-adversarial:cpu"


def _engine() -> Any:
    try:
        import docker

        c = docker.from_env()
        c.ping()
        return c
    except Exception as exc:  # noqa: BLE001 - any failure: no engine here
        reason = f"no Docker engine: {exc}"
    if os.environ.get("AUTOGRADER_REQUIRE_DOCKER") == "1":
        pytest.fail(f"AUTOGRADER_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine() -> Any:
    return _engine()


@pytest.fixture(scope="module")
def image(engine: Any) -> str:
    """The a9 grading image, built through the CLI as course staff would."""
    from autograder.packaging.images import BASE_TAG

    try:
        engine.images.get(BASE_TAG)
    except Exception:  # noqa: BLE001 - not there yet: make it (root and debootstrap)
        proc = ag("image", "base", cwd=REPO)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "-m", "autograder", "image", "build", "a9",
                           "--course", str(COURSE), "--tag", TAG], capture_output=True,
                          text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert TAG in proc.stdout
    return TAG


def _grade(image: str, submission: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = ag("grade", "a9", str(submission), "-o", str(out), "--course", str(COURSE),
              "--image", image, "--memory", "2048", *extra, cwd=out.parent)
    data = json.loads(out.read_text())
    results.validate(data)
    return proc, data


def test_image_holds_the_bundle_and_no_wheelhouse(engine: Any, image: str) -> None:
    img = engine.images.get(image)
    assert img.labels["org.dl-autograder.assignment"] == "a9"
    listing = engine.containers.run(
        image, ["bash", "-c", "ls /autograder/source; stat -c '%a %U' /autograder/source/course; "
                "/autograder/venv/bin/python -c 'import autograder, torch; print(torch.__version__)'"],
        remove=True, network_mode="none").decode()
    assert "run_autograder" in listing and "setup.sh" in listing
    assert "wheelhouse" not in listing  # installed, then removed from the image
    assert "700 root" in listing  # the hidden suite: root only
    assert "+cpu" in listing


def test_grades_solution_template_and_forger_in_containers(image: str, tmp_path: Path) -> None:
    proc, full = _grade(image, COURSE / "solutions" / "a9_tiny", tmp_path / "full.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert full["score"] == 2 and f"in {image}" in proc.stdout
    proc, zero = _grade(image, COURSE / "assignments" / "a9_tiny", tmp_path / "zero.json")
    assert proc.returncode == 0 and zero["score"] == 0
    # Writes Gradescope's results file itself and reads the hidden suite: both refused.
    evil = tmp_path / "evil"
    shutil.copytree(COURSE / "assignments" / "a9_tiny", evil)
    forged = json.dumps({"score": 999, "tests": []})
    (evil / "ops.py").write_text((evil / "ops.py").read_text() + f"""
for path in ["/autograder/results/results.json"]:
    try:
        with open(path, "w") as f:
            f.write({forged!r})
    except OSError as exc:
        print("FORGE failed:", exc)
try:
    print("PEEK", open("/autograder/source/course/reference_tests/a9_tiny/hidden/test_hidden.py").read()[:40])
except OSError as exc:
    print("PEEK failed:", exc)
""")
    proc, data = _grade(image, evil, tmp_path / "evil.json")
    assert proc.returncode == 0 and data["score"] == 0 and data["tests"], data
    assert "PEEK failed" in json.dumps(data) and "FORGE failed" in json.dumps(data)


def test_bad_submissions_get_a_clear_result(image: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc, data = _grade(image, empty, tmp_path / "empty.json")
    assert proc.returncode == 0 and data["score"] == 0
    assert "ops" in data["output"] or any("ops" in t["output"] for t in data["tests"]), data
    unsafe = tmp_path / "unsafe.zip"
    with zipfile.ZipFile(unsafe, "w") as zf:
        zf.writestr("../../etc/evil.py", "x = 1\n")
    proc, data = _grade(image, unsafe, tmp_path / "unsafe.json")
    assert proc.returncode == 0 and data["score"] == 0
    assert "could not be unpacked" in proc.stdout and ".." in data["output"], data


def _derived(engine: Any, base: str, tag: str, run_autograder: str) -> str:
    """``base`` with its run_autograder replaced: a container that misbehaves."""
    dockerfile = (f"FROM {base}\nCOPY run_autograder /autograder/source/run_autograder\n"
                  "RUN chmod 755 /autograder/source/run_autograder\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, text in (("Dockerfile", dockerfile), ("run_autograder", run_autograder)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    engine.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True, network_mode="none")
    return tag


@pytest.fixture(scope="module")
def misbehaving(engine: Any, image: str) -> Iterator[dict[str, str]]:
    tags = {
        "invalid": _derived(engine, image, "dl-autograder-test-invalid:cpu",
                            "#!/bin/bash\necho '{\"score\": \"lots\", \"tests\": 3}' "
                            "> /autograder/results/results.json\n"),
        "hang": _derived(engine, image, "dl-autograder-test-hang:cpu",
                         "#!/bin/bash\nexec sleep 600\n"),
        "oom": _derived(engine, image, "dl-autograder-test-oom:cpu",
                        "#!/bin/bash\nexec /autograder/venv/bin/python -c "
                        "'import time; a = bytearray(900 << 20); a[::4096] = b\"x\" * len(a[::4096]); "
                        "time.sleep(60)'\n"),
    }
    yield tags
    for tag in tags.values():
        engine.images.remove(tag, force=True)


def _expected() -> list[results.TestRecord]:
    from autograder.grading.runner import expected_records

    return expected_records(assignment="a9", root=COURSE)


def test_invalid_results_json_fails_closed(misbehaving: dict[str, str], tmp_path: Path) -> None:
    from autograder.errors import ExitCode
    from autograder.grading.container import grade_in_container

    out = tmp_path / "r.json"
    outcome = grade_in_container(image=misbehaving["invalid"], output=out, timeout=60,
                                 submission=COURSE / "solutions" / "a9_tiny", expected=_expected())
    data = json.loads(out.read_text())
    results.validate(data)
    assert outcome.exit_code == ExitCode.HARNESS_ERROR and data["score"] == 0
    assert data["extra_data"]["harness_error"] and len(data["tests"]) > 1
    assert "invalid results.json" in results.harness_cause(data, full=True)


def test_hanging_container_is_killed_and_the_student_told(misbehaving: dict[str, str],
                                                         tmp_path: Path) -> None:
    from autograder.grading import container
    from autograder.grading.container import grade_in_container

    out = tmp_path / "r.json"
    old, container.BACKSTOP = container.BACKSTOP, 1.0
    try:
        outcome = grade_in_container(image=misbehaving["hang"], output=out, timeout=3,
                                     submission=COURSE / "solutions" / "a9_tiny",
                                     expected=_expected())
    finally:
        container.BACKSTOP = old
    data = json.loads(out.read_text())
    assert outcome.exit_code == 0 and data["score"] == 0
    assert "took longer than the limit of 3 seconds" in data["output"]
    assert [t["name"] for t in data["tests"]] == [r.name for r in _expected()]


def test_container_out_of_memory_fails_closed(misbehaving: dict[str, str], tmp_path: Path) -> None:
    from autograder.grading.container import Limits, grade_in_container

    out = tmp_path / "r.json"
    grade_in_container(image=misbehaving["oom"], output=out, timeout=60,
                       submission=COURSE / "solutions" / "a9_tiny", expected=_expected(),
                       limits=Limits(memory_mb=256))
    data = json.loads(out.read_text())
    assert data["extra_data"]["harness_error"] and data["score"] == 0
    assert "ran out of memory (limit 256 MB)" in results.harness_cause(data, full=True)


def test_an_image_of_another_assignment_is_refused(engine: Any, image: str, tmp_path: Path) -> None:
    other = tmp_path / "course"
    shutil.copytree(COURSE, other)
    for kind in ("reference_tests", "solutions", "assignments"):
        (other / kind / "a9_tiny").rename(other / kind / "a8_tiny")
    toml = other / "reference_tests" / "a8_tiny" / "assignment.toml"
    toml.write_text(toml.read_text().replace('id = "a9"', 'id = "a8"'))
    proc = ag("grade", "a8", str(other / "solutions" / "a8_tiny"), "-o", str(tmp_path / "r.json"),
              "--course", str(other), "--image", image, cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"the image {image} grades a9, not a8" in proc.stdout + proc.stderr


def test_missing_image_is_a_clear_error(engine: Any, tmp_path: Path) -> None:
    proc = ag("grade", "a9", str(COURSE / "solutions" / "a9_tiny"), "-o", str(tmp_path / "r.json"),
              "--course", str(COURSE), "--image", "dl-autograder-no-such-image:cpu", cwd=tmp_path)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "dl-autograder-no-such-image:cpu does not exist" in out
    assert "autograder image build" in out


def test_setup_sh_without_network_or_wheelhouse_says_why(engine: Any, tmp_path: Path) -> None:
    from autograder.packaging.gradescope import build_bundle
    from autograder.packaging.images import BASE_TAG

    bundle = build_bundle(COURSE, "a9_tiny", tmp_path / "a9.zip")
    source = tmp_path / "source"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(source)
    out = engine.containers.create(
        BASE_TAG, ["bash", "/autograder/source/setup.sh"], network_mode="none",
        volumes={str(source): {"bind": "/autograder/source", "mode": "rw"}})
    try:
        out.start()
        status = out.wait(timeout=300)
        logs = out.logs().decode()
    finally:
        out.remove(force=True)
    assert status["StatusCode"] != 0
    assert "has no wheelhouse/" in logs and "--wheelhouse" in logs, logs[-2000:]


@pytest.fixture(scope="module")
def adversarial_image(engine: Any, image: str) -> Iterator[str]:
    """The grading image plus this checkout's tests: the adversarial suite runs in it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(REPO / "tests", arcname="repo/tests",
               filter=lambda t: None if "__pycache__" in t.name else t)
        tf.add(REPO / "pyproject.toml", arcname="repo/pyproject.toml")
        dockerfile = (f"FROM {image}\nCOPY repo /work/repo\nWORKDIR /work/repo\n"
                      "ENV AUTOGRADER_TEST_IN_CONTAINER=1\n")
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tf.addfile(info, io.BytesIO(dockerfile.encode()))
    buf.seek(0)
    engine.images.build(fileobj=buf, custom_context=True, tag=ADVERSARIAL_TAG, rm=True,
                        network_mode="none")
    yield ADVERSARIAL_TAG
    engine.images.remove(ADVERSARIAL_TAG, force=True)


def test_adversarial_suite_holds_in_a_real_container(engine: Any, adversarial_image: str) -> None:
    """Every attack of tests/integration/test_adversarial.py, graded by a grader that is
    root inside a container with Docker's defaults (no --privileged, default seccomp and
    capabilities; the container even has a network: the sandbox must keep workers off it)."""
    c = engine.containers.create(
        adversarial_image,
        ["/autograder/venv/bin/python", "-m", "pytest", "tests/integration/test_adversarial.py",
         "-v", "-p", "no:cacheprovider", "-o", "addopts=", "-rs", "--timeout", "600"],
        mem_limit="6g", pids_limit=4096)
    try:
        c.start()
        status = c.wait(timeout=1800)
        logs = c.logs().decode("utf-8", "replace")
    finally:
        c.remove(force=True)
    if os.environ.get("AUTOGRADER_ADVERSARIAL_LOG"):  # the attack table, for a report
        Path(os.environ["AUTOGRADER_ADVERSARIAL_LOG"]).write_text(logs)
    tail = logs[-6000:]
    assert status["StatusCode"] == 0, tail
    summary = re.search(r"(\d+) passed", tail)
    assert summary and int(summary.group(1)) >= 30, tail
    assert "skipped" not in tail.splitlines()[-1], tail  # every attack ran, none skipped


def test_loopback_assignment_gets_the_containers_own(engine: Any, image: str,
                                                      tmp_path: Path) -> None:
    """No network namespace in a container (Docker's seccomp refuses it), but the grading
    container has no network: a [sandbox] loopback assignment grades there, its server on
    the container's own loopback, instead of stopping for want of a private one."""
    from test_loopback import SERVER

    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    ref = course / "reference_tests" / "a9_tiny"
    (ref / "assignment.toml").write_text((ref / "assignment.toml").read_text()
                                         + "\n[sandbox]\nloopback = true\n")
    (ref / "hidden" / "test_loopback.py").write_text(
        'def test_server(student):\n    """a server and its client on the loopback"""\n'
        '    assert student.module("ops").loopback_echo(1) == "PING host unreachable"\n')
    ops = course / "solutions" / "a9_tiny" / "ops.py"
    ops.write_text(ops.read_text() + SERVER)
    tag = "dl-autograder-test-a9-loopback:cpu"
    proc = ag("image", "build", "a9", "--course", str(course), "--tag", tag, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    try:
        out = tmp_path / "results.json"
        proc = ag("grade", "a9", str(course / "solutions" / "a9_tiny"), "-o", str(out),
                  "--course", str(course), "--image", tag, "--memory", "2048", cwd=tmp_path)
        data = json.loads(out.read_text())
        assert proc.returncode == 0, proc.stdout + proc.stderr
        test = next(t for t in data["tests"] if "on the loopback" in t["name"])
        assert test["status"] == "passed", test["output"]
        prot = {p["name"]: p for p in data["extra_data"]["protections"]}
        assert prot["loopback"]["active"] and "container's own" in prot["loopback"]["detail"]
        assert "no network, only its own loopback" in prot["network"]["detail"]
    finally:
        engine.images.remove(tag, force=True)
