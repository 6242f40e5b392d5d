"""Assignment 6's own probes: what the graders run in the worker on your DVC project.

They run in the sandboxed worker (the process that runs your code) and return plain data:
which stages ran, what DVC's Python API says about them, ``dvc status`` after a parameter
changed, the hashes of the outputs before a push and after a pull, and what your offline
wandb run recorded. The graders judge that data; nothing here decides a score. You can
read them and call them yourself (``python -c "import probes; print(probes.run_project())"``
in your assignment folder). Nothing here is secret.

The project is copied to a private folder first (your folder stays untouched): DVC and
wandb write there, with analytics, update checks and the network off.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from autograder.probes import probe

# What a step may print into the data the graders get (its tail is kept).
OUTPUT_CHARS = 3000
STEP_TIMEOUT = 120.0  # seconds of one dvc command
SKIP_COPY = {".dvc/cache", ".dvc/tmp", "wandb", "__pycache__", ".git"}
# DVC's global config in the private folder: no update checks (each dvc command would
# start a daemon that asks the network for DVC's latest version), no analytics.
GLOBAL_DVC_CONFIG = "[core]\n    check_update = false\n    analytics = false\n"
TOOL_ENV = {
    "DVC_NO_ANALYTICS": "1",  # no usage reports (update checks: GLOBAL_DVC_CONFIG)
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true",
    "WANDB_CONSOLE": "off",
    "GIT_TERMINAL_PROMPT": "0",
    "PYTHONUNBUFFERED": "1",
    # The worker's uid has no passwd entry: getpass.getuser() (DVC's lock, wandb) reads these.
    "USER": "student",
    "LOGNAME": "student",
}


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_CHARS else "..." + text[-OUTPUT_CHARS:]


class Project:
    """A private copy of the project and the environment its tools run in."""

    def __init__(self, source: Path, base: Path) -> None:
        self.base = base
        self.ws = base / "ws"
        self.tools = base / "tools"  # DVC's site cache, wandb's config and cache
        if base.exists():
            shutil.rmtree(base)
        self.tools.mkdir(parents=True)
        shutil.copytree(source, self.ws, ignore=self._ignore(source))
        bindir = str(Path(sys.executable).parent)
        self.env = {**os.environ, **TOOL_ENV,
                    "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
                    "DVC_SITE_CACHE_DIR": str(self.tools / "dvc-site"),
                    "DVC_GLOBAL_CONFIG_DIR": str(self.tools / "dvc-global"),
                    "DVC_SYSTEM_CONFIG_DIR": str(self.tools / "dvc-system"),
                    "WANDB_CONFIG_DIR": str(self.tools / "wandb-config"),
                    "WANDB_CACHE_DIR": str(self.tools / "wandb-cache"),
                    "WANDB_DATA_DIR": str(self.tools / "wandb-data"),
                    "WANDB_ARTIFACT_DIR": str(self.tools / "wandb-artifacts"),
                    "XDG_CACHE_HOME": str(self.tools / "xdg-cache"),
                    "XDG_CONFIG_HOME": str(self.tools / "xdg-config"),
                    "MPLCONFIGDIR": str(self.tools / "matplotlib")}
        (self.tools / "dvc-global").mkdir()
        (self.tools / "dvc-global" / "config").write_text(GLOBAL_DVC_CONFIG)
        self.steps: list[dict[str, Any]] = []

    @staticmethod
    def _ignore(source: Path) -> Any:
        def ignore(folder: str, names: list[str]) -> list[str]:
            rel = Path(folder).relative_to(source)
            return [n for n in names if (rel / n).as_posix().removeprefix("./") in SKIP_COPY]
        return ignore

    def dvc(self, name: str, *args: str, timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
        """``dvc ARGS`` in the copy (DVC's command line, as a student runs it)."""
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=self.ws,
                                  env=self.env, capture_output=True, text=True,
                                  errors="replace", timeout=timeout, start_new_session=True)
            step = {"name": name, "returncode": proc.returncode,
                    "output": _tail(proc.stdout + proc.stderr)}
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"") + (exc.stderr or b"")
            text = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
            step = {"name": name, "returncode": None,
                    "output": _tail(text) + f"\n[stopped after {timeout:.0f} s]"}
        step["seconds"] = round(time.perf_counter() - start, 3)
        step["command"] = "dvc " + " ".join(args)
        self.steps.append(step)
        return step

    def files_outside(self, before: set[str]) -> list[str]:
        """Files below the private folder's parent that appeared outside the copy, the
        tool folder and the remote (what a stage wrote outside the workspace)."""
        return sorted(_listing(self.base.parent) - before)


