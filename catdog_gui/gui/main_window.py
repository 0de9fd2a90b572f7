"""The main window: Dataset, Training and Prediction tabs."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget


class MainWindow(QMainWindow):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("catdog-gui")
        self.tabs = QTabWidget()
        for title in ("Dataset", "Training", "Prediction"):
            self.tabs.addTab(QLabel(title), title)
        self.setCentralWidget(self.tabs)
        self.resize(1200, 800)
