"""Prediction from a model file: the same decoding and normalisation as validation.

A model that splits into a feature extractor and a head (a pretrained backbone's
:class:`~.models.registry.BackboneClassifier`) runs its extractor through onnxruntime on a CPU,
like training does (:class:`~.features.FeatureExtractor`: the same cached ONNX file, checked against
PyTorch before first use), and its head in PyTorch: 1 image took 5.4 ms instead of 13.4 ms
(EfficientNet-Lite0, 1 thread, 2 busy cores). A backbone whose ONNX file is not cached yet (a
fine-tuned one) is exported only for a batch of :data:`EXPORT_BATCH` or more, where the ~2 s export
pays off; smaller calls run in PyTorch until then. ``model`` stays the PyTorch model (Grad-CAM and
the layer summary use it).

Probabilities are calibrated: the logits are divided by the model file's temperature
(:mod:`.calibration`; 1 for files without one). Each prediction also says whether the photo is
unlike the training photos (:mod:`.unfamiliar`): ``unfamiliar`` is None when the model file has no
statistics for it (older files) or the check is turned off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..device import cpu_threads, pick_device
from ..errors import CatdogError, ImageError
from ..data.imageio import Source, load_square_array
from ..storage.modelfile import load_model
from .calibration import Calibration
from .features import FeatureExtractor
from .unfamiliar import Unfamiliarity, capture_embedding, verdict
from ..models import ModelInput, feature_parts, get_spec, prefers_channels_last
from ..text import probability_text

#: the smallest batch for which the predictor exports a backbone that has no cached ONNX file yet
EXPORT_BATCH = 64


@dataclass(frozen=True)
class Prediction:
    source: str
    label: str  # the most probable class
    confidence: float  # its probability
    probabilities: tuple[tuple[str, float], ...]  # every class, most probable first
    error: Optional[str] = None  # set when the image could not be read
    #: True: unlike the photos the model was trained on; None: not checked (no statistics, or off)
    unfamiliar: Optional[bool] = None
    unfamiliar_score: Optional[float] = None  # higher is less familiar; flagged above the threshold
    unfamiliar_threshold: Optional[float] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        if self.error:
            return {"image": self.source, "error": self.error}
        return {"image": self.source, "label": self.label, "confidence": self.confidence,
                "probabilities": dict(self.probabilities), "unfamiliar": self.unfamiliar,
                "unfamiliar_score": self.unfamiliar_score, "unfamiliar_threshold": self.unfamiliar_threshold}

    def describe(self) -> str:
        """'95.1% dog, 4.9% cat'"""
        if self.error:
            return self.error
        return ", ".join(f"{probability_text(p)} {c}" for c, p in self.probabilities)


class Predictor:
    """Load a model file once, classify many images."""

    def __init__(self, model_path: str | Path, device: str | torch.device = "auto", tta: Optional[bool] = None,
                 unfamiliar_check: bool = True):
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.path = Path(model_path)
        self.model, self.info = load_model(model_path, self.device)
        #: the fitted temperature and its measurement (None: an older file, probabilities as trained)
        self.calibration = Calibration.from_meta(self.info.meta.get("calibration"))
        self.temperature = self.calibration.temperature if self.calibration else 1.0
        #: the unfamiliar-photo check (None: the file has no statistics for it)
        self.unfamiliarity = Unfamiliarity.from_meta(self.info.meta.get("unfamiliar"), self.info.extras)
        #: False turns the check off (the app's setting): predictions then say None
        self.unfamiliar_check = unfamiliar_check
        #: test-time augmentation: average the photo's and its mirror image's probabilities (the
        #: model file's ``tta`` setting, unless ``tta`` is given)
        self.tta = bool(self.info.config.get("tta", False)) if tta is None else bool(tta)
        channels_last = prefers_channels_last(self.model)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.input = ModelInput(self.info.mean, self.info.std, self.device, channels_last)
        # the model's CPU thread hint, as in training: LeNet-5's tiny layers run 5-10x faster on one
        # thread than on two busy cores (64 images: 480-600 img/s on 2 threads, 2,400-6,400 on 1)
        try:
            self._threads = int(get_spec(self.info.model_name).defaults.get("threads", 0))
        except CatdogError:
            self._threads = 0
        parts = feature_parts(self.model) if self.device.type == "cpu" else None
        self._head = parts[1] if parts else None
        self._features = FeatureExtractor(parts[0], self.info.model_name, self.info.image_size, self.device) \
            if parts else None

    @property
    def feature_path(self) -> str:
        """How the model runs: "onnxruntime" (extractor) + PyTorch (head), or "pytorch"; "undecided"
        before the first prediction."""
        if self._features is None:
            return "pytorch"
        return self._features.path or "undecided"

    @property
    def notice(self) -> Optional[str]:
        """The one line saying why onnxruntime is not used after all (None when it is, or never tried)."""
        return self._features.notice if self._features is not None else None

    @property
    def classes(self) -> list[str]:
        return self.info.classes

    def preprocess(self, source: Source) -> np.ndarray:
        """uint8 (3, S, S): exactly what the model sees (raises ImageError)."""
        return load_square_array(source, self.info.image_size).transpose(2, 0, 1)

    def to_input(self, arrays: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self.input(arrays)

    @property
    def unfamiliar_available(self) -> bool:
        return self.unfamiliarity is not None

    @property
    def unfamiliar_notice(self) -> Optional[str]:
        """Why predictions carry no unfamiliar flag (None when they do)."""
        from .unfamiliar import NOT_AVAILABLE

        if self.unfamiliarity is None:
            return NOT_AVAILABLE
        if not self.unfamiliar_check:
            return "unfamiliar-photo check turned off"
        return None

    def verdict(self) -> str:
        """The line shown for a flagged photo."""
        return verdict(self.classes)

    def probabilities(self, arrays: np.ndarray | torch.Tensor) -> np.ndarray:
        """Calibrated class probabilities (N, K) for uint8 images (N, 3, S, S)."""
        return self.outputs(arrays)[0]

    def outputs(self, arrays: np.ndarray | torch.Tensor, logits_only: bool = False
                ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """(calibrated probabilities (N, K), raw logits (N, K), unfamiliarity scores (N,) or None) for
        uint8 images (N, 3, S, S). The logits and scores are the photo's own (not its mirror image's)."""
        u = self.unfamiliarity if (self.unfamiliar_check and not logits_only) else None
        if u is None:
            probs, logits = self._forward(arrays)
            return probs, logits, None
        if u.method in ("msp", "energy"):  # from the logits alone
            probs, logits = self._forward(arrays)
            return probs, logits, u.scores(None, logits)
        with capture_embedding(self.model) as seen:
            probs, logits = self._forward(arrays)
        return probs, logits, u.scores(torch.cat(seen)[:len(logits)].numpy(), logits)

    def embeddings(self, arrays: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (N, F): the input of the last linear layer, raw logits (N, K))."""
        with capture_embedding(self.model) as seen:
            _probs, logits = self._forward(arrays)
        return torch.cat(seen)[:len(logits)].numpy(), logits

    @torch.inference_mode()
    def _forward(self, arrays) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and the raw logits (N, K)."""
        # a few images: one thread. Their small ops gain little from a second thread on an idle
        # machine, and on busy shared cores every op waits for the slower thread: ResNet-18 on 1
        # image, 2 shared cores at load ~3: 1.8 img/s on 2 threads, 18.6 on 1 (MobileNetV3: 1017 ms
        # vs 17 ms); at 32 images 1 thread still won, 14.4 vs 19.6 img/s, but that one can go either way
        want = self._threads or (1 if len(arrays) < 8 else 0)
        with cpu_threads(want if self.device.type == "cpu" else 0):
            x = self.to_input(arrays)
            n = len(x)
            if self.tta:  # the mirror images in the same batch: one pass
                x = torch.cat([x, x.flip(-1)])
            if self._features is not None:
                logits = self._head(self._features(x, allow_export=len(x) >= EXPORT_BATCH))
            else:
                logits = self.model(x)
            logits = logits.float()
            p = torch.softmax(logits / self.temperature, 1)
            if self.tta:
                p = (p[:n] + p[n:]) / 2
            return p.cpu().numpy(), logits[:n].cpu().numpy()

    def _prediction(self, name: str, probs: np.ndarray, score: Optional[float] = None) -> Prediction:
        order = np.argsort(-probs)
        pairs = tuple((self.classes[i], float(probs[i])) for i in order)
        if score is None:
            return Prediction(name, pairs[0][0], pairs[0][1], pairs)
        u = self.unfamiliarity
        return Prediction(name, pairs[0][0], pairs[0][1], pairs, unfamiliar=bool(u.flags(np.array([score]))[0]),
                          unfamiliar_score=float(score), unfamiliar_threshold=float(u.threshold))

    def predict(self, source: Source, name: Optional[str] = None) -> Prediction:
        """Classify one image; raises :class:`ImageError` if it cannot be read."""
        name = name or (str(source) if not isinstance(source, (bytes, bytearray)) else "image")
        probs, _logits, scores = self.outputs(self.preprocess(source)[None])
        return self._prediction(name, probs[0], None if scores is None else scores[0])

    def predict_many(self, sources: Sequence[Source], batch_size: int = 64, progress=None, cancel=None
                     ) -> list[Prediction]:
        """Classify many images in batches; unreadable ones get a Prediction with ``error`` set."""
        results: list[Optional[Prediction]] = [None] * len(sources)
        for start in range(0, len(sources), batch_size):
            if cancel is not None and cancel.is_set():
                break
            chunk = list(range(start, min(len(sources), start + batch_size)))
            arrays, keep = [], []
            for i in chunk:
                try:
                    arrays.append(self.preprocess(sources[i]))
                    keep.append(i)
                except ImageError as e:
                    results[i] = Prediction(str(sources[i]), "", 0.0, (), error=str(e))
            if arrays:
                probs, _logits, scores = self.outputs(np.stack(arrays))
                for j, (i, p) in enumerate(zip(keep, probs)):
                    results[i] = self._prediction(str(sources[i]), p, None if scores is None else scores[j])
            if progress:
                progress(chunk[-1] + 1, len(sources))
        return [r for r in results if r is not None]