def _listing(root: Path, limit: int = 20000) -> set[str]:
    found: set[str] = set()
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
        found.update(str(here / f) for f in files)
        if len(found) > limit:
            break
    return found


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def out_hashes(ws: Path, paths: list[str]) -> dict[str, str]:
    """sha256 of each file of the given outputs (folders walked), by path relative to
    the workspace."""
    hashes: dict[str, str] = {}
    for rel in paths:
        p = ws / rel
        if p.is_file():
            hashes[rel] = _sha256(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    hashes[f.relative_to(ws).as_posix()] = _sha256(f)
    return hashes


def describe_repo(ws: Path) -> dict[str, Any]:
    """Stages, deps, outs, params, metrics and plots through DVC's Python API."""
    from dvc.repo import Repo

    with Repo(str(ws)) as repo:
        stages = []
        for stage in repo.index.stages:
            if not getattr(stage, "cmd", None):
                continue
            params: list[str] = []
            deps: list[str] = []
            for dep in stage.deps:
                if type(dep).__name__ == "ParamsDependency":
                    keys = list(dep.params) or ["*"]
                    params += [k for k in keys]
                else:
                    deps.append(_rel(ws, dep.fs_path))
            stages.append({
                "name": getattr(stage, "name", stage.addressing), "cmd": stage.cmd,
                "deps": deps, "params": params,
                "outs": [{"path": _rel(ws, o.fs_path), "cache": bool(o.use_cache),
                          "metric": bool(o.metric), "plot": bool(o.plot)} for o in stage.outs],
            })
        metrics = repo.metrics.show()
        params_shown = repo.params.show()
    # .dvc/config as written (DVC's API resolves relative urls), with DVC's own parser
    from configobj import ConfigObj

    raw = ConfigObj(str(ws / ".dvc" / "config"))
    remote = raw.get("core", {}).get("remote")
    remotes = {}
    for section, cfg in raw.items():
        if section.startswith("remote ") and isinstance(cfg, dict):
            remotes[section.split('"')[1] if '"' in section else section[7:]] = str(cfg.get("url"))
    return {"stages": stages, "metrics": _plain(_data_of(metrics)),
            "params": _plain(_data_of(params_shown)), "default_remote": remote,
            "remotes": remotes}


def _data_of(shown: dict[str, Any]) -> dict[str, Any]:
    """The workspace's entry of ``repo.metrics.show()`` / ``params.show()``: file -> data."""
    ws = shown.get("", shown.get("workspace", {}))
    files = ws.get("data", {}) if isinstance(ws, dict) else {}
    return {name: entry.get("data", {"error": str(entry.get("error"))})
            for name, entry in files.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _rel(ws: Path, path: str) -> str:
    try:
        return Path(path).resolve().relative_to(ws.resolve()).as_posix()
    except ValueError:
        return str(path)


def ran_stages(output: str) -> list[str]:
    """The stages ``dvc repro`` says it ran ("Running stage 'train':"), in order."""
    return [line.split("'")[1] for line in output.splitlines()
            if line.startswith("Running stage '") and line.count("'") >= 2]


def changed_stages(status_output: str) -> list[str] | None:
    """Stage names in ``dvc status --json`` output (None when it is not JSON)."""
    text = status_output.strip()
    start = text.find("{")
    try:
        data = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    return sorted(k.split(":")[-1] for k in data)


def _set_param(ws: Path, section: str, key: str, value: Any) -> str | None:
    """Change ``section.key`` in params.yaml (ruamel keeps the rest of the file as is);
    an error message, or None."""
    from ruamel.yaml import YAML

    yaml = YAML()
    path = ws / "params.yaml"
    try:
        data = yaml.load(path.read_text())
        data[section][key] = value
    except Exception as exc:  # a student's file: any failure is a message
        return f"params.yaml has no {section}.{key} to change ({type(exc).__name__}: {exc})"
    with path.open("w") as f:
        yaml.dump(data, f)
    return None


# ---------------------------------------------------------------- wandb's transaction log

_HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version
_RECORD = struct.Struct("<IHB")  # crc32, length, type (leveldb log framing)
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_transaction_log(path: Path) -> list[bytes]:
    """The records of a run's ``.wandb`` file (leveldb-log framing: 32 KiB blocks,
    7-byte headers, CRC32 seeded with the record type), as wandb writes them. A torn
    tail (a run that was killed) ends the list."""
    data = path.read_bytes()
    if len(data) < _HEADER.size or _HEADER.unpack_from(data)[:2] != (b":W&B", 0xBEE1):
        raise ValueError(f"{path.name} is not a wandb transaction log")
    records: list[bytes] = []
    pos, pending = _HEADER.size, b""
    while pos + _RECORD.size <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _RECORD.size:  # block trailer
            pos += room
            continue
        crc, length, kind = _RECORD.unpack_from(data, pos)
        body = data[pos + _RECORD.size: pos + _RECORD.size + length]
        if kind == 0 and length == 0:  # zero padding
            pos += room
            continue
        if len(body) < length or zlib.crc32(body, zlib.crc32(bytes([kind]))) != crc:
            break
        pos += _RECORD.size + length
        if kind == _FULL:
            records.append(body)
        elif kind == _FIRST:
            pending = body
        elif kind == _MIDDLE:
            pending += body
        elif kind == _LAST:
            records.append(pending + body)
            pending = b""
    return records


def _json_item(item: Any) -> Any:
    raw = item.value_json
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return raw


def _key(item: Any) -> str:
    return ".".join(item.nested_key) if item.nested_key else item.key


def wandb_runs(ws: Path, limit: int = 4) -> list[dict[str, Any]]:
    """The project's offline wandb runs (``wandb/offline-run-*/run-*.wandb``), oldest
    first (by the time their log was last written), at most ``limit``."""
    logs = sorted((ws / "wandb").glob("offline-run-*/run-*.wandb"),
                  key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [wandb_run(ws, p) for p in logs[:limit]]


def wandb_run(ws: Path, path: Path) -> dict[str, Any]:
    """What one offline wandb run recorded, read from its transaction log with wandb's own
    protobuf messages: config, history rows, summary, artifacts and whether the run was
    finished (its exit record)."""
    from wandb.proto import wandb_internal_pb2 as pb

    found: dict[str, Any] = {}
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    artifacts: list[dict[str, Any]] = []
    exit_code = None
    project = None
    for raw in read_transaction_log(path):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "config":
            for item in rec.config.update:
                config[_key(item)] = _json_item(item)
        elif kind == "run":
            project = rec.run.project
            for item in rec.run.config.update:
                config[_key(item)] = _json_item(item)
        elif kind == "history":
            history.append({_key(i): _json_item(i) for i in rec.history.item})
        elif kind == "summary":
            for item in rec.summary.update:
                summary[_key(item)] = _json_item(item)
        elif kind == "artifact":
            art = rec.artifact
            artifacts.append({"name": art.name, "type": art.type, "files": [
                {"path": e.path, "md5": e.digest, "size": e.size} for e in art.manifest.contents]})
        elif kind == "exit":
            exit_code = rec.exit.exit_code
    config = {k: (v.get("value") if isinstance(v, dict) and "value" in v else v)
              for k, v in config.items() if not k.startswith("_")}
    media = ws / "wandb" / path.parent.name / "files" / "media"
    found.update({"run": path.parent.name, "project": project, "config": config, "history": history,
                  "summary": {k: v for k, v in summary.items() if not k.startswith("_wandb")},
                  "artifacts": artifacts, "finished": exit_code is not None,
                  "exit_code": exit_code,
                  "media": sorted(p.relative_to(media).as_posix() for p in media.rglob("*")
                                  if p.is_file()) if media.is_dir() else []})
    return found


def file_md5_b64(path: Path) -> str:
    """base64 of the MD5 digest: how a wandb artifact manifest names a file's content."""
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


# ---------------------------------------------------------------- the probe


MAX_NPZ_BYTES = 4 * 1024 * 1024
MAX_TEXT_BYTES = 256 * 1024


def small_files(ws: Path, paths: list[str]) -> dict[str, Any]:
    """The outputs the graders read back: ``.npz`` files as dicts of arrays (loaded with
    ``allow_pickle=False``), ``.csv``/``.json``/``.yaml`` files as text; small ones only."""
    found: dict[str, Any] = {}
    for rel in paths:
        p = ws / rel
        for f in ([p] if p.is_file() else sorted(p.rglob("*")) if p.is_dir() else []):
            name = f.relative_to(ws).as_posix()
            if f.suffix == ".npz" and f.stat().st_size <= MAX_NPZ_BYTES:
                try:
                    with np.load(f, allow_pickle=False) as z:
                        found[name] = {k: z[k] for k in z.files}
                except Exception as exc:
                    found[name] = f"could not be read: {type(exc).__name__}: {exc}"
            elif f.suffix in (".csv", ".json", ".yaml", ".yml", ".tsv") \
                    and f.stat().st_size <= MAX_TEXT_BYTES:
                found[name] = f.read_text(errors="replace")
    return found


def model_scores(ws: Path, hidden: int, images: Any) -> Any:
    """Scores of ``models/model.pt`` (a state_dict, ``torch.load(weights_only=True)``)
    in your ``train.build_model(hidden)``, eval mode, for ``images`` (N, 64)."""
    import torch
    import train

    model = train.build_model(int(hidden))
    model.load_state_dict(torch.load(ws / "models" / "model.pt", weights_only=True))
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(images), dtype=torch.float32)).numpy()


@probe("a6_run_project")
def run_project(change: dict[str, Any] | None = None, images: Any = None) -> dict[str, Any]:
    """Copy the project (the worker's folder) to a private folder and run it as the
    graders do:

    1. ``dvc repro`` in the copy (your stages run as subprocesses);
    2. stages, deps, outs, params, metrics and remotes through DVC's Python API;
       the output files read back (``.npz`` arrays, small text files), and the scores of
       the trained model for ``images`` (see ``model_scores``);
    3. ``dvc status --json`` (nothing should have changed), then ``change``
       (``{"section": "train", "key": "lr", "value": 0.02}``) written to params.yaml,
       ``dvc status --json`` again (the stages whose own dependencies changed) and
       ``dvc repro`` again (the stages that reran);
    4. the wandb runs read from their transaction logs;
    5. ``dvc push`` to the default remote, the cache and the outputs deleted,
       ``dvc pull``: the hashes of every output before and after;
    6. the files the stages wrote outside the copy (before the push).

    Returns plain data; a step that fails stops the steps that need it."""
    base = Path(os.environ.get("TMPDIR", "/tmp")) / "a6-project"
    before = _listing(base.parent) if base.parent.is_dir() else set()
    project = Project(Path.cwd(), base)
    ws = project.ws
    result: dict[str, Any] = {"steps": project.steps, "workspace": str(ws)}
    before |= _listing(base)  # the copy itself is not the student's writing
    repro = project.dvc("repro", "repro")
    result["ran"] = ran_stages(repro["output"])
    os.environ.update(project.env)  # DVC's Python API below runs in this (disposable) worker
    try:
        result["repo"] = describe_repo(ws)
    except Exception as exc:  # a student's dvc.yaml: any failure is a message
        result["repo_error"] = f"{type(exc).__name__}: {exc}"
    if repro["returncode"] != 0 or "repo" not in result:
        result["outside"] = _outside(project, before)
        return result
    outs = [o["path"] for s in result.get("repo", {}).get("stages", []) for o in s["outs"]]
    cached = [o["path"] for s in result.get("repo", {}).get("stages", [])
              for o in s["outs"] if o["cache"]]
    result["hashes"] = out_hashes(ws, outs)
    result["files"] = small_files(ws, [*outs, "params.yaml"])
    if images is not None:
        try:
            hidden = result["repo"]["params"]["params.yaml"]["train"]["hidden"]
            result["scores"] = model_scores(ws, hidden, images)
        except Exception as exc:
            result["scores_error"] = f"{type(exc).__name__}: {exc}"
    status = project.dvc("status", "status", "--json")
    result["status_after_repro"] = changed_stages(status["output"])
    if change:
        problem = _set_param(ws, change["section"], change["key"], change["value"])
        if problem:
            result["change_error"] = problem
        else:
            changed = project.dvc("status_changed", "status", "--json")
            result["status_after_change"] = changed_stages(changed["output"])
            again = project.dvc("repro_changed", "repro")
            result["ran_after_change"] = ran_stages(again["output"])
            if again["returncode"] != 0:
                result["outside"] = _outside(project, before)
                return result
            result["hashes_after_change"] = out_hashes(ws, outs)
    try:
        result["wandb"] = wandb_runs(ws)
    except Exception as exc:
        result["wandb_error"] = f"{type(exc).__name__}: {exc}"
    result["outside"] = _outside(project, before)  # the stages' writing, before push/pull
    model = ws / "models" / "model.pt"
    result["model_md5_b64"] = file_md5_b64(model) if model.is_file() else None
    push = project.dvc("push", "push")
    if push["returncode"] == 0:
        shutil.rmtree(ws / ".dvc" / "cache", ignore_errors=True)
        for rel in cached:
            target = ws / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        result["removed"] = sorted(rel for rel in cached)
        project.dvc("pull", "pull")
        result["hashes_after_pull"] = out_hashes(ws, outs)
    return result


def _outside(project: Project, before: set[str]) -> list[str]:
    keep = (str(project.ws) + os.sep, str(project.tools) + os.sep)
    return [p for p in project.files_outside(before) if not p.startswith(keep)][:50]


@probe("a6_describe")
def describe() -> dict[str, Any]:
    """The project's stages, params and remotes through DVC's Python API, without running
    anything (a private copy is read: DVC writes its own state even to read)."""
    project = Project(Path.cwd(), Path(os.environ.get("TMPDIR", "/tmp")) / "a6-describe")
    os.environ.update(project.env)
    return describe_repo(project.ws)
