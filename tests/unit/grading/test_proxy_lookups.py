"""A test's lookups on the student's modules: one round trip per module and per function,
not one per use; values are read afresh, and the grader's own setattr is seen."""

from pathlib import Path
from typing import Any

import pytest

from autograder.grading.proxy import StudentProxy
from autograder.sandbox import codec
from autograder.sandbox.local import LocalWorker

SOURCE = """
count = 0


def bump():
    global count
    count += 1
    return count


def double(x):
    return 2 * x


class Thing:
    def size(self):
        return 3
"""


class _Submission:
    modules = ("agproxy_mod",)
    problems: dict[str, tuple[str, str]] = {}

    def module_problem(self, name: str) -> None:
        return None


@pytest.fixture
def proxy_and_ops(tmp_path: Path) -> Any:
    (tmp_path / "agproxy_mod.py").write_text(SOURCE)
    ops: list[str] = []

    def spawn() -> LocalWorker:
        worker = LocalWorker(tmp_path, ["agproxy_mod"], codec.DEFAULT_LIMITS)
        request = worker.request

        def counted(payload: Any, timeout: float, label: str) -> Any:
            message = codec.decode(payload, limits=codec.DEFAULT_LIMITS, on_handle=lambda h: h)
            ops.append(f"{message['op']} {label}")
            return request(payload, timeout, label)

        worker.request = counted  # type: ignore[method-assign]
        return worker

    proxy = StudentProxy(_Submission(), spawn, 5.0)  # type: ignore[arg-type]
    yield proxy, ops
    proxy.close()


def test_module_and_its_functions_are_looked_up_once_per_worker(proxy_and_ops: Any) -> None:
    proxy, ops = proxy_and_ops
    mod = proxy.module("agproxy_mod")
    assert proxy.module("agproxy_mod") is mod
    assert [mod.double(i) for i in range(3)] == [0, 2, 4]
    assert mod.double is mod.double
    assert ops == ["import the import of agproxy_mod", "getattr agproxy_mod.double",
                   *["call agproxy_mod.double"] * 3]


def test_values_are_read_afresh_and_objects_attributes_every_time(proxy_and_ops: Any) -> None:
    proxy, ops = proxy_and_ops
    mod = proxy.module("agproxy_mod")
    assert mod.count == 0
    mod.bump()
    assert mod.count == 1  # a number: by value, never kept
    thing = mod.Thing()
    assert thing.size() == 3 and thing.size() == 3
    assert ops.count("getattr agproxy_mod.count") == 2
    assert ops.count("getattr agproxy_mod.Thing().size") == 2  # an object's may change


def test_the_graders_setattr_and_a_new_worker_look_up_again(proxy_and_ops: Any) -> None:
    proxy, ops = proxy_and_ops
    mod = proxy.module("agproxy_mod")
    assert mod.double(2) == 4
    proxy.setattr(mod, "double", mod.bump)
    assert mod.double() == 1  # the new binding, not the kept handle
    proxy.close()
    mod2 = proxy.module("agproxy_mod")  # a new worker: nothing kept from the old one
    assert mod2 is not mod and mod2.double(5) == 10
    assert ops.count("import the import of agproxy_mod") == 2
