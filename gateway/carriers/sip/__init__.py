"""The SIP carrier: a SIP user agent and RTP media for calls from trunks and PBXs.

Pure modules first (no sockets, no clock; time passed in), the asyncio adapter last::

    errors       the exception tree (who caused it)
    headers      URIs, name-addr, Via, CSeq, parameters
    message      SipMessage.parse / serialize, SipFramer for TCP, size limits
    digest       digest authentication (RFC 2617 / 8760)
    sdp          SDP and RFC 3264 offer/answer for one audio stream
    transaction  the RFC 3261 transaction layer: timers A-M as table entries
    dialogs      a call's dialog state and the rules read off messages (RFC 3261 12)
    registration our binding at a registrar: grant, refresh, 423 (RFC 3261 10)
    auth         answering digest challenges as a client (RFC 3261 22.2)
    refer        REFER's headers and its NOTIFY progress (RFC 3515)
    ua           the user agent over them: calls, CANCEL/BYE/re-INVITE/UPDATE, its events
    rtp          RtpPacket, TelephoneEvent (RFC 4733), RTCP SR/RR
    jitter       adaptive jitter buffer
    media        one call's RTP stream: pulled frames, latching, RFC 4733 DTMF out, RTCP
    settings     SipSettings from OVERTALK_SIP_* variables

then the asyncio side::

    transport    the SIP sockets: UDP, and TCP framed by SipFramer
    media_clock  the shared 20 ms clock that drives every call's RTP; RTP port pairs
    calls        one call's RTP sockets, stream and carrier for its runner
    aio          SipGateway: the SIP timer, routing, answering, ending calls (sip_server)
"""

from gateway.carriers.sip.aio import SipGateway, sip_server
from gateway.carriers.sip.calls import SipCall
from gateway.carriers.sip.errors import (
    CallFailed,
    LocalProtocolError,
    RemoteProtocolError,
    SipError,
)
from gateway.carriers.sip.media_clock import MediaClock
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
