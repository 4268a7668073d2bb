"""Helpers for byte streams moving between the HTTP edge and a store."""

from collections.abc import AsyncIterable, AsyncIterator


async def coalesce(body: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes | bytearray]:
    """Regroup a stream of small chunks into blocks of at least `size` bytes (the last may be less).

    Fewer, larger blocks mean fewer thread hops and fewer store requests per byte. A block is
    handed over as the buffer it was gathered in (no copy); the next block gets a new buffer.
    """
    buffer = bytearray()
    async for chunk in body:
        if not buffer and len(chunk) >= size:
            yield chunk
            continue
        buffer += chunk
        if len(buffer) >= size:
            yield buffer
            buffer = bytearray()
    if buffer:
        yield buffer
