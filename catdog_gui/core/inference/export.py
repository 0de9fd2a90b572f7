"""Export a model file to ONNX or TorchScript, for use outside catdog-gui.

The exported network is the trained model followed by a softmax:

* input ``"input"``: float32 ``(N, 3, S, S)``, RGB, already normalised as
  ``(pixel / 255 - mean) / std`` per channel; ``N`` (the batch) is free;
* output ``"probabilities"``: float32 ``(N, K)``, each row sums to 1; column ``i`` is
  ``classes[i]``. (Probabilities, not logits: what a user of the file wants, and what catdog-gui's
  own predictor reports, so the two can be compared number for number.)

Everything needed to feed it travels inside the file as one JSON document (see
:func:`export_metadata`): the class names, the input size ``S``, ``mean``/``std`` and the resize
rule (``"shorter side to S (bilinear), then centre crop S x S"``, after EXIF rotation, transparent
pixels on white). ONNX keeps it in ``metadata_props`` under the key ``"catdog.json"`` (with a few
readable copies: ``classes``, ``image_size``, ``mean``, ``std``, ``resize``); TorchScript keeps it in
the archive as the extra file ``"catdog.json"`` (``torch.jit.load(path, _extra_files=...)``).
:func:`read_metadata` reads it back from either.

ONNX export uses PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``):
it needs no extra dependency besides the ``onnx`` package (used to add the metadata and check the
graph), is deterministic and fast for these convolutional networks. If a future PyTorch drops it,
the ``torch.export``-based exporter (``dynamo=True``, which needs ``onnxscript``) is used instead.

Files are written atomically (:func:`~.modelfile.atomic_write`): the export is built in memory,
verified against the PyTorch model on a random batch (TorchScript always; ONNX when ``onnxruntime``
is installed), and only then written to a temporary file beside the destination and renamed into
place. An export that fails leaves no file behind and raises :class:`CatdogError` saying why.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..errors import CatdogError
from ..data.imageio import REDUCING_GAP
from ..storage.modelfile import ModelInfo, atomic_write, library_versions, load_model

FORMATS = ("onnx", "torchscript")
#: the default file suffix of each format
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
METADATA_KEY = "catdog.json"
EXPORT_FORMAT = "catdog-gui-export"
EXPORT_VERSION = 1
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
#: the ONNX file's second output (model files with the unfamiliar-photo statistics)
SCORE_NAME = "unfamiliar_score"
RESIZE_RULE = "shorter-side-then-centre-crop"
DEFAULT_OPSET = 17
#: largest |difference| allowed between the exported file and PyTorch when verifying an export
VERIFY_TOLERANCE = 1e-4

StepProgress = Callable[[str], None]


class ExportError(CatdogError):
    """An export failed; nothing was written."""


class _WithSoftmax(nn.Module):
    """The classifier followed by a softmax over classes of its logits divided by the model file's
    temperature: outputs the calibrated probabilities. With ``score`` (ONNX, a model file with the
    statistics), also the unfamiliarity score of each photo."""

    def __init__(self, model: nn.Module, temperature: float = 1.0, score: Optional[nn.Module] = None):
        super().__init__()
        self.model = model
        self.temperature = float(temperature)
        self.score = score
        self._seen: list = []
        if score is not None:
            from .unfamiliar import last_linear

            last_linear(model).register_forward_pre_hook(lambda _m, inputs: self._seen.append(inputs[0]))

    def forward(self, x: torch.Tensor):
        self._seen.clear()
        logits = self.model(x)
        probs = torch.softmax(logits / self.temperature, dim=1)
        if self.score is None:
            return probs
        return probs, self.score(self._seen[-1], logits)


def format_for_path(path: Path | str) -> Optional[str]:
    """The format a file name suggests (``.onnx`` -> onnx, ``.pt``/``.ts``/``.torchscript`` -> torchscript)."""
    name = str(path).lower()
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith((".pt", ".pth", ".ts", ".torchscript", ".jit")):
        return "torchscript"
    return None


def default_export_path(model_path: Path | str, fmt: str) -> Path:
    """``model.pt`` -> ``model.onnx`` / ``model.torchscript.pt`` beside it."""
    p = Path(model_path)
    return p.with_name(p.stem + SUFFIXES[fmt])


def export_metadata(info: ModelInfo, source: Optional[Path] = None) -> dict:
    """The JSON document stored in every exported file."""
    s = info.image_size
    m = info.metrics
    meta = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "model": info.model_name,
        "classes": info.classes,
        "image_size": s,
        "mean": [float(v) for v in info.mean],
        "std": [float(v) for v in info.std],
        "resize": RESIZE_RULE,
        # what imageio.load_square_array does, so a plain-PIL recipe gives the same probabilities
        # test-time augmentation is not inside the exported graph: say so, and how to reproduce it
        "tta": bool(info.config.get("tta", False)),
        "tta_note": ("the app averages these probabilities with those of the mirror image (left-right flip "
                     "of the input); this file does not: run it on both and average to match the app")
                    if info.config.get("tta") else "",
        "jpeg_draft": True,
        "reducing_gap": REDUCING_GAP,
        "preprocessing": (
            f"decode (a JPEG in PIL draft mode at {s}x{s}), apply the EXIF rotation, convert to RGB (transparent "
            f"pixels on white), resize the shorter side to {s} pixels (bilinear, reducing_gap {REDUCING_GAP:g} when "
            f"shrinking more than 2x), crop the centre {s}x{s} square, scale pixels to 0..1 (/255), subtract mean and "
            f"divide by std per channel, layout (N, 3, {s}, {s}) float32"
        ),
        "input_name": INPUT_NAME,
        "input_shape": ["batch", 3, s, s],
        "output_name": OUTPUT_NAME,
        "output": "probabilities",
        "output_shape": ["batch", len(info.classes)],
        "exported": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "exported_by": library_versions(),
        "trained": info.meta.get("created"),
    }
    from .calibration import Calibration
    from .unfamiliar import Unfamiliarity, verdict

    cal = Calibration.from_meta(info.meta.get("calibration"))
    meta["temperature"] = cal.temperature if cal else 1.0
    meta["temperature_note"] = ("the probabilities are softmax(logits / temperature): temperature scaling fitted "
                                "on the validation photos" if cal else "no temperature in the model file")
    unf = Unfamiliarity.from_meta(info.meta.get("unfamiliar"), info.extras)
    if unf is None:
        meta["unfamiliar"] = None
    else:
        meta["unfamiliar"] = {
            "method": unf.method, "threshold": unf.threshold, "target_pass": unf.target_pass,
            "output": SCORE_NAME, "verdict": verdict(info.classes),
            "rule": f"a photo is unfamiliar when {SCORE_NAME} > threshold (ONNX output {SCORE_NAME}; a TorchScript "
                    "export gives the probabilities only)"}
    if source is not None:
        meta["source_file"] = Path(source).name
    if "val_accuracy" in m:
        meta["val_accuracy"] = m["val_accuracy"]
    return meta


# ------------------------------------------------------------------------------------------------
# the two exporters: module -> bytes


@contextlib.contextmanager
def _quiet():
    """The exporters warn a lot (deprecations, tracer notes about constant shapes): none of it is
    actionable here, and pytest turns warnings attributed to this package into errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _onnx_bytes(module: nn.Module, example: torch.Tensor, opset: int) -> bytes:
    outputs = [OUTPUT_NAME] + ([SCORE_NAME] if getattr(module, "score", None) is not None else [])
    common = dict(input_names=[INPUT_NAME], output_names=outputs, opset_version=opset)
    buf = io.BytesIO()
    with _quiet():
        try:
            torch.onnx.export(
                module, (example,), buf, dynamo=False, do_constant_folding=True,
                dynamic_axes={INPUT_NAME: {0: "batch"}, **{o: {0: "batch"} for o in outputs}}, **common,
            )
        except (TypeError, ValueError, NotImplementedError) as e:  # a PyTorch without the legacy exporter
            if not any(w in str(e).lower() for w in ("dynamo", "torchscript")):
                raise
            program = torch.onnx.export(
                module, (example,), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},), **common,
            )
            buf = io.BytesIO()
            program.save(buf)
    return buf.getvalue()


