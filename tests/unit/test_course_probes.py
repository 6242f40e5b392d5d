"""Course-owned probes (autograder.probes.load_course_probes), the torch probes, and the
worker keeping torch objects as handles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autograder import probes
from autograder.config import AssignmentConfig
from autograder.errors import CourseError
from autograder.sandbox import codec
from autograder.sandbox.codec import Handle, TensorSpec
from autograder.sandbox.worker import Runtime

torch = pytest.importorskip("torch")

COURSE_PROBES = '''
import numpy as np
from autograder.probes import probe

_sum = np.sum  # bound at import, before student code

@probe("total")
def total(x):
    return float(_sum(x))

@probe("apply_twice", calls=0)
def apply_twice(fn, x):
    return fn(fn(x))

def _listed(x):
    return x * 3

PROBES = {"triple": _listed}
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "probes.py"
    path.write_text(text)
    return path


def test_course_probes_join_the_generic_ones(tmp_path):
    found = probes.load_course_probes(write(tmp_path, COURSE_PROBES))
    assert {"total", "apply_twice", "triple", "type_name", "state_dict"} <= set(found.functions)
    assert found.table()["apply_twice"] == 0 and found.table()["total"] is None
    assert found.functions["triple"](2) == 6
    # the generic table is untouched: another assignment does not see these
    assert "total" not in probes.PROBES and "apply_twice" not in probes.STUDENT_CALLABLE


@pytest.mark.parametrize("text, why", [
    ("from autograder.probes import probe\n@probe('type_name')\ndef f(x): pass\n",
     "name of a generic probe"),
    ("import no_such_package_xyz\n", "failed to import: ModuleNotFoundError"),
    ("from autograder.probes import probe\n@probe('a')\ndef f(): pass\n@probe('a')\n"
     "def g(): pass\n", "registered twice"),
    ("PROBES = {'a': 3}\n", "dict of probe name -> function"),
])
def test_broken_course_probe_modules_are_course_errors(tmp_path, text, why):
    with pytest.raises(CourseError, match=why):
        probes.load_course_probes(write(tmp_path, text))
    assert "a" not in probes.PROBES  # a failed load leaves the generic table as it was


def test_missing_course_probe_module(tmp_path):
    with pytest.raises(CourseError, match="does not exist"):
        probes.load_course_probes(tmp_path / "nope.py")


@pytest.mark.parametrize("value", ["../probes.py", "/abs/probes.py", "probes.txt", 3])
def test_config_refuses_bad_probe_paths(tmp_path, value):
    cfg = tmp_path / "assignment.toml"
    entry = f"probes = {value!r}".replace("'", '"')
    cfg.write_text(f'[assignment]\nid = "x"\ntitle = "t"\nmodules = ["m"]\n{entry}\n')
    with pytest.raises(CourseError, match="probes ="):
        AssignmentConfig.load(cfg)


def test_config_reads_the_probe_path(tmp_path):
    cfg = tmp_path / "assignment.toml"
    cfg.write_text('[assignment]\nid = "x"\ntitle = "t"\nmodules = ["m"]\nprobes = "extra/p.py"\n')
    assert AssignmentConfig.load(cfg).probes == "extra/p.py"


NET = '''
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

def model():
    torch.manual_seed(0)
    return nn.Linear(2, 1)

def optimizer(m):
    return torch.optim.SGD(m.parameters(), lr=0.1)

def loader(x):
    return DataLoader(TensorDataset(x), batch_size=2)

def backward(m, x):
    m(x).sum().backward()

def describe(t):
    return [type(t).__name__, str(t.dtype), t.requires_grad]
'''


@pytest.fixture
def rt(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "agtorch_net.py").write_text(NET)
    runtime = Runtime(work, ["agtorch_net"], codec.DEFAULT_LIMITS,
                      probes.load_course_probes(write(tmp_path, COURSE_PROBES)))
    yield runtime
    runtime.close()


def ask(rt, **request):
    reply = codec.decode(rt.handle(codec.encode({**request, "id": 1})))
    assert "ok" in reply, reply
    return reply["ok"]


def test_torch_objects_stay_handles_and_tensors_come_back_as_arrays(rt):
    mod = ask(rt, op="import", name="agtorch_net")
    fn = {n: ask(rt, op="getattr", target=mod, name=n) for n in
          ("model", "optimizer", "loader", "backward", "describe")}
    model = ask(rt, op="call", target=fn["model"], args=())
    opt = ask(rt, op="call", target=fn["optimizer"], args=(model,))
    x = TensorSpec.of(np.ones((4, 2)), "float32", requires_grad=True)
    loader = ask(rt, op="call", target=fn["loader"], args=(x,))
    assert [type(h) for h in (model, opt, loader)] == [Handle] * 3
    assert (model.type_name, opt.type_name, loader.type_name) == ("Linear", "SGD", "DataLoader")
    assert ask(rt, op="call", target=fn["describe"], args=(x,)) == ["Tensor", "torch.float32", True]
    sd = ask(rt, op="probe", name="state_dict", args=(model,))
    assert set(sd) == {"weight", "bias"} and type(sd["weight"]) is np.ndarray
    assert sd["weight"].dtype == np.float32 and sd["weight"].shape == (1, 2)
    assert ask(rt, op="probe", name="grads", args=(model,)) == {"weight": None, "bias": None}
    ask(rt, op="call", target=fn["backward"], args=(model, TensorSpec.of(np.ones((3, 2)), "float32")))
    grads = ask(rt, op="probe", name="grads", args=(model,))
    np.testing.assert_allclose(grads["weight"], [[3.0, 3.0]])
    np.testing.assert_allclose(grads["bias"], [3.0])
    assert ask(rt, op="probe", name="total", args=(np.ones(4),)) == 4.0  # a course probe


def test_state_dict_probe_names_a_wrong_argument(rt):
    reply = codec.decode(rt.handle(codec.encode({"op": "probe", "name": "state_dict",
                                                 "args": ([1],), "id": 1})))
    assert reply["error"]["type"] == "TypeError" and "torch.nn.Module" in reply["error"]["message"]


def test_len_probe_is_the_length_of_a_worker_object() -> None:
    from autograder.probes import PROBES

    assert PROBES["len"]([1, 2, 3]) == 3 and PROBES["len"](range(10)) == 10
    with pytest.raises(TypeError):
        PROBES["len"](5)
