"""Routing: inbound numbers, ACD queues, the call controller, callbacks and voicemail."""
