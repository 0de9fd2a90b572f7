"""The Dataset tab's photo grid: every photo of the dataset in one QListView, thumbnails decoded in
the background only for the cells being painted (scrolled into view), kept in a cache bounded in
bytes, so a 25,000-photo folder scrolls smoothly and memory stays flat.

* :class:`PhotoModel`: a list model over every :class:`Photo` (class, split: training, validation
  or skipped, and the problem of a skipped one), filtered by class and split, its thumbnails
  from a :class:`~.thumbnails.ThumbLoader` into a :class:`~.thumbnails.ThumbCache`;
* :class:`PhotoDelegate`: paints a thumbnail (aspect ratio kept), a split stripe and a caption;
* :class:`PhotoGrid`: the filters, the count and the view; double-click opens a photo, the context
  menu opens its folder or excludes it from training (``exclude_requested``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDesktopServices, QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QLabel, QListView, QMenu,
                               QStyle, QStyledItemDelegate, QStyleOptionViewItem, QVBoxLayout, QWidget)

from ..common import style
from ..common.widgets import file_url, muted, shown_path
from .thumbnails import BROKEN, ThumbCache, ThumbLoader

THUMB = 96  # px: the thumbnail's box (logical pixels)
CELL_W, CELL_H = THUMB + 16, THUMB + 30

SPLITS = ("train", "validation", "skipped")
SPLIT_TITLES = {"train": "training", "validation": "validation", "skipped": "skipped"}
PhotoRole = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class Photo:
    path: Path
    cls: str
    split: str  # "train", "validation" or "skipped"
    problem: str = ""  # why a skipped photo is skipped
    excluded: bool = False  # skipped because the user excluded it


def _class_of(path: Path, report) -> str:
    from ...core.data.layouts import class_from_name

    for root in (report.root, report.val_root):
        if root is None:
            continue
        try:
            rel = Path(path).relative_to(root)
        except ValueError:
            continue
        if len(rel.parts) > 1:
            return rel.parts[0]
        return class_from_name(rel.name) or "?"
    return "?"


def photos_of(dataset) -> list[Photo]:
    """Every photo the scan saw: training, validation, unreadable and excluded ones, by class."""
    r = dataset.report
    out = [Photo(s.path, dataset.classes[s.label], "train") for s in dataset.train]
    out += [Photo(s.path, dataset.classes[s.label], "validation") for s in dataset.val]
    for b in r.bad_files:
        reason = b.reason.split(": ", 1)[1] if b.reason.startswith(b.path.name + ":") else b.reason
        out.append(Photo(b.path, _class_of(b.path, r), "skipped", reason))
    for p in getattr(r, "excluded", []):
        out.append(Photo(p, _class_of(p, r), "skipped", "excluded from training (right-click to include it again)",
                         excluded=True))
    order = {s: i for i, s in enumerate(SPLITS)}
    out.sort(key=lambda ph: (ph.cls, order[ph.split], str(ph.path)))
    return out


# ----------------------------------------------------------------------------------------------
# the model


class PhotoModel(QAbstractListModel):
    """Every photo of a dataset, filtered by class and split; thumbnails on demand."""

    counts_changed = Signal()

    def __init__(self, px: int = THUMB, parent=None, workers: Optional[int] = None):
        super().__init__(parent)
        self._all: list[Photo] = []
        self._rows: list[int] = []
        self._row_of: dict = {}
        self.class_filter: Optional[str] = None
        self.split_filter: Optional[str] = None
        self.cache = ThumbCache()
        self.loader = ThumbLoader(px, workers, parent=self)
        self.loader.ready.connect(self._on_ready)

    # -- contents --------------------------------------------------------------------------
    def set_photos(self, photos: list[Photo], keep_cache: bool = False) -> None:
        self.beginResetModel()
        self._all = list(photos)
        if not keep_cache:
            self.cache.clear()
        self.loader.clear()
        self._refilter()
        self.endResetModel()
        self.counts_changed.emit()

    def set_filter(self, cls: Optional[str] = None, split: Optional[str] = None) -> None:
        if (cls, split) == (self.class_filter, self.split_filter):
            return
        self.beginResetModel()
        self.class_filter, self.split_filter = cls, split
        self.loader.clear()
        self._refilter()
        self.endResetModel()
        self.counts_changed.emit()

    def _refilter(self) -> None:
        c, s = self.class_filter, self.split_filter
        self._rows = [i for i, ph in enumerate(self._all)
                      if (c is None or ph.cls == c) and (s is None or ph.split == s)]
        self._row_of = {str(self._all[i].path): r for r, i in enumerate(self._rows)}

    def photos(self) -> list[Photo]:
        return list(self._all)

    def photo(self, row: int) -> Photo:
        return self._all[self._rows[row]]

    def row_of(self, path) -> Optional[int]:
        return self._row_of.get(str(path))

    def classes(self) -> list[str]:
        return sorted({ph.cls for ph in self._all})

    def total(self) -> int:
        return len(self._all)

    # -- Qt --------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        ph = self._all[self._rows[index.row()]]
        if role == PhotoRole:
            return ph
        if role == Qt.ItemDataRole.DisplayRole:
            return shown_path(ph.path.name)
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            text = f"{shown_path(ph.path.name)}: {ph.cls}, {SPLIT_TITLES[ph.split]}"
            if ph.problem:
                text += f" ({shown_path(ph.problem)})"
            if role == Qt.ItemDataRole.ToolTipRole:
                text += f"\n{shown_path(ph.path.parent)}"
            return text
        return None

    # -- thumbnails ------------------------------------------------------------------------
    def thumbnail(self, row: int):
        """The cached QPixmap of ``row``, BROKEN, or None (then it is requested)."""
        key = str(self._all[self._rows[row]].path)
        v = self.cache.get(key)
        if v is None:
            self.loader.request(key)
        return v

    def _on_ready(self, key, image) -> None:
        self.cache.put(key, BROKEN if image is None else QPixmap.fromImage(image))
        row = self._row_of.get(key)
        if row is not None:
            ix = self.index(row)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])

    def shutdown(self) -> None:
        self.loader.shutdown()


# ----------------------------------------------------------------------------------------------
# painting


class PhotoDelegate(QStyledItemDelegate):
    def __init__(self, model: PhotoModel, parent=None):
        super().__init__(parent)
        self.model = model

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        return QSize(CELL_W, CELL_H)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        ph: Photo = index.data(PhotoRole)
        if ph is None:
            return
        c = style.colors()
        w = option.widget
        st = w.style() if w is not None else None
        opt = QStyleOptionViewItem(option)
        opt.text = ""
        opt.features &= ~QStyleOptionViewItem.ViewItemFeature.HasDisplay
        if st is not None:
            st.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, p, w)
        r = option.rect
        box = QRect(r.x() + (r.width() - THUMB) // 2, r.y() + 4, THUMB, THUMB)
        pm = self.model.thumbnail(index.row())
        if pm is None:
            p.fillRect(box.adjusted(8, 8, -8, -8), QColor(c["grid"]))
        elif pm is BROKEN:
            if st is not None:
                icon = st.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
                icon.paint(p, box.adjusted(24, 24, -24, -24))
        else:
            dpr = pm.devicePixelRatio() or 1.0
            size = QSize(int(pm.width() / dpr), int(pm.height() / dpr))
            size.scale(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(box.x() + (box.width() - size.width()) // 2,
                           box.y() + (box.height() - size.height()) // 2, size.width(), size.height())
            p.drawPixmap(target, pm)
        stripe = {"train": c["train"], "validation": c["val"], "skipped": c["bad"]}[ph.split]
        p.fillRect(QRect(box.x(), box.bottom() + 2, box.width(), 3), QColor(stripe))
        what = SPLIT_TITLES[ph.split] if ph.split != "skipped" else ("excluded" if ph.excluded else "unreadable")
        text = f"{ph.cls} · {what}"
        fm = option.fontMetrics
        tr = QRect(r.x() + 2, box.bottom() + 6, r.width() - 4, fm.height())
        p.setPen(QColor(c["bad"]) if ph.split == "skipped" else option.palette.color(option.palette.ColorRole.Text))
        p.drawText(tr, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                   fm.elidedText(text, Qt.TextElideMode.ElideRight, tr.width()))


# ----------------------------------------------------------------------------------------------
# the widget


class PhotoView(QListView):
    """A QListView set up for many uniform cells: icon grid, static layout, batched."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)  # after setViewMode: IconMode sets Free
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setGridSize(QSize(CELL_W + 4, CELL_H + 4))
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setMouseTracking(True)


