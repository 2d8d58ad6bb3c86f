"""Contact-center metrics: real-time queue statistics and historical reports per queue and agent.

One definition per metric (``definitions``), read from the other domains' tables (``repository``, a reporting
read model — ADR 0011), documented in docs/metrics.md.
"""
