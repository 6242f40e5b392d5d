"""Run a command the way `docker run` (and Gradescope) starts the grader: root, Docker's
default capability set (no CAP_SYS_ADMIN) and a seccomp filter that refuses new
namespaces, as Docker's default profile does without CAP_SYS_ADMIN (this kernel would
otherwise still let root make user namespaces).

    python tests/support/docker_default.py [--reachable PATH]... [--user NAME] -- CMD [ARG...]

``--user NAME``: run CMD as that unprivileged user instead (a grader without root, as on
a student's laptop), after ``--reachable``.

``--reachable PATH``: a deployment puts the harness where every uid can traverse (an image's
/opt/venv). A checkout in a 0700 folder has it behind that folder; for the test run only,
each folder on the way to PATH that others cannot enter is covered, in a private mount
namespace of this process (made before the capabilities go), by a 0711 tmpfs with its
entries bound back: nothing changes on disk and nothing else becomes readable.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import sys

# What Docker keeps (moby's defaultCapabilities); everything else is dropped.
DOCKER_CAPS = {"chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid",
               "setuid", "setfcap", "setpcap", "net_bind_service", "sys_chroot", "kill",
               "audit_write"}
NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18

libc = ctypes.CDLL(None, use_errno=True)


def _mount(src: bytes, dst: bytes, fstype: bytes | None, flags: int, data: bytes | None) -> None:
    if libc.mount(src, dst, fstype, flags, data) != 0:
        raise OSError(ctypes.get_errno(), f"mount {dst!r}: {os.strerror(ctypes.get_errno())}")


def make_reachable(paths: list[str]) -> None:
    blocked = []
    for path in paths:
        # abspath, not realpath: a venv's bin/python links out of the 0700 folder
        p = os.path.abspath(path)
        chain = [p] if os.path.isdir(p) else []
        while p != "/":
            p = os.path.dirname(p)
            chain.append(p)
        for q in chain:
            if not os.stat(q).st_mode & stat.S_IXOTH and q not in blocked:
                blocked.append(q)
    if not blocked:
        return
    if libc.unshare(0x00020000) != 0:
        raise OSError("cannot make a mount namespace for --reachable")
    _mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    for folder in sorted(blocked, key=len):  # outermost first: inner ones lie below it
        fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
        entries = os.listdir(f"/proc/self/fd/{fd}")
        _mount(b"tmpfs", folder.encode(), b"tmpfs", 0, b"mode=0711")
        for name in entries:
            src, dst = f"/proc/self/fd/{fd}/{name}", os.path.join(folder, name)
            if os.path.isdir(src) and not os.path.islink(src):
                os.mkdir(dst)
            elif os.path.islink(src):
                os.symlink(os.readlink(src), dst)
                continue
            else:
                open(dst, "w").close()
            _mount(src.encode(), dst.encode(), None, MS_BIND | MS_REC, None)
        os.close(fd)


def refuse_namespaces() -> None:
    import pyseccomp as seccomp

    f = seccomp.SyscallFilter(seccomp.ALLOW)
    eperm = seccomp.ERRNO(errno.EPERM)
    for name in ("unshare", "setns", "mount", "umount2", "pivot_root"):
        f.add_rule(eperm, name)
    for bit in range(32):
        flag = 1 << bit
        if flag & NAMESPACE_FLAGS:
            f.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    f.set_attr(seccomp.Attr.CTL_NNP, 0)  # Docker does not set no_new_privs
    f.load()


def main(argv: list[str]) -> None:
    reachable: list[str] = []
    user = None
    while argv and argv[0] in ("--reachable", "--user"):
        if argv[0] == "--reachable":
            reachable.append(argv[1])
        else:
            user = argv[1]
        argv = argv[2:]
    if not argv or argv[0] != "--" or len(argv) < 2:
        raise SystemExit(__doc__)
    make_reachable(reachable)
    if user is not None:  # an unprivileged grader (a laptop), not Docker's root
        import pwd

        entry = pwd.getpwnam(user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        os.execv(argv[1], argv[1:])
    refuse_namespaces()
    capsh = shutil.which("capsh") or "/usr/sbin/capsh"
    drop = ",".join(n for n in _cap_names(capsh) if n not in DOCKER_CAPS)
    os.execv(capsh, [capsh, f"--drop=cap_{drop.replace(',', ',cap_')}", "--",
                     "-c", 'exec "$@"', "docker-default", *argv[1:]])


def _cap_names(capsh: str) -> list[str]:
    """The capabilities this process may still hold (its bounding set)."""
    import subprocess

    out = subprocess.run([capsh, "--print"], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("Bounding set ="))
    return [c.removeprefix("cap_") for c in line.split("=", 1)[1].split(",") if c]


if __name__ == "__main__":
    main(sys.argv[1:])
