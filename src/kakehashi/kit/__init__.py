"""Helpers that know no domain: configuration, database, errors, events, text."""
