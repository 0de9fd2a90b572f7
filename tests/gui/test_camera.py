"""The camera, offscreen and with no camera: synthetic frames (QVideoFrame from QImage) pushed into the
panels' QVideoSink, and a short MJPEG video file written here, played by QMediaPlayer."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6.QtMultimedia", exc_type=ImportError)

from PySide6.QtGui import QColor, QImage  # noqa: E402

from catdog_gui.gui.common import camera_source  # noqa: E402
from catdog_gui.gui.models.current_model import CurrentModel, model_lock  # noqa: E402
from tests.gui.conftest import scan  # noqa: E402


def qimage(rgb=(200, 30, 30), size=(96, 72), split=None) -> QImage:
    img = QImage(size[0], size[1], QImage.Format.Format_RGB32)
    img.fill(QColor(*rgb))
    if split is not None:  # the right half another colour: shows mirroring
        for x in range(size[0] // 2, size[0]):
            for y in range(size[1]):
                img.setPixelColor(x, y, QColor(*split))
    return img


def noisy(seed: int, red: bool = True, size=(32, 32)) -> QImage:
    rng = np.random.default_rng(seed)
    w, h = size
    a = rng.integers(0, 90, (h, w, 3))
    a[..., 0 if red else 2] += 150
    a = np.ascontiguousarray(a.clip(0, 255).astype(np.uint8))
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def no_cameras(monkeypatch):
    monkeypatch.setattr(camera_source, "video_inputs", lambda: [])


def photos(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def n_photos(dataset) -> int:
    return len(dataset.train) + len(dataset.val)


# ---- collecting ------------------------------------------------------------------------------------

@pytest.fixture
def dtab(qtbot, no_cameras):
    from catdog_gui.gui.dataset.tab import DatasetTab
    from catdog_gui.gui.models.augment_model import AugmentModel
    from catdog_gui.gui.models.dataset_model import DatasetModel

    data, augment = DatasetModel(), AugmentModel()
    t = DatasetTab(data, augment)
    qtbot.addWidget(t)
    t.resize(1000, 700)
    t.show()
    yield t
    t.shutdown()
    data.shutdown()


def record(qtbot, panel, cls: str, n: int, clock: FakeClock, seed: int = 0):
    """Hold to record ``n`` photos of ``cls`` from pushed frames (one per 1/rate s), all different."""
    panel.class_combo.setEditText(cls)
    panel.source.push_image(noisy(seed, size=(96, 72)))
    qtbot.waitUntil(lambda: panel._latest is not None, timeout=5000)
    panel.record_button.pressed.emit()
    assert panel.recording and panel.burst_count == 1
    for i in range(n - 1):
        clock.t += 1.0 / panel.rate_spin.value()
        before = panel.burst_count
        panel.source.push_image(noisy(seed + 1 + i, size=(96, 72)))
        qtbot.waitUntil(lambda before=before: panel.burst_count == before + 1, timeout=5000)
    assert "Recording" in panel.count_label.text() and str(n) in panel.count_label.text()
    seen = panel.source.frames
    panel.source.push_image(qimage())  # no time passed: under the rate, not saved
    qtbot.waitUntil(lambda: panel.source.frames == seen + 1, timeout=5000)
    assert panel.burst_count == n


def empty_dataset_panel(qtbot, dtab, tmp_path):
    """A new empty dataset folder open in the Dataset tab, and its Camera panel shown."""
    data = tmp_path / "d"
    data.mkdir()
    scan(qtbot, dtab, data)
    dtab.show_camera(True)
    return data, dtab.camera_panel


def test_hold_to_record_writes_n_jpegs_and_the_dataset_count_rises(qtbot, dtab, tmp_path):
    data = tmp_path / "data"
    for i, cls in enumerate(("cat", "dog")):
        (data / cls).mkdir(parents=True)
        for j in range(4):
            noisy(500 + 10 * i + j).save(str(data / cls / f"{cls}{j}.jpg"))
    before = n_photos(scan(qtbot, dtab, data))
    dtab.show_camera(True)
    panel = dtab.camera_panel
    assert panel.isVisible() and panel.class_combo.findText("cat") >= 0  # the dataset's classes offered
    clock = panel.clock = FakeClock()
    record(qtbot, panel, "cat", 5, clock)
    with qtbot.waitSignal(dtab.scan_finished, timeout=20000) as sig:
        panel.record_button.released.emit()
    assert n_photos(sig.args[0]) == before + 5
    new = [p for p in photos(data / "cat") if p.name.startswith("cat-")]
    assert len(new) == 5 and len({p.name for p in new}) == 5
    for p in new:
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.size == (96, 72)
    assert not list((data / "cat").glob(".*.tmp"))  # written atomically: no temp files left
    assert photos(data / "dog") == [data / "dog" / f"dog{j}.jpg" for j in range(4)]
    assert "Saved 5 photos of cat" in panel.message.text()
    # one more photo, same second: a new name, nothing overwritten
    with qtbot.waitSignal(dtab.scan_finished, timeout=20000) as sig:
        panel.one_button.click()
    assert n_photos(sig.args[0]) == before + 6 and len(photos(data / "cat")) == 4 + 6


def test_an_empty_new_folder_two_classes_recorded_then_trainable(qtbot, dtab, tmp_path):
    data = tmp_path / "new"
    data.mkdir()
    assert scan(qtbot, dtab, data) is None and "no" in dtab.error.lower()  # empty: nothing to train on yet
    dtab.show_camera(True)
    panel = dtab.camera_panel
    clock = panel.clock = FakeClock()
    for seed, cls in ((0, "cat"), (100, "dog")):
        record(qtbot, panel, cls, 5, clock, seed)
        with qtbot.waitSignal(dtab.scan_finished, timeout=20000) as sig:
            panel.record_button.released.emit()
    ds = sig.args[0]
    assert ds is not None, (dtab.error, sorted(str(p) for p in data.rglob("*")))
    assert ds.classes == ["cat", "dog"] and n_photos(ds) == 10
    assert [panel.class_combo.itemText(i) for i in range(panel.class_combo.count())] == ["cat", "dog"]
    assert panel.current_class() == "dog"  # what was typed stays
    assert len(photos(data / "cat")) == 5 and len(photos(data / "dog")) == 5
    assert dtab.train_action.isEnabled()


def test_no_folder_or_no_class_says_what_to_do(qtbot, dtab):
    dtab.show_camera(True)
    panel = dtab.camera_panel
    panel.source.push_image(qimage())
    qtbot.waitUntil(lambda: panel._latest is not None, timeout=5000)
    panel.class_combo.setEditText("cat")
    panel.one_button.click()
    assert "Choose a dataset folder first" in panel.message.text() and not panel.saved


def test_unplugged_mid_recording_stops_and_keeps_what_was_saved(qtbot, dtab, tmp_path, monkeypatch):
    data, panel = empty_dataset_panel(qtbot, dtab, tmp_path)
    clock = panel.clock = FakeClock()
    record(qtbot, panel, "cat", 3, clock)
    panel.source.camera_id = "usb-cam"  # as if that camera were in use; now it is gone
    with qtbot.waitSignal(dtab.scan_finished, timeout=20000):
        panel.source.refresh_devices()
    assert not panel.recording
    assert "unplugged" in panel.message.text() and "3 photos" in panel.message.text()
    assert len(photos(data / "cat")) == 3
    clock.t += 10
    seen = panel.source.frames
    panel.source.push_image(qimage())
    qtbot.waitUntil(lambda: panel.source.frames == seen + 1, timeout=5000)
    assert len(photos(data / "cat")) == 3  # no longer recording


def test_a_camera_error_mid_recording_stops_the_burst_and_says_so(qtbot, dtab, tmp_path):
    """The camera reports an error while recording: recording stops (the panel no longer says it records),
    the photos taken are kept and counted, and frames that still arrive are not saved."""
    data, panel = empty_dataset_panel(qtbot, dtab, tmp_path)
    clock = panel.clock = FakeClock()
    record(qtbot, panel, "cat", 3, clock)
    with qtbot.waitSignal(panel.photos_added, timeout=20000):
        panel.source.problem.emit("The camera stopped working (device error).")
    assert not panel.recording and "Recording" not in panel.count_label.text()
    assert "Recording stopped: The camera stopped working" in panel.message.text() and "3 photos" in panel.message.text()
    clock.t += 10
    seen = panel.source.frames
    panel.source.push_image(qimage())
    qtbot.waitUntil(lambda: panel.source.frames == seen + 1, timeout=5000)
    assert len(photos(data / "cat")) == 3


def test_the_collect_panel_mirrors_its_preview_like_the_live_page(qtbot, dtab, tmp_path):
    """A Mirror box on the collect panel too: the preview flips, and the setting is the live page's."""
    from catdog_gui.gui.common.camera_source import MIRROR_KEY

    data, panel = empty_dataset_panel(qtbot, dtab, tmp_path)
    assert panel.mirror_check.accessibleName() == "Mirror the preview"
    panel.settings = panel.settings or _MemorySettings()
    img = noisy(3, size=(96, 72))
    panel.source.push_image(img)
    qtbot.waitUntil(lambda: panel._latest is not None, timeout=5000)
    plain = panel.preview.pixmap().toImage()
    panel.mirror_check.setChecked(True)
    flipped = panel.preview.pixmap().toImage()

    def arr(im):
        import numpy as np

        im = im.convertToFormat(im.Format.Format_RGB888)
        return np.frombuffer(im.constBits(), np.uint8).reshape(im.height(), im.bytesPerLine())[:, :im.width() * 3] \
            .reshape(im.height(), im.width(), 3).astype(int)

    a, b = arr(plain), arr(flipped)
    assert abs(b - a[:, ::-1]).mean() < abs(b - a).mean() / 3  # the preview is the picture left-right
    assert panel.settings.get_bool(MIRROR_KEY, False) is True


