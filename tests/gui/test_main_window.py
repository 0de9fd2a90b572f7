"""The main window: tabs, menus and shortcuts, settings that persist (and survive corruption),
first paint before torch, Save model as, About, the current model (one for every tab, dropped
anywhere, opened again at the next start)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from PySide6.QtGui import QKeySequence

from tests.gui.dnd import drag_and_drop, urls


def _actions(menu):
    return {a.text().replace("&", ""): a for a in menu.actions() if a.text()}


def test_window_is_importable_with_no_arguments(qtbot):
    from catdog_gui.gui import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())] == ["Dataset", "Training", "Prediction", "Network",
                                                                       "Runs"]
    assert win.windowTitle().startswith("catdog-gui")


def test_menus_and_shortcuts(window):
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus[0] == "File" and menus[-1] == "Help"
    file = _actions(window.file_menu)
    assert file["Open dataset folder…"].shortcut() == QKeySequence("Ctrl+O")
    assert file["Open model…"].shortcut() == QKeySequence("Ctrl+Shift+O")
    assert file["Save model as…"].shortcut() == QKeySequence("Ctrl+S")
    assert file["Quit"].shortcut() == QKeySequence("Ctrl+Q")
    assert "Recent datasets" in file and "Recent models" in file
    train = _actions(window.training_menu)
    assert train["Train"].shortcut() == QKeySequence("Ctrl+Return")
    assert train["Stop"].shortcut() == QKeySequence("Esc")
    assert "About catdog-gui" in _actions(window.help_menu)
    # nothing to save yet, nothing running
    assert not window.save_model_action.isEnabled()
    assert not train["Stop"].isEnabled()


def test_about_names_versions_and_device(window):
    text = window.about_text()
    assert "PyTorch" in text and "PySide6" in text
    # the PyTorch build, how it was installed and where the weights come from (core.about)
    assert "CPU-only build)" in text or "CUDA" in text
    assert "Installed as a Python package (" in text and "EfficientNet-Lite0/1/2 weights: from their pip packages" in text
    assert "Compute device: CPU" in text or "CUDA" in text or "MPS" in text
    assert window.device_label.text().startswith("Device: ")


def test_window_paints_before_torch_is_imported(tmp_path):
    """Torch takes seconds to import: the window must be built and shown without it."""
    code = textwrap.dedent(f"""
        import os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from catdog_gui.gui.main_window import MainWindow
        from catdog_gui.gui.settings import Settings
        # the background warm-up imports torch on its own thread: keep it out, so what is checked is
        # that building, showing and painting the window import neither torch nor pyqtgraph
        MainWindow.start_warm_up = lambda self: None
        w = MainWindow(Settings({str(tmp_path / 's.ini')!r}))
        w.show()
        app.processEvents()
        print("TORCH" if "torch" in sys.modules else "NO-TORCH", "pyqtgraph" in sys.modules)
        w._closing = True
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "NO-TORCH False" in out.stdout, out.stdout + out.stderr


def test_backend_loads_in_the_background(qtbot, make_window):
    win = make_window(ready=False)
    assert not win.ready and not win.training_tab.train_button.isEnabled()
    with qtbot.waitSignal(win.backend_ready, timeout=60000):
        win.show()
    assert win.training_tab.form.model_combo.count() >= 2
    assert win.training_tab.plots_ready


def test_settings_persist_across_windows(qtbot, make_window, tmp_path):
    w1 = make_window()
    t = w1.training_tab
    t.select_model("lenet5_modern")
    t.form.hyper["epochs"].setValue(7)
    t.form.hyper["lr"].setValue(0.0005)
    t.form.hyper["image_size"].setValue(48)
    t.form.hyper["seed"].setValue(42)
    w1.augment.set_enabled(True)
    w1.augment.update(rotation=25.0)
    w1.settings.add_recent("datasets", str(tmp_path))
    w1.resize(640, 480)
    w1.tabs.setCurrentIndex(1)
    w1.close()

    w2 = make_window()
    t2 = w2.training_tab
    assert t2.model_name() == "lenet5_modern"
    assert t2.form.hyper["epochs"].value() == 7
    assert abs(t2.form.hyper["lr"].value() - 0.0005) < 1e-9
    assert t2.form.hyper["image_size"].value() == 48
    assert t2.form.hyper["seed"].value() == 42
    assert w2.augment.enabled and w2.augment.settings.rotation == 25.0
    assert t2.form.augment_check.isChecked() and w2.dataset_tab.augment_panel.augment_check.isChecked()
    assert (w2.size().width(), w2.size().height()) == (640, 480)
    assert w2.tabs.currentIndex() == 1
    assert [a.toolTip() for a in w2.recent_datasets_menu.actions() if a.toolTip() == str(tmp_path)]


def test_corrupt_or_out_of_range_settings_fall_back_to_defaults(make_window, settings_path):
    settings_path.write_bytes(b"\x00\xff\xfe garbage [[[ = \n" + bytes(range(256)) + textwrap.dedent("""
        [train]
        epochs=-5
        lr=banana
        batch_size=1e99
        image_size=3
        model=no_such_model
        pretrained=maybe
        [augment]
        rotation=720
        brightness=nan
        enabled=perhaps
        [window]
        geometry=@ByteArray(nonsense)
        tab=17
    """).encode())
    win = make_window()
    t = win.training_tab
    assert t.model_name() == "lenet5"
    spec = t.specs["lenet5"]
    assert t.form.hyper["epochs"].value() == spec.defaults["epochs"]
    assert t.form.hyper["lr"].value() == spec.defaults["lr"]
    assert t.form.hyper["batch_size"].value() == spec.defaults["batch_size"]
    assert t.form.hyper["image_size"].value() == spec.default_image_size
    assert not t.form.transfer_check.isChecked()
    from catdog_gui.core.data.augment import AugmentSettings

    assert win.augment.settings == AugmentSettings()
    assert win.tabs.currentIndex() == 0
    win.close()  # and it can be written again


