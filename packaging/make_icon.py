"""Write the app icon: catdog_gui/resources/icon.svg (hand-written, a white paw print on a blue
rounded square) and icon.png (256 px) / icon-512.png rendered from it with Qt's SVG renderer.

    python packaging/make_icon.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "catdog_gui" / "resources"

SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <title>catdog-gui</title>
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#5b9bff"/>
      <stop offset="1" stop-color="#2a5bd0"/>
    </linearGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="56" fill="url(#bg)"/>
  <g fill="#ffffff">
    <path d="M128 122 C151 122 170 139 183 160 C196 182 191 207 166 208 C150 209 141 199 128 199
             C115 199 106 209 90 208 C65 207 60 182 73 160 C86 139 105 122 128 122 Z"/>
    <ellipse cx="68" cy="110" rx="19" ry="25" transform="rotate(-24 68 110)"/>
    <ellipse cx="104" cy="72" rx="20" ry="27" transform="rotate(-9 104 72)"/>
    <ellipse cx="152" cy="72" rx="20" ry="27" transform="rotate(9 152 72)"/>
    <ellipse cx="188" cy="110" rx="19" ry="25" transform="rotate(24 188 110)"/>
  </g>
</svg>
"""


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "icon.svg").write_text(SVG, encoding="utf-8")
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(str(OUT / "icon.svg"))
    assert renderer.isValid()
    for size, name in ((256, "icon.png"), (512, "icon-512.png")):
        img = QImage(size, size, QImage.Format.Format_ARGB32)
        img.fill(Qt.GlobalColor.transparent)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(p)
        p.end()
        assert img.save(str(OUT / name)), name
        print("wrote", OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
