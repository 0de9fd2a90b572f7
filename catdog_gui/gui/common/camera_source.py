"""Where camera frames come from: a camera (QCamera in a QMediaCaptureSession) or a video file
(QMediaPlayer), both into one QVideoSink; the panels only ever see :attr:`FrameSource.frame` (a
QImage, true orientation, never mirrored).

* :func:`multimedia_problem` says, in words, why Qt Multimedia cannot be used (its system libraries
  are missing on Linux: libpulse0 / pulseaudio-libs), or None. QtMultimedia is imported lazily, here
  only: when it is missing, the camera panels say so and the rest of the app works.
* :func:`video_inputs` lists the cameras (QMediaDevices); the list is followed live
  (``videoInputsChanged``: hot-plug), and the camera chosen is remembered in the settings
  (``camera/device``).
* States a person can act on arrive as ``problem(str)``: no camera, camera busy or permission
  denied, the camera unplugged (``lost`` too), a video file that cannot be played.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QImage

__all__ = ["multimedia_problem", "video_inputs", "FrameSource", "CAMERA_KEY", "MIRROR_KEY", "qimage_to_pil", "jpeg_bytes",
           "camera_error_message"]

CAMERA_KEY = "camera/device"
MIRROR_KEY = "camera/mirror"
_PROBLEM: Optional[str] = None
_CHECKED = False


def multimedia_problem() -> Optional[str]:
    """None if Qt Multimedia imports, else a sentence naming the package to install."""
    global _PROBLEM, _CHECKED
    if not _CHECKED:
        _CHECKED = True
        try:
            from PySide6 import QtMultimedia  # noqa: F401
        except ImportError as e:
            _PROBLEM = _why(str(e))
    return _PROBLEM


def _why(error: str) -> str:
    if sys.platform.startswith("linux"):
        return ("The camera needs Qt Multimedia, whose system libraries are missing "
                f"({error}). Install them: sudo apt-get install libpulse0 (Debian/Ubuntu) or "
                "sudo dnf install pulseaudio-libs (Fedora), then restart catdog-gui. "
                "Everything else works without them.")
    return f"The camera needs Qt Multimedia, which could not be loaded ({error}). Everything else works without it."


def video_inputs() -> list:
    """The cameras Qt sees (QCameraDevice list); tests monkeypatch this."""
    from PySide6.QtMultimedia import QMediaDevices

    return list(QMediaDevices.videoInputs())


def device_id(dev) -> str:
    return bytes(dev.id()).decode("utf-8", "replace")


def camera_error_message(error_string: str, name: str = "the camera") -> str:
    """Which camera problem it is and what to do (QCamera.errorOccurred)."""
    low = (error_string or "").lower()
    if any(w in low for w in ("permission", "denied", "not authorized", "access")):
        return (f"catdog-gui is not allowed to use {name} ({error_string}). Allow camera access: on macOS "
                "System Settings > Privacy & Security > Camera; on Windows Settings > Privacy > Camera; on "
                "Linux your user must be in the 'video' group.")
    if any(w in low for w in ("busy", "in use", "resource", "device or resource")):
        return (f"{name[0].upper() + name[1:]} is busy ({error_string}): another app is using it. Close that app "
                "(a video call, another camera window) and choose the camera again.")
    return (f"{name[0].upper() + name[1:]} could not be started ({error_string or 'unknown error'}). It may be "
            "in use by another app, or camera access may not be allowed: close other camera apps, check the "
            "privacy settings, and choose the camera again.")


class FrameSource(QObject):
    """A camera or a video file into one QVideoSink; see the module docstring."""

    frame = Signal(QImage)  # every frame, true (unmirrored) orientation
    problem = Signal(str)  # a state the user can act on ("" when it is cleared)
    devices_changed = Signal()
    lost = Signal()  # the camera in use went away (unplugged)
    started = Signal(str)  # what is showing ("camera name" or "video file name")

    def __init__(self, settings=None, parent: Optional[QObject] = None):
        super().__init__(parent)
        from PySide6.QtMultimedia import QMediaCaptureSession, QMediaDevices, QVideoSink

        self.settings = settings
        self.sink = QVideoSink(self)
        self.sink.videoFrameChanged.connect(self._on_frame)
        self._session = QMediaCaptureSession(self)
        self._session.setVideoSink(self.sink)
        self._devices = QMediaDevices(self)
        self._devices.videoInputsChanged.connect(self.refresh_devices)
        self._camera = None
        self._player = None
        self.camera_id: Optional[str] = None  # the camera in use
        self.video_path: Optional[str] = None
        self.frames = 0
        self.devices: list = []
        self.refresh_devices(initial=True)

    # ---- devices ---------------------------------------------------------------------------
    def refresh_devices(self, initial: bool = False) -> None:
        self.devices = video_inputs()
        ids = [device_id(d) for d in self.devices]
        if self.camera_id is not None and self.camera_id not in ids:
            self._stop_camera()
            self.problem.emit("The camera was unplugged. Plug it back in and choose it again, or use a video file.")
            self.lost.emit()
        elif not self.devices and self.video_path is None:
            self.problem.emit("No camera found. Plug one in (it appears here by itself), or use a video file.")
        elif not initial:
            self.problem.emit("")
        self.devices_changed.emit()

    def camera_names(self) -> list[tuple[str, str]]:
        """(id, description) of every camera."""
        return [(device_id(d), d.description()) for d in self.devices]

    def remembered_camera(self) -> Optional[str]:
        """The camera chosen last time if it is plugged in, else the system default, else None."""
        ids = [device_id(d) for d in self.devices]
        if self.settings is not None:
            last = self.settings.get_str(CAMERA_KEY, "")
            if last in ids:
                return last
        if not ids:
            return None
        try:
            from PySide6.QtMultimedia import QMediaDevices

            default = device_id(QMediaDevices.defaultVideoInput())
            if default in ids:
                return default
        except Exception:  # noqa: BLE001
            pass
        return ids[0]

    def is_front(self) -> bool:
        """Whether the camera in use faces the user (so its preview is mirrored by default)."""
        from PySide6.QtMultimedia import QCameraDevice

        for d in self.devices:
            if device_id(d) == self.camera_id:
                return d.position() in (QCameraDevice.Position.FrontFace, QCameraDevice.Position.UnspecifiedPosition)
        return False

    # ---- sources ---------------------------------------------------------------------------
    def use_camera(self, cam_id: str) -> bool:
        from PySide6.QtMultimedia import QCamera

        dev = next((d for d in self.devices if device_id(d) == cam_id), None)
        if dev is None:
            self.problem.emit("That camera is not plugged in any more. Choose another, or use a video file.")
            return False
        self.stop()
        cam = self._camera = QCamera(dev, self)
        name = dev.description() or "the camera"
        cam.errorOccurred.connect(lambda _e, s, n=name: self._camera_failed(s, n))
        self._session.setCamera(cam)
        self.camera_id = cam_id
        if self.settings is not None:
            self.settings.set(CAMERA_KEY, cam_id)
        cam.start()
        self.problem.emit("")
        self.started.emit(name)
        return True

    def _camera_failed(self, error_string: str, name: str) -> None:
        self._stop_camera()
        self.problem.emit(camera_error_message(error_string, name))

    def use_file(self, path: str) -> None:
        """Play a video file (looping) into the sink."""
        from PySide6.QtMultimedia import QMediaPlayer

        self.stop()
        self.video_path = str(path)
        if not Path(path).is_file():
            self.problem.emit(f"The video file {path} does not exist (was it moved?). Choose another.")
            return
        p = self._player = QMediaPlayer(self)
        p.setVideoSink(self.sink)
        p.setLoops(QMediaPlayer.Loops.Infinite)
        p.errorOccurred.connect(lambda _e, s, path=str(path): self.problem.emit(
            f"The video file {Path(path).name} cannot be played ({s or 'unknown format'}). "
            "Try an .mp4 or .avi file."))
        p.setSource(QUrl.fromLocalFile(str(path)))
        p.play()
        self.problem.emit("")
        self.started.emit(Path(path).name)

    def _stop_camera(self) -> None:
        if self._camera is not None:
            self._camera.stop()
            self._session.setCamera(None)
            self._camera.deleteLater()
            self._camera = None
        self.camera_id = None

    def stop(self) -> None:
        self._stop_camera()
        if self._player is not None:
            self._player.stop()
            self._player.deleteLater()
            self._player = None
        self.video_path = None

    def suspend(self) -> None:
        """The panel is hidden: free the camera for other apps (pause a video); :meth:`resume` undoes it."""
        self._resume = self.camera_id
        self._stop_camera()
        if self._player is not None:
            self._player.pause()

    def resume(self) -> None:
        cam, self._resume = getattr(self, "_resume", None), None
        if cam and any(device_id(d) == cam for d in self.devices):
            self.use_camera(cam)
        elif self._player is not None:
            self._player.play()

    def is_playing(self) -> bool:
        from PySide6.QtMultimedia import QMediaPlayer

        return self._player is not None and self._player.playbackState() == QMediaPlayer.PlaybackState.PlayingState

    def is_active(self) -> bool:
        return self._camera is not None or self._player is not None

    # ---- frames ----------------------------------------------------------------------------
    def _on_frame(self, vf) -> None:
        if not vf.isValid():
            return
        img = vf.toImage()
        if img.isNull():
            return
        self.frames += 1
        self.frame.emit(img)

    def push_image(self, image: QImage) -> None:
        """Show ``image`` as if the camera had sent it (through the sink, as a real frame)."""
        from PySide6.QtMultimedia import QVideoFrame

        self.sink.setVideoFrame(QVideoFrame(image))


def fill_camera_combo(combo, source: "FrameSource") -> None:
    """List ``source``'s cameras in ``combo`` (the one in use, else the remembered one, chosen);
    with none, the combo is disabled and says what to do."""
    combo.clear()
    for cam_id, name in source.camera_names():
        combo.addItem(name, cam_id)
    i = combo.findData(source.camera_id or source.remembered_camera())
    if i >= 0:
        combo.setCurrentIndex(i)
    combo.setEnabled(combo.count() > 0)
    combo.setPlaceholderText("No camera found: plug one in, or use a video file")


def mirrored(img: QImage) -> QImage:
    """``img`` flipped left-right (a front camera's preview looks like a mirror)."""
    from PySide6.QtCore import Qt

    if hasattr(img, "flipped"):
        return img.flipped(Qt.Orientation.Horizontal)
    return img.mirrored(True, False)


def qimage_to_pil(img: QImage):
    """A QImage as an RGB PIL image (a copy: safe to hand to a worker thread)."""
    from PIL import Image

    rgb = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = rgb.width(), rgb.height(), rgb.bytesPerLine()
    data = bytes(rgb.constBits())[: bpl * h]
    return Image.frombytes("RGB", (w, h), data, "raw", "RGB", bpl)


def jpeg_bytes(img, quality: int = 92) -> bytes:
    """A PIL image as JPEG bytes."""
    import io

    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
