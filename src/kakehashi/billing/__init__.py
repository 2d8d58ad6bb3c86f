"""Billing (課金): per-second rate plans per tenant and the rating of calls (秒課金)."""
