"""Hidden suites written for gradescope-utils: ``unittest.TestCase`` classes with its
decorators (``weight``, ``visibility``, ``number``, ``tags``, ``partial_credit``,
``leaderboard``, ``hide_errors``), graded under the harness unchanged.

Such suites import the student's modules directly (``from calculator import add``). For an
import statement in a file of the suite, a finder first on ``sys.meta_path`` (installed for
the grading) gives a :class:`StudentModule` of names only for each of the assignment's
``modules``; the grader never imports student code::

    grader (hidden suite, this module)                    worker (sandbox)
    collection: `from calculator import add`
      -> "calculator" is a StudentModule,
         `add` a LazyName: nothing is sent yet
    a test runs: add(1, 2)
      -> the test's StudentProxy (the `student`
         fixture): module("calculator").add(1, 2)  --call-->  imports calculator, calls add
      <- 3, by value through the codec             <--value--

setUpClass gets a StudentProxy of the class (its objects are shared by the class's tests).

Scores follow gradescope-utils' ``JSONTestRunner``: the decorators' attributes are read as
the test's points, visibility, number, tags and leaderboard column (compatibility with a
third-party API; the harness's own API stays markers), ``set_score`` gives partial credit,
``set_leaderboard_value`` a leaderboard entry, and a test is named by the first line of its
docstring, else as unittest names it (``test_add (test_calc.TestCalc.test_add)``).
"""

from __future__ import annotations

import builtins
import importlib.abc
import math
import operator
import sys
import unittest
from collections.abc import Callable, Iterator
from importlib.machinery import ModuleSpec
from numbers import Real
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from autograder.config import VISIBILITIES, Isolation
from autograder.errors import AuthoringError, StudentError
from autograder.grading import results
from autograder.grading.proxy import RemoteObject, StudentProxy

if TYPE_CHECKING:
    from autograder.grading.plugin import GradingSession

# gradescope-utils' attribute names (decorators.py of gradescope-utils 0.5.0)
WEIGHT, VISIBILITY, NUMBER, TAGS = "__weight__", "__visibility__", "__number__", "__tags__"
SCORE, HIDE_ERRORS = "__score__", "__hide_errors__"
BOARD_COLUMN, BOARD_ORDER, BOARD_VALUE = ("__leaderboard_column__", "__leaderboard_sort_order__",
                                          "__leaderboard_value__")
# Set while a test runs: cleared before each test so nothing carries over.
RUN_ATTRS = (SCORE, BOARD_VALUE)
# Student exceptions that stay plain StudentErrors: as these built-in types, the plugin
# would take them for a bug of the suite (autograder.grading.plugin.SUITE_BUGS).
NOT_MAPPED = (NameError, ImportError, SyntaxError)


def is_unittest(item: pytest.Item) -> bool:
    cls = getattr(item, "cls", None)
    return isinstance(cls, type) and issubclass(cls, unittest.TestCase)


def _function(item: pytest.Item) -> Any:
    """The test method as the class holds it (the outermost decorator's function), where
    JSONTestRunner reads the attributes (``getattr(test, test._testMethodName)``)."""
    return getattr(item, "function", None)


def _chain(fn: Any) -> Iterator[Any]:
    """``fn`` and the functions it wraps (functools.wraps' ``__wrapped__``)."""
    seen: set[int] = set()
    while fn is not None and id(fn) not in seen and len(seen) < 50:
        seen.add(id(fn))
        yield fn
        fn = vars(fn).get("__wrapped__") if hasattr(fn, "__dict__") else None


def _bad(item: pytest.Item, decorator: str, value: Any, fix: str) -> pytest.UsageError:
    return pytest.UsageError(f"{item.nodeid}: @{decorator}({value!r}) from gradescope-utils: "
                             f"{fix}")


def _number_of_points(value: Any) -> bool:
    return (isinstance(value, Real) and not isinstance(value, bool)
            and math.isfinite(float(value)) and float(value) >= 0)


def unittest_name(item: pytest.Item) -> str:
    """unittest's own name of a test without a docstring (``str(test)``, Python >= 3.11)."""
    cls = item.cls  # type: ignore[attr-defined]
    method = getattr(item, "originalname", item.name)
    return f"{method} ({cls.__module__}.{cls.__qualname__}.{method})"


