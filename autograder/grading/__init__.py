"""The grader side: pytest plugin, the ``student`` proxy, results.json, the suite runner,
submission intake and notebooks. Trusted code only: it never imports student modules."""
