"""Course tooling over the grading engine: templates from solutions, mutants, validation
of hidden suites and bulk grading."""
