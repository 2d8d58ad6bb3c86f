"""The simulator driver: scripted callers and agents on a virtual or real-time clock."""
