"""APPI duties: list sources (third-party provision records), suspension and disclosure requests."""
