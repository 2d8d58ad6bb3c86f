"""Calls: the call model and state machine, persisted per transition, and CDRs."""
