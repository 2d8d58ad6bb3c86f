"""The append-only audit log: who read or changed which personal data, when, from where."""
