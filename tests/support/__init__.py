"""Helpers shared by the test suite: real servers in subprocesses, free ports."""
