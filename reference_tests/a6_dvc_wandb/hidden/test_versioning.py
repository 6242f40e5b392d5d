"""Versioning: what reruns after a parameter changes, and push/pull through the remote."""

from __future__ import annotations

import re

import pytest
from conftest import CHANGE

pytestmark = pytest.mark.tags("versioning")


def test_nothing_to_do_after_repro(project):
    """Right after `dvc repro`, `dvc status` reports every stage up to date"""
    project.require_repro()
    assert project.data.get("status_after_repro") == [], (
        f"`dvc status` after `dvc repro` lists {project.data.get('status_after_repro')}: a "
        "stage changes its own dependencies, or an output is not declared")


@pytest.mark.points(2)
def test_a_train_parameter_reruns_only_train_and_evaluate(project):
    """After train.lr changes, `dvc repro` reruns train and evaluate, not prepare"""
    project.require_repro()
    if "change_error" in project.data:
        pytest.fail(project.data["change_error"])
    status = project.data.get("status_after_change") or []
    assert "train" in status and "prepare" not in status, (
        f"after {CHANGE['section']}.{CHANGE['key']} changed, `dvc status` lists {status}; "
        "train must be listed (it depends on the parameter), prepare must not")
    again = project.step("repro_changed")
    if again is not None and again["returncode"] != 0:
        pytest.fail(f"the second `dvc repro` failed:\n{again['output'][-1000:]}")
    assert project.data.get("ran_after_change") == ["train", "evaluate"], (
        f"after {CHANGE['section']}.{CHANGE['key']} changed, `dvc repro` ran "
        f"{project.data.get('ran_after_change')}; expected train then evaluate (evaluate "
        "depends on the model), and not prepare")


def test_default_remote_is_a_relative_local_path(project):
    """.dvc/config names a default remote: a local folder given as a relative path"""
    repo = project.stages() and project.data["repo"]
    name = repo["default_remote"]
    assert name, "no default remote: run `dvc remote add -d storage ../../dvc-storage`"
    url = repo["remotes"].get(name)
    assert url is not None, f"the default remote {name!r} is not defined in .dvc/config"
    assert not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url) and not url.startswith("/"), (
        f"the default remote's url is {url!r}; give a local folder as a relative path "
        "(e.g. ../../dvc-storage), so the project works on every machine")


@pytest.mark.points(2)
def test_push_then_pull_restores_identical_outputs(project):
    """`dvc push`, the cache and outputs deleted, `dvc pull`: the same bytes come back"""
    project.require_repro()
    push = project.step("push")
    if push is None:
        pytest.fail("`dvc push` did not run: an earlier step failed")
    if push["returncode"] != 0:
        pytest.fail(f"`dvc push` failed:\n{push['output'][-1000:]}")
    pull = project.step("pull")
    if pull is None or pull["returncode"] != 0:
        pytest.fail(f"`dvc pull` failed:\n{(pull or {}).get('output', '')[-1000:]}")
    before = project.data.get("hashes_after_change") or project.data["hashes"]
    after = project.data["hashes_after_pull"]
    removed = project.data["removed"]
    cached = {f: h for f, h in before.items()
              if any(f == r or f.startswith(r.rstrip("/") + "/") for r in removed)}
    for f in ("models/model.pt", "data/prepared/train.npz", "data/prepared/test.npz"):
        assert f in cached, (f"{f} is not a cached DVC output, so `dvc pull` cannot restore "
                             "it")
    missing = sorted(set(cached) - set(after))
    assert not missing, f"`dvc pull` did not restore {', '.join(missing)}"
    changed = sorted(f for f in cached if after[f] != cached[f])
    assert not changed, f"`dvc pull` restored different bytes for {', '.join(changed)}"
