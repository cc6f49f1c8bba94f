"""SDP (RFC 8866) for one audio stream, and the offer/answer rules of RFC 3264.

:class:`SessionDescription` parses and prints a whole description, keeping every line it does
not interpret, so ``str(SessionDescription.parse(text))`` gives the text back. On top of it:

- :func:`answer` builds our answer to an offer: the first codec of the offer we speak
  (PCMU or PCMA), the offerer's own payload number for telephone-event (3.2 of REFERENCE.md:
  reuse it, never a default), the complementary direction, one ``m=`` line per offered
  stream with every stream but the first audio one refused (port 0). No common codec raises
  :class:`NoCommonCodec`, which the UA turns into 488.
- :func:`offer` builds our offer (outbound calls, and the answer-less INVITE case) and
  :func:`accept_answer` reads the answer to it.

What the media layer needs is summed up in :class:`MediaParams`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.carriers.sip.errors import RemoteProtocolError

__all__ = [
    "CODECS",
    "MediaParams",
    "NoCommonCodec",
    "SessionDescription",
    "accept_answer",
    "answer",
    "offer",
]

#: What we speak: static payload type -> encoding name (RFC 3551 table 4), in preference order.
CODECS = {0: "PCMU", 8: "PCMA"}
_BY_NAME = {name: pt for pt, name in CODECS.items()}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_COMPLEMENT = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
DTMF_PT = 101  # the payload type we offer for telephone-event


class NoCommonCodec(RemoteProtocolError):
    """The offer has no audio stream we can take (488 Not Acceptable Here, RFC 3261 13.3.1.3)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, 488)


@dataclass(slots=True)
class Media:
    """One ``m=`` section."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    connection: str = ""
    attributes: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # i=, b=, k= lines kept as written

    def attribute(self, name: str) -> list[str]:
        """Values of ``a=name:value`` lines (``""`` for a flag ``a=name``)."""
        out = []
        for attr in self.attributes:
            key, _, value = attr.partition(":")
            if key == name:
                out.append(value)
        return out

    @property
    def direction(self) -> str | None:
        for attr in self.attributes:
            if attr in DIRECTIONS:
                return attr
        return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """payload type -> (encoding name upper-case, clock rate), static types included."""
        out: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in CODECS:
                out[int(fmt)] = (CODECS[int(fmt)], 8000)
        for value in self.attribute("rtpmap"):
            pt_text, _, spec = value.partition(" ")
            name, _, rest = spec.partition("/")
            rate = rest.partition("/")[0]
            if pt_text.isdigit() and rate.isdigit():
                out[int(pt_text)] = (name.strip().upper(), int(rate))
        return out


@dataclass(slots=True)
class SessionDescription:
    """A parsed SDP body; unknown lines are kept in place."""

    origin: str = "- 0 0 IN IP4 0.0.0.0"
    name: str = "-"
    connection: str = ""
    session_attributes: list[str] = field(default_factory=list)
    session_other: list[str] = field(default_factory=list)
    timing: str = "0 0"
    media: list[Media] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | bytes, *, max_media: int = 16) -> SessionDescription:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        sdp = cls()
        current: Media | None = None
        seen_version = False
        for raw in text.replace("\r\n", "\n").split("\n"):
            line = raw.strip()
            if not line:
                continue
            kind, eq, value = line.partition("=")
            if not eq or len(kind) != 1:
                raise RemoteProtocolError(f"bad SDP line {line[:60]!r}", 400)
            if kind == "v":
                if value != "0":
                    raise RemoteProtocolError(f"SDP version {value!r}", 400)
                seen_version = True
            elif kind == "m":
                parts = value.split()
                if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
                    raise RemoteProtocolError(f"bad SDP media line {line[:60]!r}", 400)
                if len(sdp.media) >= max_media:
                    raise RemoteProtocolError("too many SDP media lines", 400)
                port = int(parts[1].split("/")[0])
                if port > 65535:
                    raise RemoteProtocolError(f"bad SDP port {port}", 400)
                current = Media(parts[0], port, parts[2], parts[3:])
                sdp.media.append(current)
            elif kind == "c":
                if current is None:
                    sdp.connection = value
                else:
                    current.connection = value
            elif kind == "a":
                (current.attributes if current else sdp.session_attributes).append(value)
            elif current is not None:
                current.other.append(line)
            elif kind == "o":
                sdp.origin = value
            elif kind == "s":
                sdp.name = value
            elif kind == "t":
                sdp.timing = value
            else:
                sdp.session_other.append(line)
        if not seen_version:
            raise RemoteProtocolError("SDP without v=0", 400)
        return sdp

    def __str__(self) -> str:
        lines = ["v=0", f"o={self.origin}", f"s={self.name}"]
        if self.connection:
            lines.append(f"c={self.connection}")
        lines.extend(self.session_other)
        lines.append(f"t={self.timing}")
        lines.extend(f"a={a}" for a in self.session_attributes)
        for m in self.media:
            lines.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.formats)}")
            lines.extend(m.other)
            if m.connection:
                lines.append(f"c={m.connection}")
            lines.extend(f"a={a}" for a in m.attributes)
        return "\r\n".join(lines) + "\r\n"

    def encode(self) -> bytes:
        return str(self).encode()

    @property
    def session_direction(self) -> str | None:
        for attr in self.session_attributes:
            if attr in DIRECTIONS:
                return attr
        return None


@dataclass(frozen=True, slots=True)
class MediaParams:
    """What was agreed for the audio stream."""

    #: Where the peer said to send RTP (may be replaced by latching on the first packet).
    remote_host: str
    remote_port: int
    payload_type: int
    codec: str  # "PCMU" or "PCMA"
    #: telephone-event payload type agreed, or None when DTMF events were not negotiated.
    dtmf_payload_type: int | None
    #: Our direction: may we send (``sendrecv``/``sendonly``), do we receive.
    direction: str = "sendrecv"
    ptime_ms: int = 20

    @property
    def sending(self) -> bool:
        return self.direction in ("sendrecv", "sendonly") and self.remote_port != 0

    @property
    def on_hold(self) -> bool:
        return not self.sending


def _address(connection: str) -> str:
    parts = connection.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise RemoteProtocolError(f"bad SDP connection {connection!r}", 400)
    return parts[2].split("/")[0]


def _dtmf_type(media: Media) -> int | None:
    for pt, (name, rate) in media.rtpmap().items():
        if name == "TELEPHONE-EVENT" and rate == 8000 and str(pt) in media.formats:
            return pt
    return None


def _pick(media: Media, codecs: tuple[str, ...]) -> tuple[int, str] | None:
    """The first payload type of an audio stream's offer that we speak, with its name."""
    if media.kind != "audio" or media.port == 0 or "RTP/AVP" not in media.proto:
        return None
    rtpmap = media.rtpmap()
    for fmt in media.formats:
        if fmt.isdigit() and (entry := rtpmap.get(int(fmt))) is not None:
            name, rate = entry
            if name in codecs and rate == 8000:
                return int(fmt), name
    return None


