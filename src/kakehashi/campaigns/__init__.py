"""Outbound campaigns: call lists (leads), the do-not-call list, refusals (特定商取引法 Art.17), reservation."""
