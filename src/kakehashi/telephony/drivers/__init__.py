"""Telephony drivers: ``sim`` (embedded, demos, load tests) and, later, ``sip``."""
