"""Tamper-proof autograding harness for a deep-learning course."""

__version__ = "0.1.0"
