"""Tenants: the client companies (委託元) and the center itself."""
