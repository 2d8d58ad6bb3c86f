"""Benchmarks behind ``kakehashi bench ...``: each returns a JSON-ready dict."""
