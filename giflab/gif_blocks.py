"""A tolerant walk over a GIF's blocks, for the code that reads what the pixels cannot show
(colour tables, comments, application extensions, delays).

``walk`` reads a damaged file as far as it can and stops at the trailer or at anything it
cannot read; ``giflab.meta.check_structure`` is the strict walk that says what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

EXTENSION = 0x21
IMAGE = 0x2C
COMMENT = 0xFE
APPLICATION = 0xFF
GRAPHIC_CONTROL = 0xF9
# The application extensions that hold the loop count.
LOOP_NAMES = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


@dataclass(frozen=True)
class Block:
    """One extension or image, ``data[start:end]``.

    An extension has its ``label`` and its data ``sub_blocks`` (without their length bytes);
    an image has ``label`` None, the descriptor's packed ``flags`` and its local ``table``
    (``b""`` without one).
    """

    start: int
    end: int
    label: int | None = None
    sub_blocks: tuple[bytes, ...] = ()
    flags: int = 0
    table: bytes = b""
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # an image's left, top, width, height

    @property
    def is_image(self) -> bool:
        return self.label is None

    @property
    def app_name(self) -> bytes:
        """An application extension's identifier and authentication code (11 bytes)."""
        return self.sub_blocks[0][:11] if self.label == APPLICATION and self.sub_blocks else b""

    @property
    def payload(self) -> bytes:
        """The extension's data: its sub-blocks joined (an application extension's without
        the identifier block)."""
        return b"".join(self.sub_blocks[1:] if self.label == APPLICATION else self.sub_blocks)


def table_bytes(packed: int) -> int:
    """Bytes of the colour table a descriptor's packed byte announces (0 without one)."""
    return 3 << ((packed & 7) + 1) if packed & 0x80 else 0


def global_table(data: bytes) -> bytes:
    """The global colour table (``b""`` without one, or for a file too short to hold it)."""
    if len(data) < 13:
        return b""
    return data[13 : 13 + table_bytes(data[10])]


def walk(data: bytes) -> Iterator[Block]:
    """The blocks after the screen descriptor and global table, in file order, up to the
    trailer or the first bytes that are not a block."""
    n = len(data)
    if n < 13:
        return

    def sub_blocks(pos: int) -> tuple[tuple[bytes, ...], int]:
        blocks = []
        while pos < n and data[pos]:
            blocks.append(data[pos + 1 : pos + 1 + data[pos]])
            pos += data[pos] + 1
        return tuple(blocks), min(pos + 1, n)

    pos = 13 + table_bytes(data[10])
    while pos < n:
        start, kind = pos, data[pos]
        if kind == EXTENSION and pos + 1 < n:
            blocks, pos = sub_blocks(pos + 2)
            yield Block(start, pos, data[start + 1], blocks)
        elif kind == IMAGE and pos + 10 <= n:
            flags = data[pos + 9]
            box = tuple(int.from_bytes(data[pos + i : pos + i + 2], "little") for i in (1, 3, 5, 7))
            pos += 10
            table = data[pos : pos + table_bytes(flags)]
            _, pos = sub_blocks(pos + table_bytes(flags) + 1)
            yield Block(start, pos, None, flags=flags, table=table, box=box)
        else:  # the trailer, or bytes that are not a block
            return


def has_loop(data: bytes) -> bool:
    """Whether the GIF holds a loop-count extension (NETSCAPE2.0 or ANIMEXTS1.0)."""
    return any(block.app_name in LOOP_NAMES for block in walk(data))
