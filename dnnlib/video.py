"""Writing videos frame by frame: MP4 (H.264) through imageio-ffmpeg, or an animated GIF when it is missing.

Frames stream to a temporary file beside the target, renamed into place only when the video is complete, so an
interrupted run never leaves a truncated video under the final name.
"""

import os
import uuid

import numpy as np
import PIL.Image


def _has_ffmpeg():
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


class VideoWriter:
    """Context manager: `with VideoWriter(path, fps) as video: video.append(frame)` for uint8 [H, W, 3] frames.

    A `.mp4` path falls back to `.gif` (with a note) when imageio-ffmpeg is not installed; `path` is then updated,
    so callers can report where the video went."""

    def __init__(self, path, fps=30, bitrate="16M"):
        root, ext = os.path.splitext(path)
        self.use_ffmpeg = ext.lower() != ".gif" and _has_ffmpeg()
        if ext.lower() != ".gif" and not self.use_ffmpeg:
            print("note: imageio-ffmpeg is not installed (pip install imageio imageio-ffmpeg); writing a GIF instead "
                  "of an MP4")
            ext = ".gif"
        self.path = root + ext
        self.fps, self.bitrate = fps, bitrate
        directory, name = os.path.split(os.path.abspath(self.path))
        self._temp_path = os.path.join(directory, f".{uuid.uuid4().hex}.{name}")  # keeps the extension for ffmpeg
        self._writer = None
        self._gif_frames = []
        self.num_frames = 0

    def __enter__(self):
        return self

    def append(self, frame):
        frame = np.asarray(frame)
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] in (1, 3), (frame.dtype, frame.shape)
        if frame.shape[2] == 1:
            frame = np.repeat(frame, 3, axis=2)
        if self.use_ffmpeg:
            if self._writer is None:
                import imageio
                # macro_block_size=1 keeps odd sizes as they are instead of resizing them with a warning.
                self._writer = imageio.get_writer(self._temp_path, format="FFMPEG", mode="I", fps=self.fps,
                                                  codec="libx264", bitrate=self.bitrate, macro_block_size=1)
            self._writer.append_data(frame)
        else:
            self._gif_frames.append(PIL.Image.fromarray(frame, "RGB"))
        self.num_frames += 1

    def __exit__(self, exc_type, exc, tb):
        try:
            if self._writer is not None:
                self._writer.close()
            elif self._gif_frames and exc_type is None:
                self._gif_frames[0].save(self._temp_path, format="GIF", save_all=True,
                                         append_images=self._gif_frames[1:], duration=round(1000 / self.fps), loop=0)
            if exc_type is None and self.num_frames:
                os.replace(self._temp_path, self.path)
        finally:
            if os.path.exists(self._temp_path):
                os.remove(self._temp_path)
        return False