class _MemorySettings:
    def __init__(self):
        self.values = {}

    def get_bool(self, key, default=False):
        return self.values.get(key, default)

    def set(self, key, value):
        self.values[key] = value


def test_photos_are_encoded_off_the_gui_thread_in_the_order_taken(qtbot, dtab, tmp_path, monkeypatch):
    import threading

    data, panel = empty_dataset_panel(qtbot, dtab, tmp_path)
    threads = []
    real = camera_source.jpeg_bytes
    monkeypatch.setattr(camera_source, "jpeg_bytes", lambda im, *a: threads.append(threading.current_thread()) or real(im, *a))
    clock = panel.clock = FakeClock()
    record(qtbot, panel, "cat", 6, clock, seed=7)
    with qtbot.waitSignal(panel.photos_added, timeout=20000) as sig:
        panel.record_button.released.emit()
    assert sig.args == ["cat", 6] and len(threads) == 6
    assert threading.main_thread() not in threads  # the GUI thread only queued the frames
    # in the order taken: the k-th file holds the k-th frame (its numbered name says which)
    want = [qimage_to_rgb(noisy(7 + k, size=(96, 72))) for k in range(6)]
    for k, p in enumerate(sorted(photos(data / "cat"), key=lambda p: p.stem.rsplit("-", 1)[1])):
        with Image.open(p) as im:
            got = np.asarray(im.convert("RGB"), dtype=float)
        errs = [np.abs(got - w).mean() for w in want]
        assert int(np.argmin(errs)) == k, (p.name, errs)


