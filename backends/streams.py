"""Helpers for byte streams moving between the HTTP edge and a store."""

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Protocol, runtime_checkable


class ChunkedReader(Protocol):
    """What aiohttp's StreamReader offers (a request body, a store's response body)."""

    async def readchunk(self) -> tuple[bytes, bool]: ...

    def at_eof(self) -> bool: ...


class WholeBody:
    """A body received in full before the upload began (a small one usually is): it streams as
    its pieces like any body, and a backend that takes bytes at once (`LocalBackend.write`)
    uses `pieces` without iterating. The list is the backend's to consume."""

    __slots__ = ("pieces",)

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            if piece:
                yield piece


@runtime_checkable
class KernelBody(Protocol):
    """A body that can move itself into a file inside the kernel (a request body spliced from
    its socket, gateway/receive.py), its bytes never passing through Python. It is an ordinary
    async iterable of bytes too: a backend that cannot use the fd reads it as any other body."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def write_into(self, fd: int, offset: int) -> int:
        """Write the whole body into `fd` at `offset`; the number of bytes written."""
        ...


async def received_pieces(reader: ChunkedReader) -> AsyncIterator[bytes]:
    """A body's pieces as they were received: nothing joined, so nothing copied or held twice.

    (aiohttp's `read(n)` and `iter_any` join everything buffered into one new bytes object; its
    `iter_chunks` never ends on an empty body once aiohttp's shared empty reader was read.)
    """
    while True:
        chunk, _ = await reader.readchunk()
        if chunk:
            yield chunk
        elif reader.at_eof():
            return


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


async def batches(
    body: AsyncIterable[bytes], size: int, max_pieces: int = 512
) -> AsyncIterator[list[bytes]]:
    """Group a stream's chunks, as received, into lists holding at least `size` bytes.

    Nothing is copied: a list goes to one vectored write (`os.writev`), so no block buffer is
    allocated and filled per transfer. `max_pieces` keeps a list under the kernel's IOV_MAX when
    a client sends tiny chunks. The last list may hold less; an empty stream gives no list.
    """
    pieces: list[bytes] = []
    held = 0
    async for chunk in body:
        pieces.append(chunk)
        held += len(chunk)
        if held >= size or len(pieces) >= max_pieces:
            yield pieces
            pieces, held = [], 0
    if pieces:
        yield pieces


async def exact_blocks(
    body: AsyncIterable[bytes], size_of: Callable[[int], int]
) -> AsyncIterator[bytes]:
    """Cut a stream into blocks of exactly `size_of(index)` bytes; only the last may be shorter.

    Each block is one allocation (a join of the pieces received); an empty stream gives one
    empty block, so there is always a first block.
    """
    pieces: list[bytes | memoryview] = []
    held = 0
    index = 0
    async for chunk in body:
        view = memoryview(chunk)
        while held + len(view) >= (size := size_of(index)):
            cut = size - held
            pieces.append(view[:cut])
            yield b"".join(pieces)
            pieces, held, view, index = [], 0, view[cut:], index + 1
        if view:
            pieces.append(view)
            held += len(view)
    if pieces or index == 0:
        yield b"".join(pieces)


async def flag_last(blocks: AsyncIterable[bytes]) -> AsyncIterator[tuple[bytes, bool]]:
    """Pair each block with whether it is the last one (reads one block ahead)."""
    iterator = aiter(blocks)
    previous = await anext(iterator, None)
    if previous is None:
        return
    async for block in iterator:
        yield previous, False
        previous = block
    yield previous, True
