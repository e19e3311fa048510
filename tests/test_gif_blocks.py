"""The tolerant block walk that the probes and the engines' colour-table reader share."""

from __future__ import annotations

from giflab.gif_blocks import APPLICATION, COMMENT, global_table, walk

SCREEN = b"GIF89a\x04\x00\x03\x00\x81\x00\x00" + bytes(range(12))  # a 4-entry global table
IMAGE = b"\x2c\x01\x00\x02\x00\x03\x00\x01\x00\x80" + bytes(6) + b"\x02\x02\x4c\x01\x00"
COMMENT_BLOCK = b"\x21\xfe\x02hi\x03 yo\x00"
LOOP = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"


def test_walk_reads_extensions_and_images_in_order():
    data = SCREEN + LOOP + COMMENT_BLOCK + IMAGE + b"\x3b"
    blocks = list(walk(data))
    assert global_table(data) == bytes(range(12))
    assert [b.label for b in blocks] == [APPLICATION, COMMENT, None]
    loop, comment, image = blocks
    assert loop.app_name == b"NETSCAPE2.0" and loop.payload == b"\x01\x00\x00"
    assert comment.payload == b"hi yo" and comment.end - comment.start == len(COMMENT_BLOCK)
    assert image.is_image and image.box == (1, 2, 3, 1) and image.table == bytes(6)
    assert image.end == len(data) - 1  # the trailer is not a block


def test_walk_stops_at_damage_without_raising():
    data = SCREEN + COMMENT_BLOCK + IMAGE
    assert [b.label for b in walk(data[:-3])] == [COMMENT, None]  # cut inside the image data
    assert [b.label for b in walk(SCREEN + COMMENT_BLOCK + b"\x99junk" + IMAGE)] == [COMMENT]
    assert list(walk(b"GIF89a")) == []
