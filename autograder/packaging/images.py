"""Docker grading images: `autograder image base` and `autograder image build`.

A grading image is an assignment's Gradescope bundle installed by the bundle's own
setup.sh (grading_images/cpu.Dockerfile), so the container grades exactly as Gradescope
does: /autograder/source/run_autograder reads /autograder/submission and writes
/autograder/results/results.json. The CPU image installs offline from a wheelhouse that
is downloaded once on the host and cached; nothing in the build reaches the network.

    host: pip download -> wheelhouse (cached)      docker build (SDK, network none)
          stage_bundle -> context/source/    ->    runtime: BASE + python3.11
          grading_images/*.Dockerfile              setup:   source/ + setup.sh
                                                   final:   runtime + /autograder

The base image comes from debootstrap (`image base`): no registry needs to be reachable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.config import Layout
from autograder.errors import ConfigError
from autograder.grading.container import docker_client as client
from autograder.packaging.gradescope import (
    EXTRAS,
    TORCH_INDEX,
    assignment_extras,
    download_command,
    harness_checkout,
    stage_bundle,
)

BASE_TAG = "dl-autograder-base:bookworm"
# python3.11-venv's dependency on python3.11-distutils is virtual: debootstrap does not
# resolve it, so the package that provides it is named.
BASE_PACKAGES = ("python3.11-venv", "python3-distutils", "libseccomp2", "ca-certificates")
LABEL = "org.dl-autograder"


@dataclass(frozen=True)
class Image:
    tag: str
    id: str
    size: int  # bytes, as `docker images` reports it


def dockerfile(gpu: bool) -> Path:
    return harness_checkout() / "grading_images" / ("gpu.Dockerfile" if gpu else "cpu.Dockerfile")


def build_base(*, tag: str = BASE_TAG, suite: str = "bookworm",
               mirror: str = "http://deb.debian.org/debian",
               log: Callable[[str], None] = print) -> Image:
    """Make the base image with debootstrap (root only) and import it: no registry needed."""
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(debootstrap):
        raise ConfigError("debootstrap is not installed; `apt-get install debootstrap` "
                          "(or pass --base to `image build` with an image you have)")
    if os.geteuid() != 0:
        raise ConfigError("debootstrap needs root; run `autograder image base` as root")
    c = client()
    with tempfile.TemporaryDirectory(prefix="autograder-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = [debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
               suite, str(rootfs), mirror]
        log(f"debootstrap {suite} into {rootfs} (about a minute)")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ConfigError(f"debootstrap failed (exit {proc.returncode}): "
                              f"{(proc.stdout + proc.stderr).strip()[-800:]}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (rootfs / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tf:
            for entry in sorted(rootfs.iterdir()):
                tf.add(entry, arcname=entry.name)
        repo, _, version = tag.rpartition(":") if ":" in tag else (tag, "", "latest")
        c.api.import_image_from_file(str(archive), repository=repo, tag=version,
                                     changes=['CMD ["/bin/bash"]'])
    return describe(c, tag)


def existing(tag: str) -> Image | None:
    """The image ``tag`` if the engine has it."""
    import docker

    c = client()
    try:
        return describe(c, tag)
    except docker.errors.ImageNotFound:
        return None


def describe(c: Any, tag: str) -> Image:
    img = c.images.get(tag)
    return Image(tag=tag, id=img.id, size=int(img.attrs.get("Size", 0)))


def wheelhouse(cache: Path | None = None, *, log: Callable[[str], None] = print) -> Path:
    """Every wheel the CPU image installs (torch's CPU build), downloaded once per set of
    pins: the folder is named by a hash of pyproject.toml and constraints.txt."""
    harness = harness_checkout()
    pins = hashlib.sha256()
    for f in ("pyproject.toml", "constraints.txt"):
        pins.update((harness / f).read_bytes())
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dl-autograder"
    folder = cache / f"wheelhouse-{pins.hexdigest()[:16]}"
    if (folder / ".complete").exists():
        _wheels_only(folder, log)
        return folder
    tmp = Path(tempfile.mkdtemp(prefix=".wheelhouse-", dir=_mkdir(cache)))
    # One image grades every assignment: the assignments' own extras come along.
    extras = ",".join([EXTRAS, *assignment_extras(harness)])
    log(f"downloading the wheels of the harness and its extras [{extras}] into {folder}")
    # The harness wheel is built from source in setup.sh: its build backend comes along.
    index = ["--extra-index-url", TORCH_INDEX]
    if not index_reachable(TORCH_INDEX):
        # pip would retry it for every package (minutes each); the configured indexes
        # then have to hold torch's CPU build (a mirror, or find-links).
        log(f"{TORCH_INDEX} cannot be reached: downloading from pip's configured indexes only")
        index = []
    cmd = [sys.executable, "-m", "pip", "download", "-q", "-d", str(tmp), "-c",
           str(harness / "constraints.txt"), *index,
           f"{harness}[{extras}]", "setuptools>=77", "wheel"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"pip download failed (exit {proc.returncode}): {proc.stderr[-800:]}\n"
                          f"fill a wheelhouse yourself with `{download_command(folder, extras)}` "
                          "and pass it with --wheelhouse")
    try:
        _wheels_only(tmp, log)
    except ConfigError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / ".complete").touch()
    try:
        if folder.exists() and not (folder / ".complete").exists():
            shutil.rmtree(folder)  # a killed download's leftovers
        tmp.rename(folder)
    except OSError:
        if not (folder / ".complete").exists():  # not another build's finished download
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _wheels_only(folder: Path, log: Callable[[str], None]) -> None:
    """Build a wheel for each source archive pip downloaded (a dependency that publishes
    none, e.g. antlr4-python3-runtime for dvc's hydra): the image installs wheels only,
    offline, and a missing module breaks pytest's plugin loading for every grading."""
    for sdist in sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.zip")):
        log(f"building a wheel of {sdist.name} (no wheel on the index)")
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                               "-w", str(folder), str(sdist)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ConfigError(f"no wheel could be built from {sdist} (exit {proc.returncode}): "
                              f"{proc.stderr[-800:]}")
        sdist.unlink()


def index_reachable(url: str, timeout: float = 10.0) -> bool:
    """Whether a package index answers at all (an HTTP error is an answer)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),  # noqa: S310
                                    timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_tag(config_id: str, gpu: bool) -> str:
    return f"dl-autograder-{config_id}:{'gpu' if gpu else 'cpu'}"


def build_image(root: Path, name: str, *, tag: str | None = None, base: str | None = None,
                gpu: bool = False, wheels: Path | None = None, network: bool = False,
                log: Callable[[str], None] = print) -> Image:
    """Build the grading image of assignment ``name`` with the docker SDK."""
    config = Layout(root, name).config()
    tag = tag or default_tag(config.id, gpu)
    c = client()
    buildargs = {"BASE": base} if base else {}
    if not gpu and not base:
        _need_image(BASE_TAG, "run `autograder image base` first (debootstrap, as root), "
                                 "or pass --base IMAGE")
    if not gpu and wheels is None:
        wheels = wheelhouse(log=log)
    with tempfile.TemporaryDirectory(prefix="autograder-image-") as tmp:
        context = Path(tmp)
        tools = None
        if wheels is not None and not gpu:
            # Every wheel goes into the shared dependency layer; the bundle keeps only the
            # harness's build tools, for setup.sh's offline install of the harness itself.
            _link_tree(wheels, context / "wheelhouse")
            tools = context / "build-tools"
            for whl in wheels.glob("*.whl"):
                if whl.name.lower().startswith(("setuptools-", "wheel-")):
                    _link_tree(whl, tools / whl.name)
        stage_bundle(root, name, context / "source", wheelhouse=tools)
        if tools is not None:
            shutil.rmtree(tools)
        shutil.copy2(dockerfile(gpu), context / "Dockerfile")
        labels = {f"{LABEL}.assignment": config.id, f"{LABEL}.kind": "gpu" if gpu else "cpu"}
        # The GPU image downloads CUDA torch; the CPU image must build with no network.
        for line in _stream(c.api.build(path=str(context), dockerfile="Dockerfile", tag=tag,
                                        buildargs=buildargs, labels=labels, rm=True,
                                        forcerm=True, decode=True,
                                        network_mode=None if gpu or network else "none")):
            log(line)
    return describe(c, tag)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard links where the file system allows them (a 300 MB wheelhouse per build)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_file():
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        return
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.whl"):
        _link_tree(f, dst / f.name)


def _need_image(tag: str, fix: str) -> None:
    if existing(tag) is None:
        raise ConfigError(f"the image {tag} does not exist; {fix}")


def _stream(chunks: Iterator[dict[str, Any]]) -> Iterator[str]:
    """The build's output lines; a failed step raises with the last lines of output."""
    tail: list[str] = []
    for chunk in chunks:
        if "error" in chunk:
            detail = "\n".join(tail[-15:])
            raise ConfigError(f"docker build failed: {chunk['error'].strip()}\n{detail}")
        text = str(chunk.get("stream", "")).rstrip()
        if text:
            tail.append(text)
            yield text
