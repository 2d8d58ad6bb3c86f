"""Agents: who answers calls, their skills, and their state history (ログイン・受付可・離席・後処理)."""
