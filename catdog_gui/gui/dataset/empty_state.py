"""The Dataset tab's empty state: the folder layout it expects, Choose a folder, drop a folder, Get
sample photos, and why the last folder could not be used (with "Include the excluded photos again")."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStyle, QVBoxLayout, QWidget

from ..common.widgets import muted
from ..common.controls import push_button


class EmptyState(QWidget):
    choose_requested = Signal()
    samples_requested = Signal()
    include_all_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.error_label.setProperty("role", "bad")
        self.error_label.setAccessibleName("Problem with the folder")
        self.error_label.hide()
        lay.addWidget(self.error_label)
        title = QLabel("Start with a folder of photos")
        title.setProperty("role", "big")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(title)
        example = QLabel(
            "<p>Put each kind of photo in its own folder. The folder names become the class names:</p>"
            "<table align='center'><tr><td><pre style='font-size:11pt'>"
            "my_photos/\n"
            "├── cat/    cat1.jpg  cat2.jpg  …\n"
            "└── dog/    dog1.jpg  dog2.jpg  …</pre></td></tr></table>"
            "<p>Also accepted: one folder with files named like <b>cat.1.jpg</b> and <b>dog.1.jpg</b>, "
            "or a folder holding <b>train/</b> and <b>val/</b> (or <b>validation/</b>).<br>"
            "Two or more classes; a few hundred photos per class give good results.</p>"
        )
        example.setTextFormat(Qt.TextFormat.RichText)
        example.setAlignment(Qt.AlignmentFlag.AlignCenter)
        example.setWordWrap(True)
        lay.addWidget(example)
        row = QHBoxLayout()
        row.addStretch(1)
        self.empty_choose = push_button("Choose a folder…", "Choose the folder with your photos (Ctrl+O)",
                                        self.choose_requested, name="Choose a folder",
                                        icon=self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon),
                                        primary=True)
        row.addWidget(self.empty_choose)
        row.addStretch(1)
        lay.addLayout(row)
        drop = muted("…or drag a folder from your file manager and drop it here.")
        drop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(drop)
        from ...core.data.sample_photos import SAMPLE_SETS, DEFAULT_SET
        from ...core.text import size_text

        small = SAMPLE_SETS[DEFAULT_SET]
        srow = QHBoxLayout()
        srow.addStretch(1)
        srow.addWidget(muted("No photos of your own yet?", wrap=False))
        self.samples_button = QPushButton("Get sample photos")
        self.samples_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_ArrowDown))
        self.samples_button.setToolTip(f"Download {small.photos.split(':')[0]} of cats and dogs "
                                       f"({size_text(small.size)}) to try the app, and open them here")
        self.samples_button.setAccessibleName("Get sample photos")
        self.samples_button.clicked.connect(self.samples_requested)
        srow.addWidget(self.samples_button)
        srow.addStretch(1)
        lay.addLayout(srow)
        self.empty_include = push_button("Include the excluded photos again",
                                         "Use every photo of this folder again, then scan it",
                                         self.include_all_requested, name="Include the excluded photos again")
        self.empty_include.hide()
        irow = QHBoxLayout()
        irow.addStretch(1)
        irow.addWidget(self.empty_include)
        irow.addStretch(1)
        lay.addLayout(irow)
        lay.addStretch(2)

