"""Run a test's body in a forked child: what sandboxing does (a seccomp filter, Landlock,
rlimits) cannot be undone, so it must not happen in the test process."""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Callable
from typing import Any


def in_child(body: Callable[[], Any], *, no_new_privs: bool = True) -> Any:
    """``body()``'s JSON-able result, computed in a forked child (after no_new_privs, as in
    the worker). The child writes whatever it got before an error, then ends."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            if no_new_privs:
                ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
            os.write(w, json.dumps(body()).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else None
