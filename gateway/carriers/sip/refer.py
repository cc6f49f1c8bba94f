"""Call transfer by REFER (RFC 3515), sans-I/O: the request's headers and the progress the
peer reports back in NOTIFYs of the ``refer`` event package (a ``message/sipfrag`` status)."""

from __future__ import annotations

from gateway.carriers.sip.message import SipMessage

__all__ = ["add_refer_to", "refer_progress"]


def add_refer_to(request: SipMessage, target: str, referred_by: str) -> None:
    """Make an in-dialog request a REFER to ``target`` (2.1 Refer-To; RFC 3892 Referred-By)."""
    request.add("Refer-To", f"<{target}>")
    request.add("Referred-By", referred_by)


def refer_progress(notify: SipMessage) -> int | None:
    """The status a NOTIFY reports for our REFER (2.4.5), or None when it is not about one or
    its body is not a status line."""
    event = (notify.get("Event") or "").split(";")[0].strip().lower()
    if event != "refer":
        return None
    line = notify.body.decode("ascii", "replace").strip().split("\r\n")[0].split("\n")[0]
    parts = line.split(" ")
    if len(parts) >= 2 and parts[0] == "SIP/2.0" and parts[1].isdigit():
        return int(parts[1])
    return None