def qimage_to_rgb(img: QImage) -> np.ndarray:
    return np.asarray(camera_source.qimage_to_pil(img), dtype=float)


def test_recording_keeps_its_rate_when_frames_come_a_little_early(qtbot, dtab, tmp_path):
    """At 10 photos/s from a 10 frames/s camera whose frames jitter by 5 ms, every frame is a
    photo; a camera twice as fast gives one photo every other frame."""
    data, panel = empty_dataset_panel(qtbot, dtab, tmp_path)
    panel.rate_spin.setValue(10)
    clock = panel.clock = FakeClock()
    panel.class_combo.setEditText("cat")
    panel.source.push_image(noisy(0, size=(96, 72)))
    qtbot.waitUntil(lambda: panel._latest is not None, timeout=5000)
    panel.record_button.pressed.emit()
    for i, dt in enumerate([0.095, 0.105] * 10 + [0.05] * 20):
        clock.t += dt
        seen = panel.source.frames
        panel.source.push_image(noisy(1 + i, size=(96, 72)))
        qtbot.waitUntil(lambda seen=seen: panel.source.frames == seen + 1, timeout=5000)
        if i == 19:
            assert panel.burst_count == 21  # the first photo and one per jittery frame
    assert panel.burst_count == 21 + 10  # 20 frames at 20 frames/s: every other one
    with qtbot.waitSignal(panel.writer.drained, timeout=20000):
        panel.record_button.released.emit()
    assert len(photos(data / "cat")) == 31


