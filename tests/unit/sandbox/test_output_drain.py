"""The output drain: what is still in the worker's pipe, so the template's import output is
read as soon as it is all there (not after a fixed wait)."""

import os

from autograder.sandbox.pool import OutputDrain


def test_unread_counts_bytes_still_in_the_pipe_and_zero_once_drained() -> None:
    r, w = os.pipe()
    drain = OutputDrain(r)
    os.write(w, b"printed at import\n")
    assert drain.unread() == 18  # not started yet: all of it waits in the pipe
    drain.start()
    os.close(w)
    drain.join(timeout=5)
    assert not drain.is_alive()
    assert bytes(drain.head) == b"printed at import\n" and drain.total == 18
    assert drain.ended and drain.unread() == 0  # its fd is closed: never asked again
