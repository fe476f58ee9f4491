"""One HTTP/1.1 request over a bare socket, for bodies too big to send in full.

A server that refuses a body by its Content-Length (413 before reading it) closes the
connection while an ordinary client is still writing; the client then sees a reset
instead of the answer. This sends the headers and only the start of the body, then reads
the answer the server gave on seeing the declared length.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

#: How much of the body is actually sent.
PREFIX_BYTES = 64 * 1024
ANSWER_TIMEOUT_S = 15.0


async def declared_post(
    base_url: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, str]:
    """POST announcing `len(body)` bytes but sending only the first `PREFIX_BYTES`; the
    status code and body text of the answer."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    try:
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        writer.write(body[:PREFIX_BYTES])
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_TIMEOUT_S)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        text = (await asyncio.wait_for(reader.readexactly(length), ANSWER_TIMEOUT_S)).decode()
        return status, text
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
