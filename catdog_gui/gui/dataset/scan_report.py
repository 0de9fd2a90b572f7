"""The scan report of the Dataset tab: photos per class and the split, unreadable files (listed, with
the reason), duplicates, warnings, and the photos you excluded. A view over one scanned Dataset:
:meth:`ScanReportView.show_report` redraws it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.data.scan import _reason_kind  # the CLI's report and this one say the same
from ..common.controls import push_button
from ..common.widgets import CountBars, file_url, muted, set_role, shown_path
from ...core.text import plural


class ScanReportView(QWidget):
    include_all_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.report_layout = lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 12, 4)
        self.report_title = QLabel()
        self.report_title.setProperty("role", "big")
        lay.addWidget(self.report_title)
        self.count_bars = CountBars()
        lay.addWidget(self.count_bars)
        self.split_label = muted("")
        lay.addWidget(self.split_label)

        self.health_box = QWidget()
        hl = QVBoxLayout(self.health_box)
        hl.setContentsMargins(0, 6, 0, 6)
        hl.setSpacing(4)
        self.health_ok = QLabel()
        set_role(self.health_ok, "good")
        hl.addWidget(self.health_ok)
        bad_row = QHBoxLayout()
        self.bad_label = QLabel()
        self.bad_label.setWordWrap(True)
        self.bad_label.setProperty("role", "warn")
        bad_row.addWidget(self.bad_label, 1)
        self.bad_toggle = QPushButton("Show them")
        self.bad_toggle.setCheckable(True)
        self.bad_toggle.setToolTip("List the files that could not be read, with the reason")
        self.bad_toggle.setAccessibleName("Show unreadable files")
        self.bad_toggle.toggled.connect(lambda on: (self.bad_list.setVisible(on),
                                                    self.bad_toggle.setText("Hide them" if on else "Show them")))
        bad_row.addWidget(self.bad_toggle, 0, Qt.AlignmentFlag.AlignTop)
        hl.addLayout(bad_row)
        self.bad_list = QTreeWidget()
        self.bad_list.setHeaderLabels(["File", "Why it was skipped"])
        self.bad_list.setRootIsDecorated(False)
        self.bad_list.setAccessibleName("Unreadable files")
        self.bad_list.setToolTip("Double-click a file to show it in its folder")
        self.bad_list.setMaximumHeight(150)
        self.bad_list.itemDoubleClicked.connect(self._reveal)
        self.bad_list.hide()
        hl.addWidget(self.bad_list)
        self.dup_label = QLabel()
        self.dup_label.setWordWrap(True)
        hl.addWidget(self.dup_label)
        self.warn_label = QLabel()
        self.warn_label.setWordWrap(True)
        self.warn_label.setProperty("role", "warn")
        self.warn_label.setTextFormat(Qt.TextFormat.RichText)
        hl.addWidget(self.warn_label)
        ex_row = QHBoxLayout()
        self.excluded_label = muted("")
        self.excluded_label.setAccessibleName("Excluded photos")
        ex_row.addWidget(self.excluded_label, 1)
        self.include_button = push_button("Include them again", "Use every photo of this folder again (scans it again)",
                                          self.include_all_requested, name="Include the excluded photos again")
        ex_row.addWidget(self.include_button, 0, Qt.AlignmentFlag.AlignTop)
        hl.addLayout(ex_row)
        self.excluded_label.hide()
        self.include_button.hide()
        lay.addWidget(self.health_box)
        lay.addStretch(1)

    def show_report(self, dataset) -> None:
        r = dataset.report
        n = r.n_train + r.n_val
        self.report_title.setText(f"{plural(n, 'photo')} in {len(r.classes)} classes: {', '.join(r.classes)}")
        self.count_bars.set_counts(r.classes, r.train_counts, r.val_counts)
        if r.val_source == "folder":
            src = f"validation photos come from {r.val_root}"
        else:
            src = (f"validation photos are held out from the training folder ({r.val_fraction:.0%} of each class, "
                   f"chosen at random with seed {r.split_seed}; Training > Advanced changes this)")
        self.split_label.setText(
            f"Blue: {plural(r.n_train, 'training photo')}; orange: {plural(r.n_val, 'validation photo')} "
            f"the model will not train on: {src}."
        )

        # health
        problems = bool(r.bad_files or r.duplicate_groups or r.warnings or r.removed_from_val)
        self.health_ok.setVisible(not problems)
        self.health_ok.setText("✓ Every photo could be read, and there are no duplicates.")
        if r.bad_files:
            kinds = Counter(_reason_kind(b.reason) for b in r.bad_files)
            detail = ", ".join(f"{k} {w}" for w, k in kinds.most_common())
            self.bad_label.setText(f"⚠ {plural(len(r.bad_files), 'file')} could not be read ({detail}). "
                                   "They were skipped; fix or delete them if they should be used.")
            self.bad_list.clear()
            self._bad_paths = [b.path for b in r.bad_files]  # real paths stay in Python (see shown_path)
            for i, b in enumerate(r.bad_files):
                reason = b.reason.split(": ", 1)[1] if b.reason.startswith(b.path.name + ":") else b.reason
                item = QTreeWidgetItem([shown_path(b.path), shown_path(reason)])
                item.setToolTip(0, shown_path(b.path))
                item.setToolTip(1, shown_path(b.reason))
                item.setData(0, Qt.ItemDataRole.UserRole, i)
                self.bad_list.addTopLevelItem(item)
            self.bad_list.resizeColumnToContents(1)
        self.bad_label.setVisible(bool(r.bad_files))
        self.bad_toggle.setVisible(bool(r.bad_files))
        self.bad_toggle.setChecked(False)
        self.bad_list.setVisible(False)
        dup = []
        if r.duplicate_groups:
            extra = sum(len(g) - 1 for g in r.duplicate_groups)
            dup.append(f"Found {plural(len(r.duplicate_groups), 'set')} of identical photos "
                       f"({plural(extra, 'extra copy', 'extra copies')}). Copies are kept together on one side of "
                       "the split, so validation is never measured on a photo the model trained on.")
        if r.removed_from_val:
            dup.append(f"{plural(r.removed_from_val, 'validation photo')} identical to a training photo "
                       "were left out of validation.")
        self.dup_label.setText(" ".join(dup))
        self.dup_label.setVisible(bool(dup))
        if r.duplicate_groups:
            self.dup_label.setToolTip("\n".join(" = ".join(p.name for p in g[:4]) for g in r.duplicate_groups[:15]))
        warns = list(r.warnings)
        if r.ignored:
            warns.append(f"{plural(r.ignored, 'file')} that are not photos (or not in a class folder) were ignored")
        self.warn_label.setText("".join(f"<div>⚠ {w[:1].upper() + w[1:]}.</div>" for w in warns))
        self.warn_label.setVisible(bool(warns))
        n_ex = len(r.excluded)
        self.excluded_label.setText(f"{plural(n_ex, 'photo')} excluded from training by you "
                                    "(shown under Skipped in the grid).")
        self.excluded_label.setVisible(bool(n_ex))
        self.include_button.setVisible(bool(n_ex))

    def _reveal(self, item) -> None:
        i = item.data(0, Qt.ItemDataRole.UserRole)
        paths = getattr(self, "_bad_paths", [])
        if isinstance(i, int) and 0 <= i < len(paths):
            QDesktopServices.openUrl(file_url(Path(paths[i]).parent))