def _add_onnx_metadata(data: bytes, meta: dict) -> bytes:
    import onnx

    proto = onnx.load_model_from_string(data)
    onnx.checker.check_model(proto)
    proto.producer_name = "catdog-gui"
    proto.producer_version = str(meta["exported_by"].get("catdog_gui", ""))
    proto.doc_string = (f"{meta['model']} classifier for {', '.join(meta['classes'])}. Input: "
                        f"{meta['preprocessing']}. Output: class probabilities.")
    entries = {
        METADATA_KEY: json.dumps(meta),
        "classes": json.dumps(meta["classes"]),
        "image_size": str(meta["image_size"]),
        "mean": json.dumps(meta["mean"]),
        "std": json.dumps(meta["std"]),
        "resize": meta["resize"],
    }
    del proto.metadata_props[:]
    for k, v in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = k, v
    return proto.SerializeToString()


def _torchscript_bytes(module: nn.Module, example: torch.Tensor, meta: dict) -> bytes:
    buf = io.BytesIO()
    with _quiet():
        # tracing, not scripting: the networks are plain feed-forward graphs for one input size (the
        # spatial padding arithmetic becomes constants for that size; the batch size stays free)
        traced = torch.jit.trace(module, (example,), check_trace=False)
        torch.jit.save(traced, buf, _extra_files={METADATA_KEY: json.dumps(meta)})
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------
# verification: run the exported bytes and compare with PyTorch


