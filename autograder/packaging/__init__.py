"""Deployment: the Gradescope upload bundle (and, later, the grading images)."""