def adapt(item: pytest.Item, rec: results.TestRecord) -> results.TestRecord:
    """The record of a ``unittest.TestCase`` test with gradescope-utils' decorators read as
    JSONTestRunner reads them; other tests are returned unchanged. A decorator's bad value
    fails collection (pytest.UsageError) naming the test, the value and the fix."""
    if not is_unittest(item):
        return rec
    fn = _function(item)
    attrs = vars(fn) if hasattr(fn, "__dict__") else {}
    doc = (getattr(fn, "__doc__", None) or "").strip()
    if not doc:
        rec.name = unittest_name(item)
    if WEIGHT in attrs:
        weight = attrs[WEIGHT]
        if not _number_of_points(weight):
            raise _bad(item, "weight", weight, "the weight must be a number of points (>= 0), "
                       f"e.g. @weight({_suggest(weight)}); @partial_credit takes the same")
        rec.max_score = float(weight)
    elif item.get_closest_marker("points") is None:
        rec.max_score = 0.0  # JSONTestRunner: a test without @weight scores nothing
    if VISIBILITY in attrs:
        vis = attrs[VISIBILITY]
        if vis not in VISIBILITIES:
            raise _bad(item, "visibility", vis, f"use one of {', '.join(VISIBILITIES)}")
        rec.visibility = vis
    if TAGS in attrs:
        tags = attrs[TAGS]
        if not isinstance(tags, (tuple, list)) or not all(isinstance(t, str) and t for t in tags):
            raise _bad(item, "tags", tags, 'tags are non-empty strings: @tags("a", "b")')
        rec.tags = list(dict.fromkeys([*tags, *rec.tags]))
    if NUMBER in attrs and not isinstance(attrs[NUMBER], str):
        raise _bad(item, "number", attrs[NUMBER], 'write @number("1.2")')
    if HIDE_ERRORS in attrs and not isinstance(attrs[HIDE_ERRORS], str):
        raise _bad(item, "hide_errors", attrs[HIDE_ERRORS], 'write @hide_errors("message")')
    if BOARD_COLUMN in attrs:
        column, order = attrs[BOARD_COLUMN], attrs.get(BOARD_ORDER, "desc")
        if not isinstance(column, str) or not column:
            raise _bad(item, "leaderboard", column, 'the column name is a non-empty string: '
                       '@leaderboard("accuracy")')
        if order not in ("asc", "desc"):
            raise _bad(item, "leaderboard", order, 'the sort order is "asc" or "desc"')
        rec.max_score = 0.0  # JSONTestRunner: a leaderboard test gives no score
    return rec


