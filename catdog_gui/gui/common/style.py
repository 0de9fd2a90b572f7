"""One look for the whole app: Fusion, the system's light or dark scheme, one accent colour.

Plots and painted widgets take their colours from :func:`colors` so they match the palette.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#2f7ed8"


def is_dark() -> bool:
    app = QGuiApplication.instance()
    if app is None:
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def colors() -> dict[str, str]:
    """Named colours for plots and painted widgets, matching the current palette."""
    dark = is_dark()
    return {
        "accent": "#5aa0f0" if dark else ACCENT,
        "train": "#5aa0f0" if dark else "#1f6fc5",
        "val": "#ffa94d" if dark else "#e8590c",
        "batch": "#7f8fa6" if dark else "#9aa7b8",
        "best": "#51cf66" if dark else "#2b8a3e",
        "good": "#51cf66" if dark else "#2b8a3e",
        "warn": "#ffd43b" if dark else "#b35900",
        "bad": "#ff6b6b" if dark else "#c92a2a",
        "muted": "#a0a0a0" if dark else "#6b6b6b",
        "fg": "#e6e6e6" if dark else "#202020",
        "bg": "#2b2b2b" if dark else "#ffffff",
        "grid": "#444444" if dark else "#dddddd",
    }


def apply(app: QApplication) -> None:
    """Fusion style; the system's colour scheme (Qt follows dark mode); our accent as highlight."""
    app.setStyle("Fusion")
    pal = app.palette()
    accent = QColor(colors()["accent"])
    pal.setColor(QPalette.ColorRole.Highlight, accent)
    pal.setColor(QPalette.ColorRole.Link, accent)
    app.setPalette(pal)
    c = colors()
    app.setStyleSheet(
        f"""
        QPushButton#primary {{
            background: {c['accent']}; color: white; border: none; border-radius: 5px;
            padding: 8px 18px; font-weight: 600; font-size: 11pt;
        }}
        QPushButton#primary:hover {{ background: {QColor(c['accent']).lighter(112).name()}; }}
        QPushButton#primary:disabled {{ background: {c['grid']}; color: {c['muted']}; }}
        QLabel[role="muted"] {{ color: {c['muted']}; }}
        QLabel[role="heading"] {{ font-size: 12pt; font-weight: 600; }}
        QLabel[role="big"] {{ font-size: 14pt; font-weight: 600; }}
        QLabel[role="warn"] {{ color: {c['warn']}; }}
        QLabel[role="bad"] {{ color: {c['bad']}; }}
        QLabel[role="good"] {{ color: {c['good']}; }}
        """
    )
