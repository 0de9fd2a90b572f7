"""Optional TensorBoard logging of a training run, as an ordinary trainer callback.

:class:`TensorBoardLogger` writes one TensorBoard run per training run, in its own subfolder of
``log_dir`` (so ``tensorboard --logdir log_dir`` compares runs):

* scalars per epoch (step = epoch): ``loss/train``, ``loss/val``, ``accuracy/train``,
  ``accuracy/val``, ``learning_rate``, ``speed/images_per_s``; per batch (step = batches seen):
  ``loss/batch``;
* the hyperparameters (HParams tab) with the final metrics ``hparam/val_accuracy``,
  ``hparam/val_loss``, ``hparam/train_accuracy`` and ``hparam/best_epoch``;
* images: ``augmentation/preview`` (step 0, when augmentation is on: a few training photos and
  augmented versions, at the model's input size), ``evaluation/confusion_matrix`` and
  ``evaluation/mistakes`` (the most confident mistakes), both at the best epoch;
* text: ``run/config``, ``run/dataset`` and ``run/result``.

The learning rate is not in :class:`~.events.EpochEnd`; the trainer has no schedule, so it is the
config's ``lr``, times ``finetune_lr_factor`` in the fine-tuning phase, which is exactly what the
optimizer uses.

The confusion matrix and the mistakes come from ``Finished.metrics`` and the preview photos from
``trainer.dataset``: :meth:`TensorBoardLogger.attach` adds the logger to a trainer and remembers
it. Without a trainer, the preview uses the first photo under the scanned folder and the
confusion matrix and mistakes are left out.

``tensorboard`` is an optional dependency (``pip install "catdog-gui[tensorboard]"``); without it,
constructing the logger raises :class:`CatdogError` saying so. The image helpers
(:func:`image_grid`, :func:`confusion_image`, :func:`mistakes_image`) need only Pillow.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

from ..errors import CatdogError
from ..events import BatchEnd, DatasetScanned, EpochEnd, Finished, RunStarted

INSTALL_HINT = 'pip install tensorboard  (or: pip install "catdog-gui[tensorboard]")'


# ---------------------------------------------------------------------------------- drawing
def _font(size: int = 12):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one small bitmap font
        return ImageFont.load_default()


def image_grid(images: Sequence, columns: Optional[int] = None, captions: Optional[Sequence[str]] = None,
               cell: Optional[int] = None, pad: int = 4, background=(255, 255, 255)):
    """Lay PIL images out in a grid (``columns`` wide, default up to 8), each scaled to ``cell``
    pixels (nearest neighbour, so small model inputs stay crisp) with an optional caption below."""
    from PIL import Image, ImageDraw

    images = list(images)
    if not images:
        raise ValueError("image_grid needs at least one image")
    cell = cell or max(max(im.size) for im in images)
    columns = max(1, min(columns or min(8, len(images)), len(images)))
    rows = math.ceil(len(images) / columns)
    font = _font(max(10, min(14, cell // 8)))
    cap_lines = max((len(c.splitlines()) for c in captions), default=0) if captions else 0
    cap_h = cap_lines * (font.size + 3 if hasattr(font, "size") else 14)
    w = columns * (cell + pad) + pad
    h = rows * (cell + cap_h + pad) + pad
    grid = Image.new("RGB", (w, h), background)
    draw = ImageDraw.Draw(grid)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        x, y = pad + c * (cell + pad), pad + r * (cell + cap_h + pad)
        im = im.convert("RGB")
        if im.size != (cell, cell):
            scale = cell / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.NEAREST)
        grid.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
        if captions and i < len(captions) and captions[i]:
            draw.multiline_text((x + 1, y + cell + 1), captions[i], fill=(20, 20, 20), font=font, spacing=2)
    return grid


def confusion_image(confusion: Sequence[Sequence[int]], classes: Sequence[str], cell: int = 72):
    """The confusion matrix as a picture: rows are the true class, columns the prediction; each
    cell shows its count and its share of the row, shaded by that share."""
    from PIL import Image, ImageDraw

    k = len(classes)
    font, small = _font(13), _font(11)
    names = [c if len(c) <= 14 else c[:12] + ".." for c in classes]
    left = 16 + max(int(font.getlength(n)) for n in names + ["true (rows)"])
    top = 44
    w, h = left + k * cell + 12, top + k * cell + 12
    im = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.text((left, 4), "predicted (columns)", fill=(60, 60, 60), font=small)
    d.text((4, top - 16), "true (rows)", fill=(60, 60, 60), font=small)
    for j, n in enumerate(names):
        d.text((left + j * cell + cell / 2, top - 6), n, fill=(0, 0, 0), font=font, anchor="mb")
    for i, row in enumerate(confusion):
        total = sum(row) or 1
        d.text((left - 8, top + i * cell + cell / 2), names[i], fill=(0, 0, 0), font=font, anchor="rm")
        for j, v in enumerate(row):
            share = v / total
            good = i == j
            base = (33, 113, 181) if good else (203, 24, 29)
            colour = tuple(round(255 - (255 - b) * share) for b in base)
            x0, y0 = left + j * cell, top + i * cell
            d.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=colour, outline=(200, 200, 200))
            ink = (255, 255, 255) if share > 0.55 else (0, 0, 0)
            d.text((x0 + cell / 2, y0 + cell / 2 - 8), str(v), fill=ink, font=font, anchor="mm")
            d.text((x0 + cell / 2, y0 + cell / 2 + 9), f"{share * 100:.0f}%", fill=ink, font=small, anchor="mm")
    return im


def mistakes_image(mistakes: Sequence, n: int = 16, cell: int = 96, columns: int = 8):
    """The ``n`` most confident mistakes (``Metrics.mistakes`` order) as captioned thumbnails."""
    from PIL import Image, ImageDraw

    from ..data.imageio import load_rgb, to_square
    from ..text import probability_text

    thumbs, captions = [], []
    for m in list(mistakes)[:n]:
        try:
            thumb = to_square(load_rgb(m.path, draft_size=cell), cell)
        except CatdogError:
            thumb = Image.new("RGB", (cell, cell), (230, 230, 230))
        thumbs.append(thumb)
        captions.append(f"{m.true} as {m.predicted}\n{probability_text(m.confidence)} sure")
    if not thumbs:
        im = Image.new("RGB", (320, 40), (255, 255, 255))
        ImageDraw.Draw(im).text((8, 12), "no mistakes on the validation images", fill=(0, 0, 0), font=_font(13))
        return im
    return image_grid(thumbs, columns=min(columns, len(thumbs)), captions=captions, cell=cell)


def augmentation_grid(images: Sequence, settings, size: int, n: int = 7, seed: int = 0, cell: int = 96):
    """One row per photo: the photo as the model sees it, then ``n`` augmented versions."""
    from ..data.augment import AugmentSettings, preview
    from ..data.imageio import load_square_array

    from PIL import Image

    rows, captions = [], []
    for source in images:
        original = Image.fromarray(load_square_array(source, size), "RGB")
        rows += [original] + preview(source, settings if settings is not None else AugmentSettings(enabled=True),
                                     n=n, seed=seed, size=size)
        captions += ["original"] + [f"#{i + 1}" for i in range(n)]
    return image_grid(rows, columns=n + 1, captions=captions, cell=max(cell, size))


def _array(im):
    import numpy as np

    return np.asarray(im.convert("RGB"), dtype=np.uint8)


# ---------------------------------------------------------------------------------- logger
class TensorBoardLogger:
    """Trainer callback writing TensorBoard event files under ``log_dir/<run_name>``.

    ``run_name`` defaults to :meth:`default_run_name` (``lenet5-augment-<YYYYmmdd-HHMMSS>``).
    ``images=False`` logs no images.
    Raises :class:`CatdogError` when tensorboard is not installed or ``log_dir`` cannot be created.
    A failure while logging never stops training: the logger warns once and goes quiet.
    """

    def __init__(self, log_dir, run_name: Optional[str] = None, *, trainer=None, images: bool = True,
                 n_mistakes: int = 16, flush_secs: int = 10):
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (needs the tensorboard package)
            import tensorboard  # noqa: F401
        except ImportError:
            raise CatdogError(f"TensorBoard logging needs the tensorboard package: {INSTALL_HINT}") from None
        self.log_dir = Path(log_dir).expanduser()
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CatdogError(f"cannot create the TensorBoard folder {self.log_dir}: {e.strerror or e}") from None
        self.run_name = run_name
        self.trainer = trainer
        self.images = images
        self.n_mistakes = n_mistakes
        self.flush_secs = flush_secs
        self.run_dir: Optional[Path] = None
        self.writer = None
        self.error: Optional[str] = None
        self._report = None
        self._config: dict = {}
        self._started = None
        self._batches = 0

    def attach(self, trainer) -> "TensorBoardLogger":
        """Add this logger to ``trainer``'s callbacks (and use its metrics and dataset); returns self."""
        self.trainer = trainer
        if self not in trainer.callbacks:
            trainer.callbacks.append(self)
        return self

    # -- events ----------------------------------------------------------------------------
    def __call__(self, ev) -> None:
        if self.error is not None:
            return
        try:
            if isinstance(ev, BatchEnd):
                if self.writer is not None:
                    self._batches += 1
                    self.writer.add_scalar("loss/batch", ev.loss, self._batches)
            elif isinstance(ev, EpochEnd):
                self._epoch(ev)
            elif isinstance(ev, DatasetScanned):
                self._report = ev.report
            elif isinstance(ev, RunStarted):
                self._start(ev)
            elif isinstance(ev, Finished):
                self._finish(ev)
        except Exception as e:  # logging must never cost the user their training run
            self.error = f"{type(e).__name__}: {e}"
            self._close()
            warnings.warn(f"TensorBoard logging stopped: {self.error}", stacklevel=2)

    def _start(self, ev: RunStarted) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._close()
        self._config = dict(ev.config)
        self._started = ev
        self._batches = 0
        name = self.run_name or self.default_run_name(self._config)
        run_dir = self.log_dir / name
        if self.run_name is None:
            i = 2
            while run_dir.exists():
                run_dir = self.log_dir / f"{name}-{i}"
                i += 1
        self.run_dir = run_dir
        self.writer = SummaryWriter(str(run_dir), flush_secs=self.flush_secs)
        rows = "\n".join(f"| {k} | {v} |" for k, v in self._hparams().items())
        self.writer.add_text("run/config", f"| setting | value |\n|---|---|\n{rows}", 0)
        if self._report is not None:
            self.writer.add_text("run/dataset", "    " + "\n    ".join(self._report.lines()), 0)
        if self.images and self._config.get("augment", {}).get("enabled"):
            self._log_preview()
        self.writer.flush()

    @staticmethod
    def default_run_name(config: dict) -> str:
        """``lenet5-augment-20250101-120000``: the model, how it learns, and when (runs sort by time)."""
        parts = [str(config.get("model", "model"))]
        if config.get("pretrained"):
            parts.append("finetune" if config.get("transfer_mode") == "finetune" else "pretrained")
        if (config.get("augment") or {}).get("enabled"):
            parts.append("augment")
        parts.append(time.strftime("%Y%m%d-%H%M%S"))
        return "-".join(parts)

    def _image_size(self) -> int:
        size = self._config.get("image_size")
        if size:
            return int(size)
        from ..models import get_spec

        return get_spec(self._config.get("model", "lenet5")).default_image_size

    def _log_preview(self) -> None:
        from ..data.augment import AugmentSettings
        from ..data.imageio import is_image_name

        sources = []
        dataset = getattr(self.trainer, "dataset", None)
        if dataset is not None and dataset.train:
            seen = set()
            for s in dataset.train:  # one photo per class, up to four classes
                if s.label not in seen:
                    seen.add(s.label)
                    sources.append(s.path)
                if len(sources) == 4:
                    break
        elif self._report is not None:
            first = next((p for p in sorted(Path(self._report.root).rglob("*")) if is_image_name(p)), None)
            sources = [first] if first else []
        if not sources:
            return
        settings = AugmentSettings.from_dict(self._config.get("augment"))
        grid = augmentation_grid(sources, settings, self._image_size(), seed=int(self._config.get("seed", 0)))
        self.writer.add_image("augmentation/preview", _array(grid), 0, dataformats="HWC")

    def learning_rate(self, phase: str) -> float:
        lr = float(self._config.get("lr", float("nan")))
        return lr * float(self._config.get("finetune_lr_factor", 1.0)) if phase == "finetune" else lr

    def _epoch(self, ev: EpochEnd) -> None:
        w = self.writer
        if w is None:
            return
        w.add_scalar("loss/train", ev.train_loss, ev.epoch)
        w.add_scalar("loss/val", ev.val_loss, ev.epoch)
        w.add_scalar("accuracy/train", ev.train_acc, ev.epoch)
        w.add_scalar("accuracy/val", ev.val_acc, ev.epoch)
        w.add_scalar("learning_rate", self.learning_rate(ev.phase), ev.epoch)
        w.add_scalar("speed/images_per_s", ev.images_per_s, ev.epoch)
        w.flush()

    def _hparams(self) -> dict:
        """The run's settings as TensorBoard hparams (bool, int, float or str only)."""
        c = self._config
        aug = c.get("augment") or {}
        hp = {k: c.get(k) for k in ("model", "epochs", "batch_size", "lr", "optimizer", "weight_decay", "seed",
                                    "val_fraction", "pretrained", "patience")}
        hp["image_size"] = self._image_size()
        hp["augment"] = bool(aug.get("enabled"))
        if hp["augment"]:
            for k in ("crop_scale_min", "rotation", "brightness", "hflip"):
                hp[f"augment.{k}"] = aug.get(k)
        if c.get("pretrained"):
            hp["transfer_mode"] = c.get("transfer_mode")
            if c.get("transfer_mode") == "finetune":
                hp["finetune_epochs"] = c.get("finetune_epochs")
                hp["finetune_lr_factor"] = c.get("finetune_lr_factor")
        if self._started is not None:
            hp["mode"] = self._started.mode
            hp["n_train"] = self._started.n_train
            hp["n_val"] = self._started.n_val
        return {k: ("" if v is None else v) for k, v in hp.items()}

    def _finish(self, ev: Finished) -> None:
        from torch.utils.tensorboard.summary import hparams

        w = self.writer
        if w is None:  # the run failed before it started: nothing to show
            return
        best = next((e for e in ev.history if e.epoch == ev.best_epoch), None)
        step = ev.best_epoch or (ev.history[-1].epoch if ev.history else 0)
        metrics = {"hparam/val_accuracy": ev.best_val_acc,
                   "hparam/val_loss": best.val_loss if best else float("nan"),
                   "hparam/train_accuracy": best.train_acc if best else float("nan"),
                   "hparam/best_epoch": float(ev.best_epoch)}
        exp, ssi, sei = hparams(self._hparams(), metrics)
        for summary in (exp, ssi, sei):
            w.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            w.add_scalar(tag, value, step)
        m = ev.metrics
        if self.images and m is not None:
            w.add_image("evaluation/confusion_matrix", _array(confusion_image(m.confusion, m.classes)), step,
                        dataformats="HWC")
            w.add_image("evaluation/mistakes", _array(mistakes_image(m.mistakes, self.n_mistakes)), step,
                        dataformats="HWC")
        result = f"**{ev.status.replace('_', ' ')}**: {ev.reason}"
        if ev.best_path:
            result += f"  \nmodel file: `{ev.best_path}`"
        if m is not None:
            result += "\n\n    " + "\n    ".join(m.lines())
        w.add_text("run/result", result, step)
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            finally:
                self.writer = None
