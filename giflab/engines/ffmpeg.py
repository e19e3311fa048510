"""ffmpeg: one filter graph — posterise (lossy), ``palettegen max_colors=C``, ``paletteuse``.

Command (one call)::

    ffmpeg -nostdin -v error -y -f concat -safe 0 -i frames.txt -filter_complex
        "[0:v][lutrgb=...,]split[a][b];[a]palettegen=max_colors=C:stats_mode=full[p];
         [b][p]paletteuse=dither=MODE:diff_mode=rectangle" -fps_mode vfr -loop L
        -final_delay D_LAST -f gif file:OUT

Frames: the kept frames, composited as lossless RGBA PNGs, are listed in a concat file with each
one's ``duration`` from ``kept_delays``, so frame selection and per-frame timing are exact (GIF
stores centiseconds). Lossy mapping: ffmpeg has no lossy-LZW knob, so lossy posterises the input
before the palette is built: ``lutrgb`` keeps ``8 - lossy // 20`` bits per channel (0 -> exact,
120 -> 2 bits), on nested grids so each level coarsens the one before; flatter colours give
longer LZW runs. The palette is built once over all frames (``stats_mode=full``).
"""

from __future__ import annotations

from pathlib import Path

from giflab.engines.base import Engine, SourceGif, Variant, loop_count

# A PNG is read as a 25 fps stream, which snaps timestamps to 40 ms; 100 fps gives GIF's 10 ms.
FRAME_RATE_OPTION = "option framerate 100"


def ffmpeg_dropped_bits(lossy: int) -> int:
    """Low bits of each channel ``lutrgb`` drops at GifLab lossy level ``lossy`` (0..6)."""
    return min(6, max(0, int(lossy)) // 20)


def _concat_quote(path: Path) -> str:
    # The concat demuxer reads 'quoted' names; a quote is written as '\'' as in a shell.
    return "'" + str(path).replace("'", "'\\''") + "'"


class Ffmpeg(Engine):
    name = "ffmpeg"
    binary_name = "ffmpeg"
    config_field = "ffmpeg_bin"
    version_args = ["-version"]
    install_hint = "apt install ffmpeg / brew install ffmpeg"
    install = {
        "linux": "sudo apt-get install ffmpeg",
        "darwin": "brew install ffmpeg",
        "win32": "choco install ffmpeg (or run GifLab in WSL)",
    }

    def command(self, binary: str, src: SourceGif, variant: Variant, out: Path, scratch: Path):
        kept, delays = src.plan(variant.frame_keep)
        lines = ["ffconcat version 1.0"]
        for index, delay in zip(kept, delays, strict=True):
            lines += [f"file {_concat_quote(src.png_frames[index])}", FRAME_RATE_OPTION]
            lines.append(f"duration {delay / 1000:g}")
        # The demuxer drops the last duration unless the last file is listed once more.
        lines += [f"file {_concat_quote(src.png_frames[kept[-1]])}", FRAME_RATE_OPTION]
        listing = scratch / "frames.txt"
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")

        dropped_bits = ffmpeg_dropped_bits(variant.lossy)
        pre = ""
        if dropped_bits:
            q = 1 << dropped_bits
            lut = f"trunc(val/{q})*{q}"
            pre = f"lutrgb=r='{lut}':g='{lut}':b='{lut}',"
        dither = self.config.ffmpeg_dither
        graph = (
            f"[0:v]{pre}split[a][b];"
            f"[a]palettegen=max_colors={variant.colors}:stats_mode=full[p];"
            f"[b][p]paletteuse=dither={dither}:diff_mode=rectangle"
        )
        loop = loop_count(src)
        argv = [binary, "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0"]
        argv += ["-i", str(listing), "-filter_complex", graph, "-frames:v", str(len(kept))]
        argv += ["-fps_mode", "vfr", "-loop", str(-1 if loop is None else loop)]
        # The GIF muxer repeats the previous delay for the last frame unless told otherwise.
        argv += ["-final_delay", str(delays[-1] // 10), "-f", "gif", f"file:{out}"]
        applied = {
            "lossy": variant.lossy,
            "posterize_bits": 8 - dropped_bits,
            "colors": variant.colors,
            "dither": dither,
            "frame_keep": variant.frame_keep,
        }
        return argv, applied