class PhotoGrid(QWidget):
    """Filters (class, split), a count, and the view of every photo."""

    #: a readable photo was clicked (path as str): the tab previews augmentation on it
    photo_clicked = Signal(str)
    #: (list of Paths, exclude?) from the context menu
    exclude_requested = Signal(list, bool)

    def __init__(self, parent=None, workers: Optional[int] = None):
        super().__init__(parent)
        px = int(round(THUMB * (self.devicePixelRatioF() or 1.0)))
        self.model = PhotoModel(px, parent=self, workers=workers)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show:"))
        self.class_combo = QComboBox()
        self.class_combo.setAccessibleName("Show class")
        self.class_combo.setToolTip("Show the photos of one class")
        self.class_combo.currentIndexChanged.connect(self._apply_filter)
        row.addWidget(self.class_combo)
        self.split_combo = QComboBox()
        self.split_combo.setAccessibleName("Show split")
        self.split_combo.setToolTip("Show training photos, validation photos, or the skipped ones "
                                    "(unreadable, or excluded by you)")
        self.split_combo.addItem("Training, validation and skipped", None)
        for s in SPLITS:
            self.split_combo.addItem({"train": "Training only", "validation": "Validation only",
                                      "skipped": "Skipped only"}[s], s)
        self.split_combo.currentIndexChanged.connect(self._apply_filter)
        row.addWidget(self.split_combo)
        self.count_label = muted("", wrap=False)
        self.count_label.setAccessibleName("Photos shown")
        row.addWidget(self.count_label, 1)
        lay.addLayout(row)
        self.view = PhotoView()
        self.view.setAccessibleName("Photos")
        self.view.setToolTip("Click a photo to preview augmentation on it; double-click to open it; "
                             "right-click to open its folder or exclude it from training")
        self.view.setModel(self.model)
        self.view.setItemDelegate(PhotoDelegate(self.model, self.view))
        self.view.clicked.connect(self._on_clicked)
        self.view.doubleClicked.connect(self._on_double_clicked)
        self.view.customContextMenuRequested.connect(self._context_menu)
        lay.addWidget(self.view, 1)
        self.model.counts_changed.connect(self._update_count)

    # -- contents --------------------------------------------------------------------------
    def set_dataset(self, dataset, keep_view: bool = False) -> None:
        """Show every photo of ``dataset`` (None: nothing). ``keep_view``: same folder rescanned
        (after an exclusion): the filters, the thumbnails and the scroll position stay."""
        bar = self.view.verticalScrollBar()
        pos = bar.value()
        photos = photos_of(dataset) if dataset is not None else []
        cls = self.class_combo.currentData() if keep_view else None
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("All classes", None)
        for c in sorted({ph.cls for ph in photos}):
            self.class_combo.addItem(c, c)
        i = self.class_combo.findData(cls) if cls is not None else 0
        self.class_combo.setCurrentIndex(max(i, 0))
        self.class_combo.blockSignals(False)
        if not keep_view:
            self.split_combo.blockSignals(True)
            self.split_combo.setCurrentIndex(0)
            self.split_combo.blockSignals(False)
        self.model.class_filter = self.class_combo.currentData()
        self.model.split_filter = self.split_combo.currentData()
        self.model.set_photos(photos, keep_cache=keep_view)
        if keep_view:
            self.view.doItemsLayout()
            bar.setValue(pos)

    def set_filter(self, cls: Optional[str] = None, split: Optional[str] = None) -> None:
        """Show one class (None: all) and one split ("train", "validation", "skipped"; None: all)."""
        i = self.class_combo.findData(cls) if cls is not None else 0
        j = self.split_combo.findData(split) if split is not None else 0
        self.class_combo.setCurrentIndex(max(i, 0))
        self.split_combo.setCurrentIndex(max(j, 0))

    def _apply_filter(self) -> None:
        self.model.set_filter(self.class_combo.currentData(), self.split_combo.currentData())

    def _update_count(self) -> None:
        n, total = self.model.rowCount(), self.model.total()
        self.count_label.setText(f"{n:,} photo{'s' if n != 1 else ''}" if n == total
                                 else f"{n:,} of {total:,} photos")

    def select_path(self, path) -> None:
        row = self.model.row_of(path)
        if row is not None:
            ix = self.model.index(row)
            self.view.setCurrentIndex(ix)

    # -- interaction -----------------------------------------------------------------------
    def _on_clicked(self, index: QModelIndex) -> None:
        ph = index.data(PhotoRole)
        if ph is not None and ph.split != "skipped":
            self.photo_clicked.emit(str(ph.path))

    def _on_double_clicked(self, index: QModelIndex) -> None:
        ph = index.data(PhotoRole)
        if ph is not None:
            QDesktopServices.openUrl(file_url(ph.path))

    def selected_photos(self) -> list[Photo]:
        return [ix.data(PhotoRole) for ix in sorted(self.view.selectedIndexes(), key=lambda i: i.row())]

    def context_menu_for(self, index: QModelIndex) -> Optional[QMenu]:
        """The menu for a right-click on ``index``, built and not shown (None off a photo)."""
        ph = index.data(PhotoRole)
        if ph is None:
            return None
        sel = self.view.selectionModel()
        if not sel.isSelected(index):
            self.view.setCurrentIndex(index)
        photos = self.selected_photos() or [ph]
        menu = QMenu(self)
        a = menu.addAction("Open photo", lambda: QDesktopServices.openUrl(file_url(ph.path)))
        a.setToolTip("Open the photo in the system's viewer")
        menu.addAction("Open containing folder", lambda: QDesktopServices.openUrl(file_url(ph.path.parent)))
        menu.addSeparator()
        inc = [p.path for p in photos if p.excluded]
        exc = [p.path for p in photos if p.split != "skipped"]  # an unreadable photo is not used anyway
        if exc:
            n = len(exc)
            menu.addAction("Exclude from training" + (f" ({n:,} photos)" if n > 1 else ""),
                           lambda: self.exclude_requested.emit(exc, True))
        if inc:
            n = len(inc)
            menu.addAction("Include in training again" + (f" ({n:,} photos)" if n > 1 else ""),
                           lambda: self.exclude_requested.emit(inc, False))
        return menu

    def _context_menu(self, pos) -> None:
        index = self.view.indexAt(pos)
        menu = self.context_menu_for(index)
        if menu is not None:
            menu.popup(self.view.viewport().mapToGlobal(pos))

    def shutdown(self) -> None:
        self.model.shutdown()
