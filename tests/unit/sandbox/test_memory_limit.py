"""A GPU worker's memory is bounded without an address-space limit (CUDA reserves
terabytes of virtual memory at its start); a CPU worker keeps RLIMIT_AS."""

from __future__ import annotations

import ctypes
import os
import resource

from child import in_child

from autograder.sandbox import namespaces


def _in_child(gpu: bool) -> dict:
    """Set the worker's memory limit in a forked child (256 MB over what it uses), then
    reserve 64 GB of address space without touching it (as CUDA does) and write 512 MB."""
    def body():
        out = {}
        which, kind = namespaces.memory_limit(gpu)
        namespaces._set_limit(which, namespaces._memory_in_use(which) + 256 * 2**20)
        out["kind"] = kind
        out["as_limited"] = resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        # PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE: a reservation only
        addr = libc.mmap(None, 64 * 2**30, 0, 0x02 | 0x20 | 0x4000, -1, 0)
        out["reserve"] = "refused" if addr in (None, ctypes.c_void_p(-1).value) else "ok"
        try:
            block = bytearray(512 * 2**20)
            out["write"] = f"ok {len(block)}"
        except MemoryError:
            out["write"] = "MemoryError"
        return out

    return in_child(body, no_new_privs=False)


def test_gpu_worker_reserves_address_space_but_cannot_write_past_its_limit():
    got = _in_child(gpu=True)
    assert got == {"kind": namespaces.memory_limit(True)[1], "as_limited": False,
                   "reserve": "ok", "write": "MemoryError"}


def test_cpu_worker_keeps_the_address_space_limit():
    got = _in_child(gpu=False)
    assert got["as_limited"] and got["reserve"] == "refused" and got["write"] == "MemoryError"


def test_the_kind_of_limit_is_reported():
    spec = namespaces.SandboxSpec(workdir="/w", modules=[])
    gpu = {p.name: p.detail for p in namespaces.worker_protections(spec, gpu=True)}
    cpu = {p.name: p.detail for p in namespaces.worker_protections(spec, gpu=False)}
    assert "data segment (GPU worker" in gpu["rlimits"] and "address space" in cpu["rlimits"]


def test_no_cuda_here_means_a_cpu_worker():
    # torch on this machine is a CPU build, or there is no NVIDIA device node
    import torch  # noqa: F401 - cuda_capable looks at the loaded module

    expected = torch.version.cuda is not None and os.path.exists("/dev/nvidiactl")
    assert namespaces.cuda_capable() is expected
