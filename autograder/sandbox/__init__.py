"""The trust boundary's worker side and the wire: student code runs only here.

::

    grader process (pytest + plugin)            zygote (python -I -m ...sandbox.zygote)
    ------------------------------------        ---------------------------------------
    pool.Zygote.spawn()  --control socket-->    imports numpy/torch once; per request forks
                                                  monitor (root, never runs student code):
                                                    enters namespaces (namespaces.py),
                                                    reports protections, reaps, kills orphans
                                                    and forks
                                                  worker: rlimits, uid drop, seccomp
                                                    (syscall_filter.py), then serves
    proxy --framing + codec (requests)-->           worker.Runtime: imports the submission,
          <--plain values / handles--                 runs calls and probes
    template.Template.fork()  --fds-->              the submission's template: a worker that
                                                      imported it once and forks one worker
                                                      per test (worker.serve_template)

Modules here never import pytest, rich or ``autograder.grading`` (an import-linter
contract in ``make lint`` holds the arrows): what the worker loads stays small and the
wire stays the only way in.
"""
