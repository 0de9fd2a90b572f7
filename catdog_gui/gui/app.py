"""Start the application: the window paints first, torch loads in the background afterwards."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    argv = list(sys.argv if argv is None else argv)
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    QCoreApplication.setOrganizationName("catdog-gui")
    QCoreApplication.setApplicationName("catdog-gui")
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationDisplayName("catdog-gui")
    from pathlib import Path

    from PySide6.QtGui import QIcon

    icon = Path(__file__).resolve().parent.parent / "resources" / "icon.png"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))

    from . import style
    from .main_window import MainWindow

    style.apply(app)
    win = MainWindow()
    win.show()
    # `catdog-gui FOLDER` opens a dataset folder, `catdog-gui MODEL.pt` a model
    for arg in argv[1:]:
        if arg.endswith(".pt"):
            win.set_model(arg)
        elif not arg.startswith("-"):
            win.open_dataset_path(arg)
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
