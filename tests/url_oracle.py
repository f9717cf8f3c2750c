"""URLs normalised by yarl (aiohttp's URL library), not by the sensor's own
`normalise_url`: the reading that tshark's URIs, as sent, are compared with."""

from __future__ import annotations

import yarl


def normalised(uri: str) -> str:
    """RFC 3986 §6 normalisation as yarl does it (scheme and host lower-case, the name in
    IDNA, the scheme's default port dropped, unreserved escapes decoded and the others'
    hex in upper case), without the user and the fragment, an empty path made "/"
    (§6.2.3)."""
    url = yarl.URL(uri)
    query = url.raw_query_string
    return f"{url.origin()}{url.raw_path or '/'}" + (f"?{query}" if query else "")
