"""After the last epoch, what makes the model's answers trustworthy (mixed into the Trainer as
:class:`AnswerFitting`, called by :class:`~.model_writer.ModelWriter` before the model file is written):

* the temperature of its probabilities (:func:`~..inference.calibration.calibrate`), fitted on the
  validation photos' logits, with the ECE before and (cross-fitted) after;
* its unfamiliar-photo check (:func:`~..inference.unfamiliar.fit`): statistics from the training
  photos' embeddings (the input of the last linear layer), the threshold from the validation photos'.

The photos go through the model as validation does (no augmentation; mode ``features`` reuses the
cached features). Under torchrun each process embeds its shard and the shards are gathered: every
process must call :meth:`AnswerFitting._fit_answers`; the main one writes what it returns.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..inference.calibration import calibrate
from ..inference.unfamiliar import METHOD_FOR, capture_embedding, fit, last_linear, model_kind


class AnswerFitting:
    """Calibration and the unfamiliar-photo check of the best epoch's model."""

    @torch.no_grad()
    def _embed_set(self, model, which: str) -> tuple[Optional[np.ndarray], np.ndarray]:
        """(embeddings, raw logits) of every photo of the ``which`` ("train" or "val") set; the
        embeddings are None for a model without a final linear layer."""
        state = self._state
        self._set_train_mode(model, False)
        n = len(state.ytrain if which == "train" else state.yval)
        logits = []
        with capture_embedding(model) as seen:
            for start in range(0, n, 256):
                idx = torch.arange(start, min(n, start + 256))
                logits.append(self._logits(model, idx, False, which).float().cpu())
        if not logits:
            return np.zeros((0, 0), np.float32), np.zeros((0, len(state.meta["classes"])), np.float32)
        return (torch.cat(seen).numpy() if seen else None), torch.cat(logits).numpy()

    def _fit_answers(self, model) -> tuple[dict, dict]:
        """(extra metadata, extra tensors) for the model file: "calibration" and "unfamiliar"."""
        state = self._state
        method = self.unfamiliar_method or METHOD_FOR[model_kind(state.config.model)]
        if last_linear(model) is None:  # nothing to measure a distance on: the logits' energy
            method = "energy"
        val_emb, val_logits = self._embed_set(model, "val")
        yval, ytrain = state.yval.cpu().numpy(), state.ytrain.cpu().numpy()
        train_emb: Optional[np.ndarray] = None
        if method in ("mahalanobis", "knn"):
            train_emb, _ = self._embed_set(model, "train")
        if self.dist is not None:  # every shard, in rank order
            parts = self.dist.gather((val_emb, val_logits, yval, train_emb, ytrain))
            val_emb, val_logits, yval = (np.concatenate([p[i] for p in parts if len(p[2])]) for i in range(3))
            ytrain = np.concatenate([p[4] for p in parts])
            if train_emb is not None:
                train_emb = np.concatenate([p[3] for p in parts if len(p[4])])
        if len(yval) < 4:
            return {"calibration": None, "unfamiliar": None, "answers_note": "too few validation photos"}, {}
        calibration = calibrate(val_logits, yval, seed=state.config.seed)
        unfamiliar = fit(method, train_emb, ytrain, val_emb, val_logits, seed=state.config.seed)
        meta, tensors = unfamiliar.to_meta()
        return {"calibration": calibration.to_meta(), "unfamiliar": meta}, tensors

    #: the unfamiliarity method to fit (None: :data:`~..inference.unfamiliar.METHOD_FOR` the model kind)
    unfamiliar_method: Optional[str] = None