def test_a_failed_write_stops_recording_and_keeps_the_photos_written(qtbot, dtab, tmp_path):
    import shutil

    data, panel = empty_dataset_panel(qtbot, dtab, tmp_path)
    clock = panel.clock = FakeClock()
    record(qtbot, panel, "cat", 2, clock)
    qtbot.waitUntil(lambda: len(panel.saved) == 2, timeout=10000)
    kept = tmp_path / "kept"
    shutil.move(str(data), str(kept))  # the dataset folder goes (unplugged, moved) mid-burst
    clock.t += 1.0
    with qtbot.waitSignal(panel.writer.drained, timeout=20000):
        panel.source.push_image(noisy(50, size=(96, 72)))
    assert not panel.recording
    assert "Recording stopped" in panel.message.text() and "does not exist" in panel.message.text()
    assert "The 2 photos saved before that are kept" in panel.message.text()
    assert len(photos(kept / "cat")) == 2  # what was written before stays


def test_no_camera_state_offers_the_video_file(qtbot, dtab):
    dtab.show_camera(True)
    panel = dtab.camera_panel
    assert "No camera found" in panel.message.text() and "video file" in panel.message.text()
    assert panel.camera_combo.count() == 0 and not panel.camera_combo.isEnabled()
    assert panel.video_button.isEnabled()


def test_camera_errors_say_which_and_what_to_do():
    m = camera_source.camera_error_message("Permission denied", "USB Camera")
    assert "not allowed" in m and "Privacy" in m
    m = camera_source.camera_error_message("Device or resource busy", "USB Camera")
    assert "busy" in m and "Close that app" in m
    m = camera_source.camera_error_message("", "USB Camera")
    assert "could not be started" in m


def test_missing_multimedia_libraries_named_and_panels_disabled(qtbot, monkeypatch, tmp_path):
    from catdog_gui.gui.dataset.camera_collect import CameraCollectPanel
    from catdog_gui.gui.prediction.camera_live import CameraLivePage

    monkeypatch.setattr(camera_source, "_CHECKED", False)
    monkeypatch.setattr(camera_source, "_PROBLEM", None)
    monkeypatch.setattr(camera_source.sys, "platform", "linux")
    import builtins

    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "PySide6" and fromlist and "QtMultimedia" in fromlist:
            raise ImportError("libpulse.so.0: cannot open shared object file")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    problem = camera_source.multimedia_problem()
    monkeypatch.setattr(builtins, "__import__", real_import)
    assert "libpulse0" in problem and "pulseaudio-libs" in problem
    panel = CameraCollectPanel(lambda: str(tmp_path))
    qtbot.addWidget(panel)
    assert panel.source is None and "libpulse0" in panel.message.text() and not panel.record_button.isEnabled()
    page = CameraLivePage(CurrentModel())
    qtbot.addWidget(page)
    assert page.source is None and "libpulse0" in page.message.text()


