"""Grade one submission in a grading image (`autograder grade --image TAG`).

The container runs the image's run_autograder, as Gradescope would, with Docker's default
capabilities and seccomp profile plus: no network, memory/CPU/pids limits, a read-only
root, the submission mounted read-only and a scratch /tmp. Only results.json comes back,
through an empty host folder mounted on /autograder/results; the host reads it as JSON,
bounded in size, and validates it against the schema before use (never unpickles).
Whatever goes wrong (no results, invalid results, out of memory, killed) the output is a
schema-valid results.json: the student's fault is told to the student, the harness's
fails closed with a staff-only cause.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.errors import ConfigError, ExitCode
from autograder.grading import results
from autograder.grading.results import TestRecord
from autograder.sandbox.namespaces import CONTAINER_ENV

MAX_RESULTS_BYTES = 32 * 2**20
# Beyond `grade --timeout`, which run_autograder passes on (the running test is stopped and
# the finished ones keep their points), the container itself is killed this much later.
BACKSTOP = 60.0


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 8192
    cpus: float = 2.0
    pids: int = 512
    tmp_mb: int = 2048


@dataclass
class ContainerOutcome:
    exit_code: ExitCode
    data: dict[str, Any]
    logs: str = ""


def grade_in_container(*, image: str, submission: Path, output: Path,
                       expected: list[TestRecord], timeout: float,
                       limits: Limits = Limits(), gpus: bool = False,
                       assignment_id: str | None = None) -> ContainerOutcome:
    """Grade ``submission`` (a folder) in a container of ``image``; write ``output``
    whatever happens (a Docker failure fails closed, then raises ConfigError).
    ``assignment_id``: refuse an image built for another assignment."""
    import docker

    if not (limits.cpus > 0 and limits.memory_mb > 0 and limits.pids > 0):
        raise ConfigError(f"container limits must be positive: --cpus {limits.cpus}, "
                          f"--memory {limits.memory_mb}, pids {limits.pids}")
    c = docker_client()
    try:
        found = c.images.get(image)
    except docker.errors.ImageNotFound:
        raise ConfigError(f"the grading image {image} does not exist; build it with "
                          "`autograder image build ASSIGNMENT`") from None
    image_id = found.id  # by id: nothing can be pulled in its place
    made_for = (found.labels or {}).get("org.dl-autograder.assignment")
    if assignment_id and made_for and made_for != assignment_id:
        raise ConfigError(f"the image {image} grades {made_for}, not {assignment_id}; build "
                          f"{assignment_id}'s with `autograder image build {assignment_id}`")
    output = output.resolve()
    output.unlink(missing_ok=True)
    start = time.monotonic()
    box = Path(tempfile.mkdtemp(prefix="autograder-container-"))
    container = None
    try:
        res = box / "results"
        res.mkdir(mode=0o700)
        # A private copy: the grader inside hides the submission from its workers by file
        # modes, which it cannot set on a read-only mount of the original.
        sub = box / "submission"
        shutil.copytree(submission, sub, symlinks=True)
        sub.chmod(0o700)
        deadline = int(timeout + BACKSTOP)
        kwargs: dict[str, Any] = dict(
            # coreutils' timeout: the container ends by itself even if this process dies
            command=["timeout", "-s", "KILL", str(deadline + 30),
                     "/autograder/source/run_autograder", "--timeout", repr(float(timeout))],
            network_mode="none", read_only=True,
            # the grader inside may then give workers the container's loopback (checked there)
            environment={CONTAINER_ENV: "1"},
            mem_limit=f"{limits.memory_mb}m", memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9), pids_limit=limits.pids,
            tmpfs={"/tmp": f"rw,exec,nosuid,size={limits.tmp_mb}m,mode=1777"},
            volumes={str(sub): {"bind": "/autograder/submission", "mode": "ro"},
                     str(res): {"bind": "/autograder/results", "mode": "rw"}},
            labels={"org.dl-autograder.grading": "1"})
        if gpus:
            kwargs["device_requests"] = [docker.types.DeviceRequest(count=-1,
                                                                    capabilities=[["gpu"]])]
        try:
            container = c.containers.create(image_id, **kwargs)
            container.start()
            outcome = _wait(c, container, res, expected, timeout, deadline, limits, start)
        except docker.errors.DockerException as exc:
            data = results.fail_closed(_fresh(expected), f"Docker failed: {exc}",
                                       execution_time=time.monotonic() - start)
            results.write(data, output)
            raise ConfigError(f"grading in {image} failed in Docker: {exc} (results.json "
                              "written: every test at 0, a harness error)") from exc
        results.write(outcome.data, output)
        return outcome
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001, S110 - already gone
                pass
        shutil.rmtree(box, ignore_errors=True)


def _wait(c: Any, container: Any, res: Path, expected: list[TestRecord], timeout: float,
          deadline: float, limits: Limits, start: float) -> ContainerOutcome:
    import requests

    killed = False
    try:
        status = container.wait(timeout=deadline)
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
        if time.monotonic() - start < deadline - 1:
            raise ConfigError(f"lost the Docker engine while grading: {exc}") from exc
        killed = True
        container.kill()
        status = container.wait(timeout=60)
    state = c.api.inspect_container(container.id)["State"]
    logs = container.logs(tail=200).decode("utf-8", "replace")
    elapsed = time.monotonic() - start
    code = int(status.get("StatusCode", -1))
    data, problem = _read_results(res / "results.json")
    if data is not None and not (killed and not _finished(data)):
        # A complete results.json counts, however the container ended afterwards (an
        # OOM kill of some worker process is the student's and already in the tests).
        broken = (code != 0 and not killed) or bool(data.get("extra_data", {}).get("harness_error"))
        return ContainerOutcome(ExitCode.HARNESS_ERROR if broken else ExitCode.OK, data, logs)
    if killed:
        data = results.timed_out(_fresh(expected), limit=timeout, execution_time=elapsed)
        return ContainerOutcome(ExitCode.OK, data, logs)
    if state.get("OOMKilled"):
        data = results.fail_closed(
            _fresh(expected), f"the grading container ran out of memory (limit "
            f"{limits.memory_mb} MB) before it wrote results.json; raise it with --memory"
            f"\n{logs[-4000:]}", execution_time=elapsed)
        return ContainerOutcome(ExitCode.HARNESS_ERROR, data, logs)
    data = results.fail_closed(
        _fresh(expected), f"the grading container (exit {code}) left {problem}\n"
        f"{logs[-4000:]}", execution_time=elapsed)
    return ContainerOutcome(ExitCode.HARNESS_ERROR, data, logs)


def _finished(data: dict[str, Any]) -> bool:
    extra = data.get("extra_data") or {}
    return isinstance(extra, dict) and not extra.get("harness_error") and bool(data.get("tests"))


def docker_client() -> Any:
    """A docker SDK client, or a ConfigError that says how to get an engine."""
    try:
        import docker
    except ImportError as exc:
        raise ConfigError("the docker SDK is not installed; install the staff extra: "
                          "pip install 'dl-autograder[staff]'") from exc
    try:
        c = docker.from_env()
        c.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine reachable
        raise ConfigError(f"no Docker engine answers ({exc}); start one (`dockerd &` as root, "
                          "or `systemctl start docker`) or set DOCKER_HOST") from exc
    return c


def _read_results(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The container's results.json, or None and what was wrong with it."""
    if not path.is_file() or path.is_symlink():
        return None, "no results.json"
    if path.stat().st_size > MAX_RESULTS_BYTES:
        return None, f"a results.json of {path.stat().st_size} bytes (limit {MAX_RESULTS_BYTES})"
    try:
        data = json.loads(path.read_bytes())
        results.validate(data)
    except Exception as exc:  # noqa: BLE001 - any defect: fail closed with the reason
        return None, f"an invalid results.json ({type(exc).__name__}: {str(exc)[:300]})"
    return data, ""


def _fresh(records: list[TestRecord]) -> list[TestRecord]:
    return [TestRecord(nodeid=r.nodeid, name=r.name, max_score=r.max_score,
                       visibility=r.visibility, tags=list(r.tags), outcome=r.outcome,
                       output=r.output) for r in records]