def test_save_model_as_copies_atomically(window, tiny_model, tmp_path):
    src = tiny_model
    window.current.open_now(src)
    assert window.model_path == str(src)
    out = window.save_model_to(str(tmp_path / "copy"))
    assert out is not None and out.name == "copy.pt"
    assert out.read_bytes() == src.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_open_model_reaches_prediction_and_title(qtbot, window, tiny_model, tmp_path):
    src = tmp_path / "some-model.pt"
    src.write_bytes(tiny_model.read_bytes())
    with qtbot.waitSignal(window.current.changed, timeout=20000):
        window.set_model(str(src))
    assert "some-model.pt" in window.windowTitle()
    assert window.training_tab.current is window.current  # "Continue training" continues this model
    assert window.save_model_action.isEnabled()
    assert window.prediction_tab.model_path == str(src) and "some-model.pt" in window.prediction_tab.model_label.text()
    assert window.prediction_tab.predictor is window.current.predictor is not None
    assert window.settings.get_str("paths/last_model", "") == str(src)
    assert window.recent_models_menu.actions()[0].toolTip() == str(src)
    # a file that is not a model: said in the status bar and in the tab; the model stays
    bad = tmp_path / "notes.pt"
    bad.write_bytes(b"not really a model")
    with qtbot.waitSignal(window.current.failed, timeout=20000):
        window.set_model(str(bad))
    assert "notes.pt" in window.statusBar().currentMessage() and "Still using some-model.pt" in \
        window.statusBar().currentMessage()
    assert "some-model.pt" in window.windowTitle() and "notes.pt" not in window.windowTitle()
    assert window.model_path == str(src) and window.settings.get_str("paths/last_model", "") == str(src)
    assert not window.prediction_tab.model_error.isHidden()


def test_a_model_file_dropped_on_the_dataset_tab_opens_it(qtbot, window, tiny_model, tmp_path):
    window.show()
    window.tabs.setCurrentWidget(window.dataset_tab)
    target = window.dataset_tab.childAt(20, 20) or window.dataset_tab  # a widget in the Dataset tab's area
    with qtbot.waitSignal(window.current.changed, timeout=20000):
        assert drag_and_drop(target, urls(tiny_model))
    assert window.model_path == str(tiny_model)
    assert window.tabs.currentWidget() is window.dataset_tab  # where the user was: nothing else moved
    # the same predictor in every tab that shows a model
    assert window.prediction_tab.predictor is window.network_tab.current.predictor is window.current.predictor
    # a photo is not for the window to take there
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(photo)
    assert not drag_and_drop(target, urls(photo))


def test_the_last_model_opens_again_at_start(qtbot, make_window, tiny_model, tmp_path):
    src = tmp_path / "last.pt"
    src.write_bytes(tiny_model.read_bytes())
    w1 = make_window()
    w1.current.open_now(src)
    w1.close()

    w2 = make_window(ready=False)
    with qtbot.waitSignal(w2.current.changed, timeout=60000):
        w2.ensure_backend()
    assert w2.model_path == str(src) and "last.pt" in w2.windowTitle()
    msg = w2.statusBar().currentMessage()
    assert "last.pt" in msg and "last time" in msg
    assert w2.prediction_tab.predictor is w2.current.predictor
    w2.close()

    # the file has moved: said in the status bar, nothing else happens, nothing is lost
    src.rename(tmp_path / "moved.pt")
    w3 = make_window()
    msg = w3.statusBar().currentMessage()
    assert "last.pt" in msg and "no longer there" in msg
    assert w3.model_path is None and not w3.current.is_loading()
    assert w3.settings.get_str("paths/last_model", "") == str(src)  # kept: the drive may come back
    w3.close()


def test_settings_that_cannot_be_saved_are_reported(make_window, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the settings folder should be")
    win = make_window(path=blocker / "settings.ini")
    msg = win.statusBar().currentMessage()
    assert "Settings cannot be saved" in msg and "settings.ini" in msg
    win.training_tab.form.hyper["epochs"].setValue(9)  # still usable: nothing raises
    win.close()


def test_clear_the_caches_from_the_file_menu(qtbot, window, monkeypatch, tmp_path):
    from catdog_gui.core.storage import caches as cachefiles

    monkeypatch.setenv("CATDOG_CACHE_DIR", str(tmp_path / "cache"))
    feats = cachefiles.cache_dir("features")
    feats.mkdir(parents=True, exist_ok=True)
    (feats / "shard.npy").write_bytes(b"x" * 5000)
    photo = tmp_path / "keep.jpg"
    photo.write_bytes(b"not touched")
    assert "Clear the caches…" in _actions(window.file_menu)
    with qtbot.waitSignal(window.clear_caches().finished, timeout=10000):
        pass
    assert not (feats / "shard.npy").exists() and photo.exists()
    assert "MB freed" in window.statusBar().currentMessage()
