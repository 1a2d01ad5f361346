"""A photo a resident uploads, checked by its content and made safe to pass on.

The file's name and declared type mean nothing (an ``.exe`` called ``.jpg``): Pillow must read
it as an image of a kind phones make. It is then drawn again as a fresh JPEG: the camera's
EXIF data (the GPS position, the camera's serial number) and anything hidden after the image
do not survive, and the photo is turned upright first, as the phone showed it.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "MPO"}
MAX_SIDE = 2560            # Telegram shows photos at most this large
MAX_PIXELS = 40_000_000    # a decompression bomb is refused before it is drawn
QUALITY = 85


class NotAPhoto(Exception):
    """The upload is not an image of a kind this accepts."""


def reencode(data: bytes) -> bytes:
    """``data`` as a fresh JPEG without metadata, at most ``MAX_SIDE`` pixels a side."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in FORMATS:
                raise NotAPhoto(probe.format or "unknown")
            width, height = probe.size
            if width * height > MAX_PIXELS or width < 1 or height < 1:
                raise NotAPhoto("size")
            probe.verify()  # a truncated or corrupt file stops here
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)  # the first frame of an animation
            upright = ImageOps.exif_transpose(image) or image
            upright.thumbnail((MAX_SIDE, MAX_SIDE))
            if upright.mode not in ("RGB", "L"):
                background = Image.new("RGB", upright.size, "white")
                rgba = upright.convert("RGBA")
                background.paste(rgba, mask=rgba.getchannel("A"))
                upright = background
            out = io.BytesIO()
            upright.save(out, "JPEG", quality=QUALITY, optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise NotAPhoto(type(exc).__name__) from exc