def _suggest(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return "2"


def number_of(item: pytest.Item) -> str | None:
    """The test's ``@number``, if any (JSONTestRunner leaves the field out otherwise)."""
    if not is_unittest(item):
        return None
    number = vars(_function(item)).get(NUMBER) if hasattr(_function(item), "__dict__") else None
    return number if isinstance(number, str) and number else None


# -- student modules in the grader: names only, every use a request to the worker ----------
class _Route:
    """Where a StudentModule's uses go: the running test's proxy."""

    def __init__(self, assignment: str, modules: list[str]) -> None:
        self.assignment = assignment
        self.modules = modules
        self.proxy: StudentProxy | None = None
        self.handles: dict[str, RemoteObject] = {}

    def current(self, what: str) -> StudentProxy:
        if self.proxy is None:
            raise AuthoringError(
                f"{what}: the student's code is called outside a unittest test (at the "
                "module's top level, or from a pytest-style test). Under the harness it runs "
                "in a sandboxed worker that exists only while a test or its class is set up: "
                "move the call into setUpClass, setUp or the test; pytest-style tests use "
                "the `student` fixture")
        return self.proxy

    def module(self, name: str, what: str) -> RemoteObject:
        proxy = self.current(what)
        handle = self.handles.get(name)
        if handle is None or handle._ag_generation != proxy._generation:
            handle = proxy.module(name)
            self.handles[name] = handle
        return handle


def _student_exception(exc: StudentError) -> StudentError:
    """A student exception of a built-in type that ``assertRaises(ValueError)`` catches, as
    it would catch it in JSONTestRunner's single process: a StudentError that is also a
    ValueError (the grader still sees only the type's name and the message)."""
    if type(exc) is not StudentError or exc.import_of is not None:
        return exc
    builtin = getattr(builtins, exc.type_name, None)
    if (not isinstance(builtin, type) or not issubclass(builtin, Exception)
            or issubclass(builtin, NOT_MAPPED) or issubclass(builtin, StudentError)):
        return exc
    try:
        cls = _MAPPED.get(builtin)
        if cls is None:
            cls = type(f"Student{builtin.__name__}", (StudentError, builtin),
                       {"__module__": __name__})
            _MAPPED[builtin] = cls
        mapped: StudentError = cls(exc.type_name, exc.message, exc.student_traceback, exc.where)
    except Exception:  # noqa: BLE001 - a built-in whose layout refuses the mix: keep it plain
        return exc
    return mapped.with_traceback(exc.__traceback__)


_MAPPED: dict[type, type] = {}


def _unlazy(value: Any) -> Any:
    """Arguments that name student objects (``calc.apply(calculator.add, 1)``) travel as
    handles; containers are walked one level deep at a time."""
    if isinstance(value, LazyName):
        return value._ag_resolve(by="handle")
    if type(value) in (list, tuple):
        return type(value)(_unlazy(v) for v in value)
    if type(value) is dict:
        return {k: _unlazy(v) for k, v in value.items()}
    return value


class LazyName:
    """``module.a.b`` of a student module, resolved in the running test's worker at each use:
    called, it calls there; used as a value (compared, converted, in arithmetic), it is
    fetched by value and the value is used."""

    __slots__ = ("_ag_route", "_ag_module", "_ag_path")

    def __init__(self, route: _Route, module: str, path: tuple[str, ...]) -> None:
        object.__setattr__(self, "_ag_route", route)
        object.__setattr__(self, "_ag_module", module)
        object.__setattr__(self, "_ag_path", path)

    @property
    def _ag_label(self) -> str:
        return ".".join((self._ag_module, *self._ag_path))

    def _ag_resolve(self, *, by: str) -> Any:
        route: _Route = self._ag_route
        label = self._ag_label
        obj: Any = route.module(self._ag_module, label)
        proxy = route.current(label)
        for i, name in enumerate(self._ag_path):
            last = i == len(self._ag_path) - 1
            obj = proxy.getattr(obj, name, by=by if last else "handle")
        return obj

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)  # introspection (pytest, inspect, copy) stays here
        return LazyName(self._ag_route, self._ag_module, (*self._ag_path, name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot set {self._ag_label}.{name} from the grader")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fn = self._ag_resolve(by="handle")
        proxy = self._ag_route.current(self._ag_label)
        return proxy.call(fn, *_unlazy(args), **{k: _unlazy(v) for k, v in kwargs.items()})

    def __repr__(self) -> str:
        return f"<student {self._ag_label}>"

    def _ag_value(self) -> Any:
        return self._ag_resolve(by="value")

    def __eq__(self, other: object) -> bool:
        return bool(self._ag_value() == other)

    def __ne__(self, other: object) -> bool:
        return bool(self._ag_value() != other)

    __hash__ = object.__hash__

    def __lt__(self, other: Any) -> Any:
        return self._ag_value() < other

    def __le__(self, other: Any) -> Any:
        return self._ag_value() <= other

    def __gt__(self, other: Any) -> Any:
        return self._ag_value() > other

    def __ge__(self, other: Any) -> Any:
        return self._ag_value() >= other

    def __bool__(self) -> bool:
        return bool(self._ag_value())

    def __float__(self) -> float:
        return float(self._ag_value())

    def __int__(self) -> int:
        return int(self._ag_value())

    def __index__(self) -> int:
        return int(self._ag_value().__index__())

    def __str__(self) -> str:
        return str(self._ag_value())

    def __len__(self) -> int:
        return len(self._ag_value())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._ag_value())

    def __contains__(self, item: Any) -> bool:
        return item in self._ag_value()

    def __getitem__(self, key: Any) -> Any:
        return self._ag_value()[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        return np.asarray(self._ag_value(), dtype=dtype)


def _by_value(op: Callable[..., Any], *, reflected: bool = False) -> Callable[..., Any]:
    if reflected:
        return lambda self, other: op(other, self._ag_value())
    return lambda self, *other: op(self._ag_value(), *other)


_BINARY: dict[str, Callable[..., Any]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
    "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow,
    "matmul": operator.matmul}
_UNARY: dict[str, Callable[..., Any]] = {
    "neg": operator.neg, "pos": operator.pos, "abs": operator.abs, "round": round,
    "complex": complex}
for _name, _fn in _BINARY.items():
    setattr(LazyName, f"__{_name}__", _by_value(_fn))
    setattr(LazyName, f"__r{_name}__", _by_value(_fn, reflected=True))
for _name, _fn in _UNARY.items():
    setattr(LazyName, f"__{_name}__", _by_value(_fn))


class StudentModule(ModuleType):
    """What ``import calculator`` gives a hidden suite in the grader: attribute names only."""

    def __init__(self, name: str, route: _Route) -> None:
        super().__init__(name, f"The student's module {name}, run in the sandboxed worker.")
        self.__dict__["_ag_route"] = route
        self.__spec__ = ModuleSpec(name, None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"module {self.__name__!r} (the student's, in the worker): "
                                 f"names starting with _ are not reached from the grader")
        return LazyName(self.__dict__["_ag_route"], self.__name__, (name,))


def _imported_from(root: str) -> bool:
    """Whether the import being resolved is a statement in a file under ``root`` (the
    suite): the first frame outside importlib's own."""
    frame: Any = sys._getframe(2)
    for _ in range(60):
        if frame is None:
            return False
        file = frame.f_code.co_filename
        if not file.startswith("<frozen") and "importlib" not in file:
            return bool(file.startswith(root))
        frame = frame.f_back
    return False


class _StudentImports(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """First on ``sys.meta_path``: the suite's ``import calculator`` of a module of the
    assignment gives a :class:`StudentModule` (imports from anywhere else are not ours)."""

    def __init__(self, suite_root: str, route: _Route) -> None:
        self.suite_root = suite_root
        self.route = route

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if path is not None or name not in self.route.modules or not _imported_from(self.suite_root):
            return None
        return ModuleSpec(name, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return StudentModule(spec.name, self.route)

    def exec_module(self, module: ModuleType) -> None:
        return None


class _UnlistedModules:
    """Last on ``sys.meta_path``: an import in the hidden suite that nothing else found is
    most likely a student module missing from ``[assignment] modules``; say so."""

    def __init__(self, suite_root: str, route: _Route, config_path: str) -> None:
        self.suite_root = suite_root
        self.route = route
        self.config_path = config_path

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if path is not None or "." in name or not _imported_from(self.suite_root):
            return None
        raise ModuleNotFoundError(
            f"the hidden suite imports {name!r}, which is not a module of assignment "
            f"{self.route.assignment} (modules = {self.route.modules} in {self.config_path}) "
            "and not installed in the grader. If students submit that file, add its name to "
            "[assignment] modules; if it is a helper of the suite (or a support file), put "
            "it in the suite's folder; if it is a library, install it in the grading "
            "environment", name=name)


class UnittestCompat:
    """Registered by the plugin for a grading: routes the suite's imports of student modules
    to the worker and applies gradescope-utils' run-time attributes to the records."""

    def __init__(self, session: GradingSession, config_path: str) -> None:
        self.session = session
        self.route = _Route(session.assignment.id, list(session.assignment.modules))
        self.numbers: dict[str, str] = {}
        self.class_proxy: StudentProxy | None = None  # the running class's, see below
        root = str(Path(str(session.config.rootpath)).resolve())
        self.first = _StudentImports(root, self.route)
        self.last = _UnlistedModules(root, self.route, config_path)

    # -- sys.meta_path ----------------------------------------------------------------
    def install(self) -> None:
        if self.first not in sys.meta_path:
            sys.meta_path.insert(0, self.first)
            sys.meta_path.append(self.last)

    def uninstall(self) -> None:
        for finder in (self.first, self.last):
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
        for name in self.route.modules:
            if isinstance(sys.modules.get(name), StudentModule):
                del sys.modules[name]

    # -- hooks ------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        self.install()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """A module's unittest tests in unittest's loader order (classes, then methods, by
        name), as JSONTestRunner lists them; other tests keep their places."""
        by_module: dict[int, list[int]] = {}
        for i, item in enumerate(items):
            if is_unittest(item) and item.parent is not None:
                by_module.setdefault(id(item.parent.parent), []).append(i)
        for slots in by_module.values():
            ordered = sorted((items[i] for i in slots),
                             key=lambda it: (it.parent.name if it.parent else "",
                                             getattr(it, "originalname", it.name)))
            for i, item in zip(slots, ordered, strict=True):
                items[i] = item

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.numbers = {item.nodeid: n for item in session.items
                        if (n := number_of(item)) is not None}
        if self.session.isolation == Isolation.NONE:
            # In-process the worker imports the real modules into this very sys.modules;
            # the suite's names are bound already.
            self.uninstall()

    @pytest.fixture(scope="class", autouse=True)
    def _ag_unittest_class_student(self, request: pytest.FixtureRequest) -> Iterator[None]:
        """setUpClass and tearDownClass of a unittest class call into a worker of the class
        (started only if they do): the objects they make are shared by the class's tests,
        as unittest shares them. Set up before unittest's own setUpClass fixture."""
        cls = getattr(request, "cls", None)
        if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
            yield
            return
        s = self.session
        proxy = StudentProxy(s.submission, s.spawn, s.assignment.limits.call_timeout,
                             s.codec_limits, hung_imports=s.hung_imports,
                             spawn_clean=s.spawn_clean, pause_student=s.pause_student,
                             torch_in_worker="torch" in s.assignment.preload,
                             worker_cuda=s.worker_has_cuda)
        proxy.map_error = _student_exception
        self.class_proxy = self.route.proxy = proxy
        self.route.handles.clear()
        try:
            yield
        finally:
            self.class_proxy = self.route.proxy = None
            self.route.handles.clear()
            proxy.close(output_limit=results.MAX_STUDENT_STDOUT)

    @pytest.fixture(autouse=True)
    def _ag_unittest_student(self, request: pytest.FixtureRequest) -> Iterator[None]:
        """A unittest test's calls go to the `student` fixture's worker (fresh per test)."""
        item = request.node
        if not isinstance(item, pytest.Item) or not is_unittest(item):
            yield
            return
        for fn in _chain(_function(item)):
            for attr in RUN_ATTRS:
                vars(fn).pop(attr, None)
        proxy: StudentProxy = request.getfixturevalue("student")
        proxy.map_error = _student_exception  # assertRaises(ValueError) catches theirs
        self.route.proxy = proxy
        self.route.handles.clear()
        try:
            yield
        finally:
            self.route.proxy = self.class_proxy  # for tearDownClass
            self.route.handles.clear()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Any:
        report = yield  # the session has filled the record in by now
        if report.when == "call" and is_unittest(item):
            rec = self.session.records.get(item.nodeid)
            if rec is not None and rec.outcome != "unavailable":
                self._after_call(item, rec)
        return report

    def _after_call(self, item: pytest.Item, rec: results.TestRecord) -> None:
        fn = _function(item)
        attrs = vars(fn) if hasattr(fn, "__dict__") else {}
        if SCORE in attrs and rec.max_score > 0:
            score = attrs[SCORE]
            if not (isinstance(score, Real) and not isinstance(score, bool)
                    and math.isfinite(float(score))):
                self.session.errors.append(
                    f"{item.nodeid}: set_score({score!r}) of @partial_credit: give the points "
                    f"earned as a number between 0 and {rec.max_score:g}")
            else:
                # JSONTestRunner takes the score as given, failed or not; here it is kept
                # within the test's points.
                rec.partial = min(max(float(score) / rec.max_score, 0.0), 1.0)
                if rec.partial < 1 and rec.outcome == "passed":
                    rec.outcome = "failed"  # JSONTestRunner: points lost is a failure
        if BOARD_COLUMN in attrs and BOARD_VALUE in attrs:
            from autograder.grading.plugin import leaderboard_entry

            try:
                entry = leaderboard_entry(attrs[BOARD_COLUMN], attrs[BOARD_VALUE],
                                          attrs.get(BOARD_ORDER, "desc"))
            except ValueError as exc:
                rec.outcome = "failed"
                rec.output = f"{rec.output}\nset_leaderboard_value: {exc}".strip()
            else:
                board = self.session.leaderboard
                board[:] = [e for e in board if e["name"] != entry["name"]] + [entry]
        hide = attrs.get(HIDE_ERRORS)
        if isinstance(hide, str) and rec.outcome == "failed" and not _harness_stop(rec):
            rec.output = hide  # the traceback stays in the staff-only extra_data

    def number_tests(self, data: dict[str, Any], nodeids: list[str]) -> dict[str, Any]:
        """results.json's ``number`` of each test from its ``@number`` (JSONTestRunner's);
        ``nodeids`` are the records in the order of ``data["tests"]``."""
        tests = data.get("tests", [])
        for nodeid, entry in zip(nodeids, tests, strict=False):
            if nodeid in self.numbers:
                entry["number"] = self.numbers[nodeid]
        return data

    def close(self) -> None:
        self.route.proxy = None
        self.uninstall()


def _harness_stop(rec: results.TestRecord) -> bool:
    return rec.output.startswith("Stopped:")


__all__ = ["LazyName", "StudentModule", "UnittestCompat", "adapt", "number_of"]