# ---- live prediction ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LeNet-5 trained for 2 epochs on red-ish and blue-ish squares."""
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.training.trainer import Trainer

    root = tmp_path_factory.mktemp("cam")
    data = root / "data"
    for i, cls in enumerate(("blue", "red")):
        (data / cls).mkdir(parents=True)
        for j in range(12):
            img = noisy(100 * i + j, cls == "red")
            img.save(str(data / cls / f"{cls}{j}.png"))
    cfg = TrainConfig(model="lenet5", epochs=2, batch_size=8, patience=0, device="cpu", seed=0)
    fin = Trainer(cfg).fit(data, out_path=root / "m.pt")
    assert fin.ok, fin.reason
    return {"model": str(root / "m.pt"), "data": data, "root": root}


@pytest.fixture
def live(qtbot, trained, no_cameras):
    from catdog_gui.gui.prediction.camera_live import CameraLivePage
    from catdog_gui.gui.prediction.feedback import Feedback
    from PySide6.QtWidgets import QWidget

    holder = QWidget()
    qtbot.addWidget(holder)
    current = CurrentModel()
    current.open_now(trained["model"])
    fb = Feedback(current, holder)
    page = CameraLivePage(current, fb, parent=holder)
    holder.resize(640, 480)
    page.resize(640, 480)
    holder.show()
    yield page
    page.shutdown()
    current.shutdown()


