"""The SIP carrier: a SIP user agent and RTP media for calls from trunks and PBXs.

Pure modules first (no sockets, no clock; time passed in), the asyncio adapter last::

    errors       the exception tree (who caused it)
    headers      URIs, name-addr, Via, CSeq, parameters
    message      SipMessage.parse / serialize, SipFramer for TCP, size limits
    digest       digest authentication (RFC 2617 / 8760)
    sdp          SDP and RFC 3264 offer/answer for one audio stream
    transaction  the RFC 3261 transaction layer: timers A-M as table entries
    ua           dialogs, calls, CANCEL/BYE/re-INVITE/REFER, REGISTER (sans-I/O)
    rtp          RtpPacket, TelephoneEvent (RFC 4733), RTCP SR/RR
    jitter       adaptive jitter buffer
    media        one call's RTP stream: pacing, latching, DTMF, concealment, RTCP
    settings     SipSettings from OVERTALK_SIP_* variables
    aio          sockets, the SIP timer, the shared 20 ms media clock, calls (sip_server)
"""

from gateway.carriers.sip.aio import MediaClock, SipCall, SipGateway, sip_server
from gateway.carriers.sip.errors import (
    CallFailed,
    LocalProtocolError,
    RemoteProtocolError,
    SipError,
)
from gateway.carriers.sip.message import SipFramer, SipLimits, SipMessage
from gateway.carriers.sip.rtp import RtpPacket, TelephoneEvent
from gateway.carriers.sip.settings import SipSettings, load_sip_settings

__all__ = [
    "CallFailed",
    "LocalProtocolError",
    "MediaClock",
    "RemoteProtocolError",
    "RtpPacket",
    "SipCall",
    "SipError",
    "SipFramer",
    "SipGateway",
    "SipLimits",
    "SipMessage",
    "SipSettings",
    "TelephoneEvent",
    "load_sip_settings",
    "sip_server",
]
