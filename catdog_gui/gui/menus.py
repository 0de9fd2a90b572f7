"""The main window's menus: File (datasets, models, recent items, caches, quit), Training (the Training
tab's actions, whose shortcuts work from every tab) and Help, built onto the window ``w``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence


def action(w, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    """A QAction of the window with its shortcut and tip."""
    a = QAction(text, w)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(tip)
    a.triggered.connect(slot)
    return a


def build_menus(w) -> None:
    """The File, Training and Help menus, and Alt+1..5 for the tabs."""
    mb = w.menuBar()
    w.file_menu = m = mb.addMenu("&File")
    w.open_dataset_action = action(w, "&Open dataset folder…", w.open_dataset, "Ctrl+O",
                                     "Choose a folder of photos, one subfolder per class")
    w.open_model_action = action(w, "Open &model…", w.open_model, "Ctrl+Shift+O",
                                   "Open a model file to classify photos or to train further")
    w.save_model_action = action(w, "&Save model as…", w.save_model_as, "Ctrl+S",
                                   "Save a copy of the current model file")
    w.export_action = action(w, "&Export model…", w.export_model, "Ctrl+E",
                               "Export the current model to ONNX or TorchScript, to use it elsewhere")
    m.addAction(w.open_dataset_action)
    m.addAction(w.open_model_action)
    m.addAction(w.save_model_action)
    m.addAction(w.export_action)
    m.addSeparator()
    w.recent_datasets_menu = m.addMenu("Recent &datasets")
    w.recent_models_menu = m.addMenu("Recent mo&dels")
    m.addSeparator()
    w.clear_caches_action = action(w, "Clear the &caches…", w.clear_caches_dialog, None,
                                     "Delete the decoded photos and backbone features kept to make "
                                     "the next run start at once (your photos and models stay)")
    m.addAction(w.clear_caches_action)
    m.addSeparator()
    w.quit_action = action(w, "&Quit", w.close, "Ctrl+Q", "Close the app (stops any training)")
    w.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    m.addAction(w.quit_action)

    t = w.training_tab
    w.training_menu = tm = mb.addMenu("&Training")
    for a in (t.train_action, t.pause_action, t.stop_action, t.continue_action):
        tm.addAction(a)
        w.addAction(a)  # shortcuts work from every tab

    w.help_menu = h = mb.addMenu("&Help")
    w.about_action = action(w, "&About catdog-gui", w.show_about, None,
                              "Versions and the compute device")
    w.about_action.setMenuRole(QAction.MenuRole.AboutRole)
    h.addAction(w.about_action)

    for i in range(w.tabs.count()):  # Alt+1..5 switch tabs
        a = QAction(w)
        a.setShortcut(QKeySequence(f"Alt+{i + 1}"))
        a.triggered.connect(lambda _=False, i=i: w.tabs.setCurrentIndex(i))
        w.addAction(a)
    refresh_recent(w)


def refresh_recent(w) -> None:
    """The File menu's recent datasets and models, from the settings."""
    for menu, kind, opener in ((w.recent_datasets_menu, "datasets", w.open_dataset_path),
                               (w.recent_models_menu, "models", w.set_model)):
        menu.clear()
        items = w.settings.recent(kind)
        for i, p in enumerate(items):
            a = menu.addAction(f"&{i + 1} {p}" if i < 9 else p)
            a.setToolTip(p)
            a.triggered.connect(lambda _=False, p=p, opener=opener, kind=kind: open_recent(w, kind, p, opener))
        if items:
            menu.addSeparator()
            menu.addAction("Clear list", lambda kind=kind: (w.settings.clear_recent(kind), refresh_recent(w)))
        menu.setEnabled(bool(items))

def open_recent(w, kind: str, path: str, opener) -> None:
    """Open a recent item, or say it is gone and drop it from the list."""
    if not Path(path).exists():
        w.show_message(f"{path} no longer exists (moved or deleted?)")
        items = [p for p in w.settings.recent(kind) if p != path]
        w.settings.set(f"recent/{kind}", items)
        refresh_recent(w)
        return
    opener(path)
