"""A generated set of hostile inputs: broken, absurd and booby-trapped "GIFs" and file names."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

from PIL import Image


def gif_bytes(frames: int = 3, size: tuple[int, int] = (16, 12), duration: int = 80) -> bytes:
    """A small valid animated GIF."""
    ims = [Image.new("P", size, i * 40) for i in range(frames)]
    for im in ims:
        im.putpalette([v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)])
    buf = io.BytesIO()
    ims[0].save(buf, "GIF", save_all=True, append_images=ims[1:], duration=duration, loop=0)
    return buf.getvalue()


def block_boundaries(data: bytes) -> list[int]:
    """Offsets where a GIF block starts: header, screen, palette, extensions, images, trailer."""
    offsets = [0, 6, 13]
    pos = 13
    flags = data[10]
    if flags & 0x80:
        pos += 3 * (2 ** ((flags & 7) + 1))
        offsets.append(pos)
    while pos < len(data):
        kind = data[pos]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            pos += 2
        elif kind == 0x2C:  # image descriptor (+ local palette), LZW code size, sub-blocks
            local = data[pos + 9]
            pos += 10
            if local & 0x80:
                pos += 3 * (2 ** ((local & 7) + 1))
            pos += 1
        else:
            break
        while pos < len(data) and data[pos] != 0:
            pos += data[pos] + 1
        pos += 1
        offsets.append(pos)
    return sorted(set(o for o in offsets if 0 < o < len(data)))


def with_screen(data: bytes, width: int, height: int) -> bytes:
    """``data`` with the logical screen and every image descriptor claiming ``width x height``."""
    out = bytearray(data)
    out[6:10] = struct.pack("<HH", width, height)
    pos = 13
    while True:
        pos = out.find(b"\x2c\x00\x00\x00\x00", pos)
        if pos < 0:
            break
        out[pos + 5 : pos + 9] = struct.pack("<HH", width, height)
        pos += 9
    return bytes(out)


def make_hostile_set(folder: Path) -> dict[str, str]:
    """Write the hostile set into ``folder``; returns file name -> what it is.

    Every entry must be quarantined or refused with a reason; none may stall or crash ingest.
    """
    folder.mkdir(parents=True, exist_ok=True)
    good = gif_bytes()
    made: dict[str, str] = {}

    def put(name: str, data: bytes, what: str) -> None:
        (folder / name).write_bytes(data)
        made[name] = what

    for i, cut in enumerate(block_boundaries(good)):
        put(f"truncated-block-{i:02d}.gif", good[:cut], f"truncated at block boundary {cut}")
    put("truncated-mid-lzw.gif", good[: len(good) - 9], "truncated inside image data")
    # Flips of structural bytes: the signature, the screen flags, every block introducer.
    # (A flip inside a palette or pixel data is another valid GIF; see pixel_flips.)
    for i, offset in enumerate([3, 10, *(o for o in block_boundaries(good) if o > 13)]):
        flipped = bytearray(good)
        flipped[offset] ^= 0xFF
        put(f"flipped-{i:02d}.gif", bytes(flipped), f"byte {offset} flipped")
    put("empty.gif", b"", "zero bytes")
    put("header-only.gif", b"GIF89a", "a bare signature")
    put("not-a-gif.gif", b"%PDF-1.4 definitely not an image\n" * 10, "another format")
    put("huge-screen.gif", with_screen(good, 65535, 65535), "a 65535 x 65535 header")
    put(
        "absurd-frames.gif",
        with_screen(gif_bytes(frames=3, size=(4, 4)), 30000, 30000),
        "frames declared 30000 x 30000",
    )
    return made


def pixel_flips(folder: Path, n: int = 12, seed: int = 7) -> list[Path]:
    """Copies of a GIF with one random byte flipped anywhere (often still a valid GIF)."""
    import random

    folder.mkdir(parents=True, exist_ok=True)
    good = gif_bytes(frames=4, size=(24, 20))
    rng = random.Random(seed)
    out = []
    for i in range(n):
        data = bytearray(good)
        data[rng.randrange(13, len(data))] ^= 1 << rng.randrange(8)
        out.append(folder / f"pixel-flip-{i:02d}.gif")
        out[-1].write_bytes(bytes(data))
    return out


def make_tricky_good_set(folder: Path) -> dict[str, str]:
    """Valid but awkward GIFs that must be ingested normally."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    (folder / "zero-delays.gif").write_bytes(gif_bytes(frames=4, duration=0))
    made["zero-delays.gif"] = "every delay 0 (browsers show 100 ms)"
    # Alternating colours: Pillow merges consecutive identical frames when saving.
    many = [Image.new("L", (1, 1), 255 * (i % 2)) for i in range(10_000)]
    buf = io.BytesIO()
    many[0].save(buf, "GIF", save_all=True, append_images=many[1:], duration=20, loop=0)
    (folder / "ten-thousand-1x1.gif").write_bytes(buf.getvalue())
    made["ten-thousand-1x1.gif"] = "10 000 frames of 1 x 1"
    (folder / "-leading dash 'quote' ünï.gif").write_bytes(gif_bytes(frames=2))
    made["-leading dash 'quote' ünï.gif"] = "a hostile but valid name"
    return made


def make_filesystem_traps(folder: Path) -> dict[str, str]:
    """Entries that are not regular readable files (POSIX only): refused, never moved."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    (folder / "dir.gif").mkdir()
    (folder / "dir.gif" / "inside.txt").write_text("a folder named like a GIF")
    made["dir.gif"] = "a directory named x.gif"
    loop = folder / "loop.gif"
    os.symlink(loop, loop)
    made["loop.gif"] = "a symlink to itself"
    os.symlink(folder / "nowhere.gif", folder / "dangling.gif")
    made["dangling.gif"] = "a dangling symlink"
    (folder / "sub").mkdir()
    os.symlink(folder, folder / "sub" / "up")  # a folder loop
    made["sub/up"] = "a symlinked folder pointing up (loop)"
    os.mkfifo(folder / "fifo.gif")
    made["fifo.gif"] = "a named pipe (a reader would block for ever)"
    locked = folder / "unreadable.gif"
    locked.write_bytes(gif_bytes())
    locked.chmod(0)
    made["unreadable.gif"] = "no read permission"
    return made