def _local(version: int, session_id: int, host: str) -> SessionDescription:
    family = "IP6" if ":" in host else "IP4"
    return SessionDescription(
        origin=f"overtalk {session_id} {version} IN {family} {host}",
        name="overtalk",
        connection=f"IN {family} {host}",
    )


def answer(
    offer_sdp: SessionDescription,
    *,
    host: str,
    port: int,
    session_id: int,
    version: int,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
) -> tuple[SessionDescription, MediaParams]:
    """Our answer to ``offer_sdp`` and the agreed parameters (RFC 3264 section 6).

    The codec is the first in the *offer's* order that we speak: the offerer ranks them, and a
    trunk that offers PCMA first usually means its network is A-law.
    """
    local = _local(version, session_id, host)
    chosen: tuple[int, Media, int, str] | None = None
    for index, media in enumerate(offer_sdp.media):
        pick = _pick(media, codecs)
        if pick is not None:
            chosen = (index, media, *pick)
            break
    if chosen is None:
        raise NoCommonCodec("the offer has no PCMU or PCMA audio stream")
    index, media, pt, name = chosen
    dtmf = _dtmf_type(media)
    offered = media.direction or offer_sdp.session_direction or "sendrecv"
    ours = _COMPLEMENT[offered]
    formats = [str(pt)] + ([str(dtmf)] if dtmf is not None else [])
    attributes = [f"rtpmap:{pt} {name}/8000"]
    if dtmf is not None:
        attributes += [f"rtpmap:{dtmf} telephone-event/8000", f"fmtp:{dtmf} 0-16"]
    attributes += ["ptime:20", ours]
    # Refused streams keep their place with port 0 (RFC 3264 6: same number and order).
    local.media = [Media(m.kind, 0, m.proto, m.formats[:1]) for m in offer_sdp.media]
    local.media[index] = Media("audio", port, "RTP/AVP", formats, attributes=attributes)
    connection = media.connection or offer_sdp.connection
    if not connection:
        raise RemoteProtocolError("SDP offer without a connection address", 400)
    remote_host = _address(connection)
    # An offer of 0.0.0.0 (RFC 2543 hold) means: do not send.
    if remote_host in ("0.0.0.0", "::"):
        ours = "recvonly" if ours in ("sendrecv", "recvonly") else "inactive"
    ptimes = media.attribute("ptime")
    ptime = int(ptimes[0]) if ptimes and ptimes[0].strip().isdigit() else 20
    params = MediaParams(remote_host, media.port, pt, name, dtmf, ours, ptime)
    return local, params


def offer(
    *, host: str, port: int, session_id: int, version: int, direction: str = "sendrecv"
) -> SessionDescription:
    """Our offer: PCMU, PCMA and telephone-event, 20 ms packets."""
    local = _local(version, session_id, host)
    formats = [str(pt) for pt in CODECS] + [str(DTMF_PT)]
    attributes = [f"rtpmap:{pt} {name}/8000" for pt, name in CODECS.items()]
    attributes += [f"rtpmap:{DTMF_PT} telephone-event/8000", f"fmtp:{DTMF_PT} 0-16"]
    attributes += ["ptime:20", direction]
    local.media.append(Media("audio", port, "RTP/AVP", formats, attributes=attributes))
    return local


def accept_answer(answer_sdp: SessionDescription) -> MediaParams:
    """Read the answer to our :func:`offer`; NoCommonCodec if it took nothing we offered."""
    for media in answer_sdp.media:
        if media.kind != "audio" or media.port == 0:
            continue
        rtpmap = media.rtpmap()
        for fmt in media.formats:
            if fmt.isdigit() and (entry := rtpmap.get(int(fmt))) and entry[0] in _BY_NAME:
                connection = media.connection or answer_sdp.connection
                if not connection:
                    raise RemoteProtocolError("SDP answer without a connection address", 400)
                direction = media.direction or answer_sdp.session_direction or "sendrecv"
                return MediaParams(
                    _address(connection),
                    media.port,
                    int(fmt),
                    entry[0],
                    _dtmf_type(media),
                    _COMPLEMENT[direction],
                )
    raise NoCommonCodec("the answer accepted none of our codecs")
