"""Customer master keyed by phone number (顧客マスター)."""
