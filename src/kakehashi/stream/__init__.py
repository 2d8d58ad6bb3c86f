"""The live event stream (WebSocket): calls and agents, filtered per tenant and role."""
