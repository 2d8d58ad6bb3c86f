"""Returns and complaints (返品・クレーム履歴); a complaint sets caution and outbound exclusion."""
