"""A private SIP lab on 127.0.0.1: Kamailio + rtpengine (``SipStack``) and baresip phones (``Phone``).

Used by the SIP tests, ``kakehashi demo --telephony sip`` and ``kakehashi bench sip``::

    with SipStack(work_dir) as stack:
        customer = stack.phone("0312345678", tone_hz=440)
        agent = stack.phone("agent1", tone_hz=660)
        customer.wait_registered(); agent.wait_registered()
        customer.dial("agent1")
        agent.wait_for("CALL_INCOMING"); agent.answer()
        ...

Nothing here leaves the machine: every process binds 127.0.0.1 only, rtpengine rewrites SDP to
127.0.0.1, baresip runs with ``net_interface 127.0.0.1``. Each stack has its own ports, work dir,
Kamailio runtime dir (pid file, ctl socket) and logs, so several stacks coexist with each other and
with the system's own daemons. Readiness is polled (rtpengine ng ``ping``, a SIP OPTIONS to
Kamailio, baresip's control socket and ``reginfo``), never slept for; a start that fails raises
``LabError`` with the tail of the process's log. ``stop()`` ends only the process groups the lab
started.

Kamailio routing (``kamailio.cfg.tmpl``): REGISTER → usrloc in memory; requests from the CTI's
addresses (its media workers: dispatcher set 1) → registered users (404 otherwise); other INVITEs → a
registered R-URI user, else a CTI worker, round robin, the next one when a worker is full (the center's
numbers); every SDP goes through rtpengine (offer/answer/delete).

Browser softphones connect to ``ws_url`` (SIP over WebSocket, ``ws://127.0.0.1:<ws_port>``) and must
authenticate with ephemeral credentials made from ``softphone_secret`` (Kamailio's ``auth_ephemeral``; the
app issues them: ``kakehashi.telephony.api``); rtpengine turns their WebRTC media (ICE, DTLS-SRTP,
rtcp-mux) into plain RTP for everyone else. UDP phones on loopback register without credentials.

The package: ``stack`` (``SipStack``), ``kamailio`` (the config template and its probes), ``rtpengine`` (the ng
protocol), ``phones`` (``Phone``), ``audio`` (tones and recordings), ``ports`` and ``processes`` (what every part
shares). Everything public is importable from here.
"""

from kakehashi.telephony.drivers.sip.lab.audio import Audio, read_wav, tone_file, write_tone_wav
from kakehashi.telephony.drivers.sip.lab.kamailio import KAMAILIO_TEMPLATE, sip_options, websocket_listening
from kakehashi.telephony.drivers.sip.lab.phones import Phone, PhoneEvent
from kakehashi.telephony.drivers.sip.lab.ports import CONTROL_PORTS, MEDIA_PORTS, release_ports, reserve_ports
from kakehashi.telephony.drivers.sip.lab.processes import LOOPBACK, LabError, log_tail, running_processes
from kakehashi.telephony.drivers.sip.lab.rtpengine import DEFAULT_RTP_PORT_COUNT, rtpengine_ng
from kakehashi.telephony.drivers.sip.lab.stack import CTI_PORT_STEP, DEFAULT_CTI_WORKERS, SipStack

__all__ = [
    "CONTROL_PORTS",
    "CTI_PORT_STEP",
    "DEFAULT_CTI_WORKERS",
    "DEFAULT_RTP_PORT_COUNT",
    "KAMAILIO_TEMPLATE",
    "LOOPBACK",
    "MEDIA_PORTS",
    "Audio",
    "LabError",
    "Phone",
    "PhoneEvent",
    "SipStack",
    "log_tail",
    "read_wav",
    "release_ports",
    "reserve_ports",
    "rtpengine_ng",
    "running_processes",
    "sip_options",
    "tone_file",
    "websocket_listening",
    "write_tone_wav",
]
