"""Writing the trained model file for :class:`~.trainer.Trainer` (mixed in as :class:`ModelWriter`).

After the last epoch it restores the best epoch's weights, measures them on the validation set
(with the mirror images averaged in when the config asks for test-time augmentation, over every
process's shard under torchrun), and writes the model file with its metadata: classes, image size,
normalisation, config, validation metrics, epoch history and the dataset split used.

The class it is mixed into provides ``model``, ``dataset``, ``dist``, ``metrics``, ``_state`` (the
:class:`~.fit_state.FitState` of the fit), ``_emit``, and ``_validate`` and ``_mirrored_probs``
(:class:`~.loop.TrainingLoop`).
"""

from __future__ import annotations

from dataclasses import asdict

from ..data.split import SPLIT_VERSION
from ..events import CheckpointSaved
from ..inference.evaluation import compute_metrics
from ..storage.modelfile import save_model


class ModelWriter:
    """The best epoch's weights, measured, into the model file."""

    def _save_best(self) -> None:
        """Restore the best epoch's weights, measure them, and write the model file."""
        state = self._state
        if state.best_state is None or self.model is None:
            return
        model = self.model
        model.load_state_dict(state.best_state)
        _loss, acc, probs = self._validate(model)
        if state.config.tta:  # measured as it will predict: with the mirror images averaged in
            probs = (probs + self._mirrored_probs(model)) / 2
            correct, n = float((probs.argmax(1) == state.yval).sum().item()), float(len(state.yval))
            if self.dist is not None:
                correct, n = self.dist.sum(correct, n)
            acc = correct / max(n, 1.0)
        conf, pred = probs.max(1)
        meta = state.meta
        y, pred, conf, paths = (state.yval.cpu().tolist(), pred.cpu().tolist(), conf.cpu().tolist(),
                                list(state.val_cache.paths))
        if self.dist is not None:  # the whole validation set's metrics, from every rank's shard
            parts = self.dist.gather((y, pred, conf, [str(p) for p in paths]))
            y, pred, conf, paths = ([v for part in parts for v in part[i]] for i in range(4))
        self.metrics = compute_metrics(y, pred, meta["classes"], conf, paths)
        if state.out_path is None or (self.dist is not None and not self.dist.is_main):
            return
        report = self.dataset.report
        metrics = {
            "val_accuracy": acc, "val_loss": state.best_loss, "best_epoch": state.best_epoch,
            "n_train": len(self.dataset.train), "n_val": self.metrics.n, "val_seen_in_training": state.val_seen,
            "per_class": self.metrics.per_class, "confusion": self.metrics.confusion,
            "history": [asdict(e) for e in state.history],
            "dataset": {"root": str(report.root), "val_root": str(report.val_root) if report.val_root else None,
                        "val_source": report.val_source, "val_fraction": report.val_fraction,
                        "split_seed": report.split_seed,
                        "split_version": SPLIT_VERSION if report.val_source == "split" else None},
        }
        path = save_model(state.out_path, model, model_name=state.config.model, classes=meta["classes"],
                          image_size=meta["size"], mean=meta["mean"], std=meta["std"],
                          config=state.config.to_dict(), metrics=metrics)
        state.saved_path = str(path)
        self._emit(CheckpointSaved(str(path), state.best_epoch, acc))
