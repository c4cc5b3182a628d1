"""Callflows: the validated tree (model) and the executor that walks it for a call."""
