"""HTTP/1.x requests (RFC 9112 §3): what a client asks for, on any TCP port.

A request is recognised by its method token at the start of the client's data.
`http_request(buf, off, end)` reads one request head: method, target, protocol,
Host and User-Agent; the full URL is built and normalised as URL indicators are
(`normalise_url`), so the two compare as strings. `HttpRequests` follows one flow's
client side through keep-alive: it skips each body by its Content-Length and
reads every request, at most `MAX_REQUESTS` per flow, each head at most
`MAX_HEAD` bytes. Names from the wire are escaped as DNS names are; nothing
raises.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

from sensor.core.decode.dns import name_text
from sensor.core.decode.segments import SEQ_MASK, in_order
from sensor.core.events import HttpRequest, new_record

METHODS: Final = frozenset((b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS",
                            b"CONNECT", b"PATCH", b"TRACE"))
MAX_HEAD: Final = 16_384    # bytes of one request head
MAX_REQUESTS: Final = 100   # requests read per flow
MAX_FIELD: Final = 2048     # characters kept of a target or User-Agent
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_UNRESERVED_ESCAPE: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_PRINTABLE: Final = re.compile(rb"[\x20-\x5b\x5d-\x7e]*\Z")


def wire_text(raw: bytes) -> str:
    """Bytes from the wire as text, case kept: printable ASCII as it is, anything else
    (and the backslash) escaped `\\xNN`, as names are."""
    if _PRINTABLE.match(raw):
        return raw.decode("ascii")
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x5C else f"\\x{b:02x}" for b in raw)


def starts_request(buf: bytes, off: int, end: int) -> bool:
    """Whether the bytes at `off` begin with a method token and a space."""
    space = buf.find(b" ", off, min(end, off + 8))
    return space > off and buf[off:space] in METHODS


def _percent(match: re.Match) -> str:
    """A percent-encoded octet as RFC 3986 §6.2.2 normalises it: unreserved ones decoded,
    the others in upper-case hex."""
    char = chr(int(match.group(1), 16))
    if char.isascii() and (char.isalnum() or char in "-._~"):
        return char
    return "%" + match.group(1).upper()


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: "/a/b/../c/./d" → "/a/c/d", as a server resolves the path (a
    request for "/x/../gate.php" reaches "/gate.php")."""
    if "." not in path:
        return path
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    trailing = segments[-1] in (".", "..")      # "/a/.." is "/", "/a/." is "/a/"
    return "/" + "/".join(kept) + ("/" if trailing and kept else "")


def normalise_url(text: str) -> str:
    """`text` as URL indicators and requests are compared (RFC 3986 §6.2.2–6.2.3):
    scheme and host lower-case, the scheme's default port dropped, unreserved
    percent-escapes decoded, dot-segments removed, an empty path made `/`, the query
    kept, the fragment and any user name dropped. Raise ValueError when it is no
    http(s) URL with a host."""
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"not an http or https URL: {text[:80]!r}")
    host = (parts.hostname or "").rstrip(".")     # "evil.example." is evil.example
    if not host:
        raise ValueError(f"URL without a host: {text[:80]!r}")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as err:
            raise ValueError(f"not a valid internationalised name ({err})") from None
    if ":" in host:
        host = f"[{host}]"
    port = parts.port                       # raises ValueError when not a number
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = remove_dot_segments(_UNRESERVED_ESCAPE.sub(_percent, parts.path)) or "/"
    query = _UNRESERVED_ESCAPE.sub(_percent, parts.query)
    return f"{scheme}://{netloc}{path}?{query}" if query else f"{scheme}://{netloc}{path}"


def _host_port(text: str) -> tuple[str, int]:
    """A Host header's (or CONNECT target's) name and port: "Evil.example:8080" →
    ("evil.example", 8080); "[2001:db8::1]:80" → ("2001:db8::1", 80)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    return host.lower().rstrip("."), int(port) if port.isdigit() and len(port) <= 5 else 0


def http_request(buf: bytes, off: int, end: int) -> tuple[HttpRequest, int, int] | str:
    """(request, bytes of its head, its body's Content-Length) for the request head at
    `off`; `http.partial` when the head is not all there, or why it cannot be read.
    A chunked body is -1: what follows it cannot be told apart without reading it."""
    head_end = buf.find(b"\r\n\r\n", off, min(end, off + MAX_HEAD))
    if head_end < 0:
        return "http.partial" if end - off < MAX_HEAD else "http.head_too_long"
    lines = buf[off:head_end].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] not in METHODS or not parts[2].startswith(b"HTTP/1."):
        return "http.bad_request_line"
    method, target = parts[0].decode(), wire_text(parts[1][:MAX_FIELD])
    host_header = agent = ""
    length = 0
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            return "http.bad_header"
        name = name.lower()
        if name == b"host":
            host_header = name_text(value.strip()[:255])
        elif name == b"user-agent":
            agent = wire_text(value.strip()[:MAX_FIELD])
        elif name == b"content-length":
            text = value.strip()
            if not text.isdigit() or len(text) > 15:
                return "http.bad_content_length"
            length = int(text)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            length = -1
    if method == "CONNECT":
        host, port = _host_port(target)
        url = ""
    else:
        absolute = "://" in target[:10]
        try:
            url = normalise_url(target if absolute else f"http://{host_header}{target}")
        except ValueError:
            url = ""
        if absolute:
            parsed = urlsplit(url)
            host, port = (parsed.hostname or "", parsed.port or 0) if url else ("", 0)
        else:
            host, port = _host_port(host_header)
    return (new_record(HttpRequest, (method, host, port, target, agent, wire_text(parts[2]),
                                     url)), head_end + 4 - off, length)


class HttpRequests:
    """The client side of one flow, request after request (keep-alive)."""

    __slots__ = ("next_seq", "data", "body_left", "count")

    def __init__(self) -> None:
        self.next_seq = -1
        self.data = b""         # an incomplete request head
        self.body_left = 0      # bytes of the current body still to skip
        self.count = 0

    def feed(self, seq: int, buf: bytes, off: int, end: int) -> tuple[list[HttpRequest], str]:
        """The requests this segment completes, and "" to go on reading or the reason
        to stop (`http.gap`, `http.chunked_body`, `http.request_limit`, a malformed
        head's reason)."""
        if self.next_seq < 0:
            new = buf[off:end]
        else:
            got = in_order(self.next_seq, seq, buf[off:end])
            if got is None:
                return [], "http.gap"
            new = got
            seq = self.next_seq
        self.next_seq = (seq + len(new)) & SEQ_MASK
        data = self.data + new if self.data else new
        at = 0
        requests: list[HttpRequest] = []
        while at < len(data):
            if self.body_left:
                skip = min(self.body_left, len(data) - at)
                self.body_left -= skip
                at += skip
                continue
            read = http_request(data, at, len(data))
            if read == "http.partial":
                self.data = data[at:]
                return requests, ""
            if isinstance(read, str):
                return requests, read
            request, head, length = read
            requests.append(request)
            self.count += 1
            at += head
            if length < 0:
                return requests, "http.chunked_body"
            if self.count >= MAX_REQUESTS:
                return requests, "http.request_limit"
            if request.method == "CONNECT":
                return requests, "http.connect"
            self.body_left = length
        self.data = b""
        return requests, ""