def test_live_answer_matches_catdog_predict_on_the_saved_frame(qtbot, live, trained, tmp_path, capsys):
    from catdog_gui.cli import main as cli_main

    assert "No camera found" in live.message.text() and "video file" in live.message.text()
    with qtbot.waitSignal(live.prediction_shown, timeout=20000) as sig:
        live.source.push_image(noisy(7, red=True))
    pred = sig.args[0]
    assert live.answer_label.text().startswith(pred.label)
    assert live.view.pixmap() is not None and not live.view.pixmap().isNull()
    path = tmp_path / "frame.png"
    live.frame_image().save(path)
    assert cli_main(["predict", trained["model"], str(path), "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)["predictions"][0]
    assert out["label"] == pred.label
    for c, p in pred.probabilities:
        assert out["probabilities"][c] == pytest.approx(p, abs=1e-5)


def test_frames_during_a_prediction_are_dropped_and_counted_not_queued(qtbot, live):
    lock = model_lock(live.current.predictor)
    with lock:  # the model is busy: the first frame's prediction waits on the lock
        live.source.push_image(noisy(1, red=True))
        qtbot.waitUntil(lambda: live._task is not None and live.frames == 1, timeout=5000)
        for i in range(6):
            live.source.push_image(noisy(10 + i, red=False))
        qtbot.waitUntil(lambda: live.frames == 7, timeout=5000)
        assert live.dropped == 6 and live.predicted == 0
    qtbot.waitUntil(lambda: live.predicted == 1 and live._task is None, timeout=20000)
    # nothing was queued: no more predictions come, the next frame starts a fresh one
    qtbot.wait(50)
    assert live.predicted == 1 and live.dropped == 6
    assert "6 skipped" in live.rate_label.text()
    with qtbot.waitSignal(live.prediction_shown, timeout=20000):
        live.source.push_image(noisy(2, red=True))
    assert live.predicted == 2


def test_pause_freezes_and_mirror_shows_a_mirror_but_saves_the_true_image(qtbot, live, tmp_path):
    with qtbot.waitSignal(live.prediction_shown, timeout=20000):
        live.source.push_image(qimage((250, 0, 0), split=(0, 0, 250)))  # left red, right blue
    live.mirror_check.setChecked(True)
    shown = live.view.pixmap().toImage()
    mid = shown.height() // 2
    assert shown.pixelColor(5, mid).blue() > 200  # the preview is mirrored
    with model_lock(live.current.predictor):  # a newer frame is on screen, its answer not back yet
        live.source.push_image(qimage((0, 250, 0)))
        qtbot.waitUntil(lambda: live.frames == 2, timeout=5000)
        assert live.view.pixmap().toImage().pixelColor(5, mid).green() > 200
        live.pause_button.click()  # freezes the frame the answer on screen is for
    assert live.paused and live.pause_button.text() == "Resume"
    assert live.view.pixmap().toImage().pixelColor(5, mid).blue() > 200
    live.source.push_image(qimage((0, 250, 0)))
    qtbot.waitUntil(lambda: live.source.frames >= 3, timeout=5000)
    qtbot.waitUntil(lambda: live._task is None, timeout=20000)
    assert live.predicted == 1 and live.view.pixmap().toImage().pixelColor(5, mid).blue() > 200
    im = live.frame_image()
    assert im.getpixel((2, 2))[0] > 200 and im.getpixel((im.width - 3, 2))[2] > 200  # true, frozen frame
    # "Save this frame" as an example of a class: the unmirrored frame, in <dataset>/<class>/
    live.feedback.set_dataset_root(str(tmp_path))
    (tmp_path / "red").mkdir()
    dest = live.add_frame("red")
    assert dest is not None and dest.parent == tmp_path / "red"
    with Image.open(dest) as saved:
        px = saved.convert("RGB").getpixel((2, 2))
    assert px[0] > 200 and px[2] < 60
    live.pause_button.click()
    assert not live.paused


def make_mjpeg(path: Path, n: int = 12) -> Path:
    """A playable video: concatenated JPEG frames (raw MJPEG, FFmpeg reads it)."""
    with open(path, "wb") as f:
        for i in range(n):
            buf = io.BytesIO()
            Image.new("RGB", (64, 48), (200, 20 + 5 * i, 20)).save(buf, "JPEG")
            f.write(buf.getvalue())
    return path


def test_a_video_file_feeds_the_live_page(qtbot, live, tmp_path):
    live.source.use_file(str(make_mjpeg(tmp_path / "clip.mjpeg")))
    qtbot.waitUntil(lambda: live.predicted >= 2, timeout=20000)
    assert live.prediction is not None and live.message.text() == ""


def test_a_video_file_that_cannot_be_played_says_so(qtbot, live, tmp_path):
    bad = tmp_path / "clip.avi"
    bad.write_text("not a video")
    with qtbot.waitSignal(live.source.problem, timeout=20000,
                          check_params_cb=lambda m: "cannot be played" in m):
        live.source.use_file(str(bad))
    assert "clip.avi" in live.message.text()
    live.source.use_file(str(tmp_path / "gone.mp4"))
    assert "does not exist" in live.message.text()


def test_prediction_tab_has_a_camera_page(qtbot, trained, no_cameras):
    from catdog_gui.gui.prediction.tab import PredictionTab

    current = CurrentModel()
    tab = PredictionTab(current)
    qtbot.addWidget(tab)
    assert tab.camera is None  # made on first use
    tab.pages.setCurrentWidget(tab.camera_holder)
    assert tab.camera is not None and "No camera found" in tab.camera.message.text()
    tab.shutdown()
    current.shutdown()


def test_save_photo_never_overwrites_and_uses_an_existing_class_folder(tmp_path):
    from catdog_gui.gui.dataset.camera_collect import save_photo

    (tmp_path / "Cat").mkdir()
    im = Image.new("RGB", (20, 10), (250, 0, 0))
    a = save_photo(im, tmp_path, "cat", "shot")
    b = save_photo(Image.new("RGB", (20, 10), (0, 0, 250)), tmp_path, "cat", "shot")
    assert a == tmp_path / "Cat" / "shot.jpg" and b == tmp_path / "Cat" / "shot_2.jpg"
    with Image.open(a) as first:
        assert first.convert("RGB").getpixel((5, 5))[0] > 200  # the first photo is still itself
    with pytest.raises(Exception, match="does not exist"):
        save_photo(im, tmp_path / "gone", "cat", "shot")


def test_in_the_window_both_panels_remember_their_settings(qtbot, make_window, no_cameras, tmp_path):
    win = make_window()
    win.dataset_tab.show_camera(True)
    assert win.dataset_tab.camera_panel.settings is win.settings
    tab = win.prediction_tab
    tab.pages.setCurrentWidget(tab.camera_holder)
    page = tab.camera
    assert page.settings is win.settings
    page.mirror_check.setChecked(True)
    assert win.settings.get_bool(camera_source.MIRROR_KEY, False) is True
    win.dataset_tab.show_camera(False)
    assert not win.dataset_tab.camera_panel.isVisible() and not win.dataset_tab.camera_button.isChecked()


class FakeDevice:
    def __init__(self, ident: str, name: str):
        self.ident, self.name = ident, name

    def id(self):
        return self.ident.encode()

    def description(self):
        return self.name

    def isDefault(self):  # noqa: N802
        return False


def test_hot_plug_is_followed_and_the_chosen_camera_remembered(qtbot, monkeypatch, tmp_path):
    from catdog_gui.gui.dataset.camera_collect import CameraCollectPanel
    from catdog_gui.gui.settings import Settings

    settings = Settings(tmp_path / "s.ini")
    settings.set(camera_source.CAMERA_KEY, "usb-2")
    plugged = [FakeDevice("laptop", "Built-in camera")]
    monkeypatch.setattr(camera_source, "video_inputs", lambda: list(plugged))
    panel = CameraCollectPanel(lambda: str(tmp_path), settings=settings)
    qtbot.addWidget(panel)
    assert [panel.camera_combo.itemText(i) for i in range(panel.camera_combo.count())] == ["Built-in camera"]
    plugged.append(FakeDevice("usb-2", "USB webcam"))  # plugged in: QMediaDevices.videoInputsChanged
    panel.source._devices.videoInputsChanged.emit()
    assert panel.camera_combo.count() == 2
    assert panel.camera_combo.currentData() == "usb-2"  # the one chosen last time
    assert panel.source.remembered_camera() == "usb-2"
    plugged.pop()
    panel.source._devices.videoInputsChanged.emit()
    assert panel.camera_combo.count() == 1 and panel.source.remembered_camera() == "laptop"


def test_collecting_from_a_video_file(qtbot, tmp_path, no_cameras):
    from catdog_gui.gui.dataset.camera_collect import CameraCollectPanel

    panel = CameraCollectPanel(lambda: str(tmp_path))
    qtbot.addWidget(panel)
    panel.source.use_file(str(make_mjpeg(tmp_path / "clip.mjpeg")))
    qtbot.waitUntil(lambda: panel._latest is not None, timeout=20000)
    panel.class_combo.setEditText("cat")
    with qtbot.waitSignal(panel.photos_added, timeout=5000) as sig:
        panel.one_button.click()
    assert sig.args == ["cat", 1] and len(photos(tmp_path / "cat")) == 1
    panel.shutdown()


def test_hidden_page_pauses_the_video_and_a_camera_error_is_shown(qtbot, live, tmp_path):
    live.source.use_file(str(make_mjpeg(tmp_path / "clip.mjpeg")))
    qtbot.waitUntil(lambda: live.source.is_playing(), timeout=20000)
    live.parentWidget().hide()  # another tab
    assert not live.source.is_playing()
    live.parentWidget().show()
    assert live.source.is_playing()
    live.source._camera_failed("Permission denied", "USB webcam")  # as QCamera.errorOccurred reports it
    assert "not allowed to use USB webcam" in live.message.text()


def test_save_photo_follows_the_dataset_layout(tmp_path):
    from catdog_gui.gui.dataset.camera_collect import save_photo

    im = Image.new("RGB", (20, 10), (250, 0, 0))
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "cat.1.jpg")
    assert save_photo(im, flat, "dog", "shot") == flat / "dog.shot.jpg"  # the class from the file name
    split = tmp_path / "split"
    (split / "train" / "cat").mkdir(parents=True)
    (split / "val" / "cat").mkdir(parents=True)
    assert save_photo(im, split, "cat", "shot") == split / "train" / "cat" / "shot.jpg"
