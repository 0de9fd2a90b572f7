"""Start the application."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(list(sys.argv if argv is None else argv))
    app.setApplicationName("catdog-gui")
    app.setOrganizationName("catdog-gui")
    app.setStyle("Fusion")
    win = MainWindow()
    win.show()
    return app.exec()