def _verify(fmt: str, data: bytes, module: nn.Module, size: int) -> Optional[float]:
    """Largest |difference| between the export and ``module`` on a random batch of 3 (None: not checked)."""
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = module(x)
    ref, ref_score = (ref[0].numpy(), ref[1].numpy()) if isinstance(ref, tuple) else (ref.numpy(), None)
    score = None
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        outs = sess.run(None, {INPUT_NAME: x.numpy()})
        out, score = outs[0], (outs[1] if len(outs) > 1 else None)
    else:
        with _quiet():
            loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
        with torch.no_grad():
            out = loaded(x).numpy()
    if out.shape != ref.shape:
        raise ExportError(f"the exported {fmt} file gives shape {tuple(out.shape)} instead of {tuple(ref.shape)}")
    diff = float(np.abs(out - ref).max())
    if ref_score is not None:  # the unfamiliarity score, relative to its size (distances reach thousands)
        if score is None or score.shape != ref_score.shape:
            raise ExportError(f"the exported {fmt} file has no {SCORE_NAME} output")
        diff = max(diff, float(np.max(np.abs(score - ref_score) / np.maximum(np.abs(ref_score), 1.0))))
    return diff


# ------------------------------------------------------------------------------------------------


def export_model(
    model_path: Path | str,
    fmt: str,
    out_path: Path | str,
    opset: int = DEFAULT_OPSET,
    *,
    verify: bool = True,
    progress: Optional[StepProgress] = None,
) -> Path:
    """Export the model file ``model_path`` to ``out_path`` as ``fmt`` ("onnx" or "torchscript").

    Returns the written path. Raises :class:`CatdogError` (nothing written) when the model file
    cannot be read, the destination cannot be written, an exporter dependency is missing, the
    exporter fails, or (``verify``) the exported file does not reproduce the model's probabilities.
    """
    say = progress or (lambda _msg: None)
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise CatdogError(f"unknown export format {fmt!r}: choose {' or '.join(FORMATS)}")
    model_path, out = Path(model_path).expanduser(), Path(out_path).expanduser()
    if out.is_dir():
        raise CatdogError(f"cannot export to {out}: it is a folder; give a file name")
    if not out.parent.is_dir():
        raise CatdogError(f"cannot export to {out}: the folder {out.parent} does not exist")
    if out.exists() and model_path.exists() and out.resolve() == model_path.resolve():
        raise CatdogError(f"refusing to overwrite the model file {model_path.name} with its export: "
                          "choose another file name")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise CatdogError("ONNX export needs the 'onnx' package: pip install onnx onnxruntime "
                              "(or pip install 'catdog-gui[export]')") from None
        try:
            opset = int(opset)
        except (TypeError, ValueError):
            raise CatdogError(f"ONNX opset {opset!r} is not a whole number") from None
        from torch.onnx import _constants as C

        lo, hi = 9, int(getattr(C, "ONNX_MAX_OPSET", 20))
        if not lo <= opset <= hi:
            raise CatdogError(f"ONNX opset {opset} is not supported: choose {lo} to {hi} (default {DEFAULT_OPSET})")

    say("loading the model")
    model, info = load_model(model_path, "cpu")
    from .calibration import Calibration
    from .unfamiliar import Unfamiliarity

    cal = Calibration.from_meta(info.meta.get("calibration"))
    unf = Unfamiliarity.from_meta(info.meta.get("unfamiliar"), info.extras)
    score = unf.torch_module() if (unf is not None and fmt == "onnx") else None
    module = _WithSoftmax(model, cal.temperature if cal else 1.0, score).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    size = info.image_size
    meta = export_metadata(info, model_path)
    example = torch.zeros(2, 3, size, size)

    say(f"exporting to {fmt}")
    try:
        with torch.no_grad():
            if fmt == "onnx":
                data = _add_onnx_metadata(_onnx_bytes(module, example, opset), meta)
            else:
                data = _torchscript_bytes(module, example, meta)
    except CatdogError:
        raise
    except Exception as e:  # the exporters raise many types; the message is what a person can act on
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ExportError(f"exporting {model_path.name} to {fmt} failed: {type(e).__name__}: {first}") from e

    if verify:
        say("checking the exported file")
        try:
            diff = _verify(fmt, data, module, size)
        except CatdogError:
            raise
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ExportError(f"the exported {fmt} file does not run: {type(e).__name__}: {first}") from e
        if diff is not None and not diff < VERIFY_TOLERANCE:
            raise ExportError(f"the exported {fmt} file does not reproduce the model (probabilities differ by "
                              f"{diff:.2g}); nothing was written")

    say(f"writing {out.name}")
    try:
        written = atomic_write(out, lambda f: f.write(data))
    except OSError as e:  # e.g. the temporary file cannot be created in a read-only folder
        raise CatdogError(f"cannot write {out}: {e.strerror or e}") from None
    _share(written)
    return written


def _share(path: Path) -> None:
    """An exported file is meant to be shared: the usual permissions (0644 with the common umask),
    not the owner-only ones of the temporary file it was written through."""
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(path, 0o666 & ~mask)
    except OSError:
        pass


def read_metadata(path: Path | str) -> dict:
    """The ``catdog.json`` metadata of an exported ONNX or TorchScript file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CatdogError(f"{path} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):  # a TorchScript zip archive
        extra = {METADATA_KEY: ""}
        try:
            with _quiet():
                torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except Exception as e:
            raise CatdogError(f"{path.name} is not a readable TorchScript file ({type(e).__name__})") from None
        text = extra[METADATA_KEY]
    else:
        try:
            import onnx

            proto = onnx.load(str(path), load_external_data=False)
        except ImportError:
            raise CatdogError("reading ONNX files needs the 'onnx' package: pip install onnx") from None
        except Exception as e:
            raise CatdogError(f"{path.name} is neither a TorchScript nor an ONNX file ({type(e).__name__})") from None
        text = {p.key: p.value for p in proto.metadata_props}.get(METADATA_KEY, "")
    if not text:
        raise CatdogError(f"{path.name} has no catdog-gui metadata (it was not exported by catdog-gui)")
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(text)
