"""Result codes (対応結果): what an agent closes a call with at wrap-up, per tenant."""
