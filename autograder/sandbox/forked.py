"""Try something irreversible (a seccomp filter, Landlock, new namespaces) in a forked
child: the grader and the zygote learn whether the platform allows it without being
changed by it, and workers never fail their setup over a protection it refuses."""

from __future__ import annotations

import os
from collections.abc import Callable


def try_in_child(fn: Callable[[], None]) -> str | None:
    """None if ``fn()`` returned in a child process, else why not (its exception)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(r)
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(w, (str(exc) or type(exc).__name__).encode()[:500])
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        why = f.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return why or f"the child ended with status {status}"
