"""The telephony boundary: driver events in, commands out. Only drivers talk to a phone system."""
