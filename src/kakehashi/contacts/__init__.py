"""Contact history: one timeline entry per interaction (call, note, email...)."""
