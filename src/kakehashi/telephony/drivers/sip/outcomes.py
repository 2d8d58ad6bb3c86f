"""What a SIP final response means for a call that was not answered (the workers' ``outcome`` of ``ended``)."""

from __future__ import annotations

#: Final response code → outcome; any other failure is ``failed``.
FAILURE_NAMES = {486: "busy", 600: "busy", 408: "no_answer", 480: "no_answer", 487: "no_answer", 404: "invalid",
                 484: "invalid", 604: "invalid"}  # fmt: skip
