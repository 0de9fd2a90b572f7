"""Writing the trained model file for :class:`~.trainer.Trainer` (mixed in as :class:`ModelWriter`).

While training, every epoch that improves on the best is written to the model file at once (atomically;
at most every :data:`INTERIM_EVERY_S` seconds when epochs take well under a second), so a process that is
killed keeps the best model so far. After the last epoch it restores the best epoch's weights, measures
them on the validation set
(with the mirror images averaged in when the config asks for test-time augmentation, over every
process's shard under torchrun), and writes the model file with its metadata: classes, image size,
normalisation, config, validation metrics, epoch history and the dataset split used, and what
:class:`~.answer_fit.AnswerFitting` fits on the validation photos (the temperature of the
probabilities, the unfamiliar-photo check).

The class it is mixed into provides ``model``, ``dataset``, ``dist``, ``metrics``, ``_state`` (the
:class:`~.fit_state.FitState` of the fit), ``_emit``, and ``_validate`` and ``_mirrored_probs``
(:class:`~.loop.TrainingLoop`).
"""

from __future__ import annotations

import time
from dataclasses import asdict

from ..data.scan import file_hash
from ..data.split import SPLIT_VERSION
from ..events import CheckpointSaved
from ..inference.evaluation import compute_metrics
from ..storage.modelfile import save_model


#: an improving epoch shorter than this waits until this long after the previous interim save
INTERIM_EVERY_S = 10.0

#: models with at most this many numbers also keep their first saved epoch's weights in the model file
#: (LeNet-5: 61k; the Network tab shows what training changed)
FIRST_EPOCH_MAX_PARAMS = 1_000_000


class ModelWriter:
    """The best epoch's weights, measured, into the model file."""

    _last_interim = 0.0

    def _save_improved(self, model, epoch_seconds: float) -> None:
        """The epoch just ended is the best so far: write it to the model file now, so a killed process
        keeps it (the final file, measured and complete, replaces it at the end)."""
        state = self._state
        if state.first_epoch is None and sum(p.numel() for p in model.parameters()) <= FIRST_EPOCH_MAX_PARAMS:
            state.first_epoch = (state.best_epoch, {k: v.detach().to("cpu").clone()
                                                    for k, v in model.state_dict().items()})
        if state.out_path is None or (self.dist is not None and not self.dist.is_main) or not state.meta:
            return
        now = time.monotonic()
        if epoch_seconds < 1.0 and now - self._last_interim < INTERIM_EVERY_S:
            return
        self._last_interim = now
        meta = state.meta
        metrics = {"val_accuracy": state.best_val_acc, "val_loss": state.best_loss, "best_epoch": state.best_epoch,
                   "history": [asdict(e) for e in state.history], "interim": True,
                   "dataset": self._dataset_meta()}
        path = save_model(state.out_path, model, model_name=state.config.model, classes=meta["classes"],
                          image_size=meta["size"], mean=meta["mean"], std=meta["std"],
                          config=state.config.to_dict(), metrics=metrics, first_epoch=state.first_epoch)
        state.saved_path = str(path)

    def _dataset_meta(self) -> dict:
        report = self.dataset.report
        return {"root": str(report.root), "val_root": str(report.val_root) if report.val_root else None,
                "val_source": report.val_source, "val_fraction": report.val_fraction,
                "split_seed": report.split_seed,
                "split_version": SPLIT_VERSION if report.val_source == "split" else None}

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
        if state.out_path is None:
            return
        extra_meta, extras = self._fit_answers(model)  # every process takes part (its shard's photos)
        if self.dist is not None and not self.dist.is_main:
            return
        metrics = {
            "val_accuracy": acc, "val_loss": state.best_loss, "best_epoch": state.best_epoch,
            "n_train": len(self.dataset.train), "n_val": self.metrics.n, "val_seen_in_training": state.val_seen,
            "per_class": self.metrics.per_class, "confusion": self.metrics.confusion,
            "history": [asdict(e) for e in state.history],
            "dataset": self._dataset_meta(),
            # the training photos' bytes, hashed: an evaluation says how many test photos it trained on
            "train_hashes": sorted({h for h in (file_hash(s.path) for s in self.dataset.train) if h}),
        }
        cal = extra_meta.get("calibration")
        if cal:  # in the model file's metrics and in the run's (the Training tab's reliability diagram)
            metrics["ece_before"], metrics["ece_after"] = cal["ece_before"], cal["ece_after"]
            self.metrics.calibration = cal
            self.metrics.ece, self.metrics.ece_uncalibrated = cal["ece_after"], cal["ece_before"]
            self.metrics.temperature = cal["temperature"]
        path = save_model(state.out_path, model, model_name=state.config.model, classes=meta["classes"],
                          image_size=meta["size"], mean=meta["mean"], std=meta["std"],
                          config=state.config.to_dict(), metrics=metrics, first_epoch=state.first_epoch,
                          extra_meta=extra_meta, extras=extras)
        state.saved_path = str(path)
        self._emit(CheckpointSaved(str(path), state.best_epoch, acc))
