"""The SIP driver: Kamailio (edge, registrar), rtpengine (all media), the CTI's media worker.

``lab`` starts a private Kamailio + rtpengine pair and scripted baresip phones on 127.0.0.1, for
tests, ``kakehashi demo --telephony sip`` and ``kakehashi bench sip``.
"""
