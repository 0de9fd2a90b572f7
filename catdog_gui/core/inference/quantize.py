"""INT8 export: a statically quantized ONNX model (onnxruntime's quantizer), measured against the float one.

:func:`export_int8` exports the model file to float ONNX (:func:`~.export.export_model`, verified), then
quantizes its convolutions and matrix products to 8-bit integers (QDQ format, weights per channel),
calibrated on up to :data:`CALIBRATION_PHOTOS` of the model's own training photos: the activations' ranges
come from real inputs, so nothing about the photos the model is scored on is used. Softmax and the
other small operations stay in float. The result is measured on the model's validation photos against
the float model in the same run: accuracy of each, the largest difference in any probability, file
sizes, and photos per second through onnxruntime on this machine's CPU. The metadata (``catdog.json``)
says ``"int8": true`` with the calibration count and those numbers; :func:`~.export.read_metadata` reads
it like any export's.

The photos are found from the model file: the dataset folder and split it was trained with
(``metrics.dataset``); ``calibration`` names another labelled folder when that one has moved.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import CatdogError

CALIBRATION_PHOTOS = 300
#: the operations quantized (the heavy ones); everything else stays float
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


@dataclass
class Int8Report:
    """What an INT8 export measured (float vs INT8, same photos, same run)."""

    path: str
    calibration_photos: int
    validation_photos: int
    float_accuracy: float
    int8_accuracy: float
    max_probability_difference: float
    float_bytes: int
    int8_bytes: int
    float_images_per_s: float
    int8_images_per_s: float

    def lines(self) -> list[str]:
        n = self.validation_photos
        return [
            f"Wrote {self.path} (INT8, calibrated on {self.calibration_photos} training photos)",
            f"{'':22}{'float32':>12}{'INT8':>12}",
            f"{'validation accuracy':22}{self.float_accuracy * 100:11.2f}%{self.int8_accuracy * 100:11.2f}%"
            f"   ({n} photos; INT8 gets {_photos_diff(self.float_accuracy, self.int8_accuracy, n)})",
            f"{'file size':22}{self.float_bytes / 1e6:10.2f} MB{self.int8_bytes / 1e6:9.2f} MB",
            f"{'photos per second':22}{self.float_images_per_s:12.1f}{self.int8_images_per_s:12.1f}"
            f"   (onnxruntime, CPU, batches of 32)",
            f"Largest difference in any probability: {self.max_probability_difference:.4f}",
        ]


def _photos_diff(float_acc: float, int8_acc: float, n: int) -> str:
    d = round((int8_acc - float_acc) * n)
    return "as many right" if d == 0 else f"{abs(d)} {'more' if d > 0 else 'fewer'} right"


def _photos(info, calibration: Optional[str], n_cal: int):
    """(calibration samples, validation samples, classes) from the model's dataset (or ``calibration``)."""
    from ..data.scan import scan_dataset

    ds_meta = (info.metrics or {}).get("dataset") or {}
    if calibration is not None:
        ds = scan_dataset(Path(calibration))
    else:
        root = ds_meta.get("root")
        if not root or not Path(root).is_dir():
            raise CatdogError(
                f"the photos this model was trained on ({root or 'not recorded'}) are not there, and INT8 "
                "calibration needs a few hundred of them: give a labelled folder (catdog export --int8 "
                "--calibration FOLDER)")
        val_root = ds_meta.get("val_root")
        ds = scan_dataset(Path(root), Path(val_root) if val_root else None,
                          val_fraction=ds_meta.get("val_fraction") or 0.2, seed=ds_meta.get("split_seed") or 0)
    unknown = sorted(set(ds.classes) - set(info.classes))
    if unknown:
        raise CatdogError(f"the calibration folder has classes the model does not know: {', '.join(unknown)}")
    rng = np.random.default_rng(0)
    train = [ds.train[i] for i in rng.permutation(len(ds.train))[:n_cal]]
    return train, ds.val, ds.classes


def _inputs(samples, info) -> tuple[np.ndarray, np.ndarray]:
    """The readable photos as the exported model takes them ((N, 3, S, S) float32, normalised) and their
    labels (the scan's class indices)."""
    from ..data.decode_cache import build_cache

    cache = build_cache(samples, info.image_size)
    try:
        x = np.ascontiguousarray(cache.array).astype(np.float32) / 255.0
        labels = np.asarray(cache.labels).copy()
    finally:
        cache.close()
    mean = np.array(info.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.array(info.std, np.float32).reshape(1, 3, 1, 1)
    return (x - mean) / std, labels


def _run(session, x: np.ndarray, batch: int = 32) -> tuple[np.ndarray, float]:
    """Probabilities for ``x`` and photos per second."""
    from .export import INPUT_NAME, OUTPUT_NAME

    session.run([OUTPUT_NAME], {INPUT_NAME: x[:batch]})  # warm up
    t0 = time.perf_counter()
    out = [session.run([OUTPUT_NAME], {INPUT_NAME: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(out), len(x) / max(time.perf_counter() - t0, 1e-9)


def export_int8(model_path, out_path, calibration: Optional[str] = None, n_calibration: int = CALIBRATION_PHOTOS,
                threads: int = 2, progress: Optional[Callable[[str], None]] = None) -> Int8Report:
    """Write an INT8 ONNX export of ``model_path`` to ``out_path`` and say how it compares (see the module
    docstring). CatdogError (nothing written) when the photos cannot be found or the quantizer fails."""
    say = progress or (lambda _m: None)
    try:
        import onnx
        import onnxruntime as ort
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                              quantize_static)
    except ImportError:
        raise CatdogError("INT8 export needs onnx and onnxruntime: pip install onnx onnxruntime "
                          "(or pip install 'catdog-gui[export]')") from None
    from ..storage.modelfile import atomic_write, read_model_file
    from .export import METADATA_KEY, export_model

    model_path, out = Path(model_path).expanduser(), Path(out_path).expanduser()
    if not out.parent.is_dir():
        raise CatdogError(f"cannot export to {out}: the folder {out.parent} does not exist")
    info, _ = read_model_file(model_path)
    say("finding the calibration and validation photos")
    cal_samples, val_samples, classes = _photos(info, calibration, n_calibration)
    if len(cal_samples) < 10:
        raise CatdogError(f"only {len(cal_samples)} training photos to calibrate on: INT8 needs at least 10")
    with tempfile.TemporaryDirectory(prefix="catdog-int8-") as tmp:
        tmp = Path(tmp)
        float_path = export_model(model_path, "onnx", tmp / "float.onnx", progress=say)
        say("preparing the graph")
        prepared = tmp / "prepared.onnx"
        try:
            quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        except Exception:  # shape inference is an optimisation: quantize the plain graph
            prepared = float_path
        say(f"calibrating on {len(cal_samples)} training photos")
        cal, _ = _inputs(cal_samples, info)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self._it = iter(range(0, len(cal), 16))

            def get_next(self):
                i = next(self._it, None)
                return None if i is None else {"input": cal[i:i + 16]}

        int8_path = tmp / "int8.onnx"
        try:
            quantize_static(str(prepared), str(int8_path), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(QUANTIZED_OPS))
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CatdogError(f"onnxruntime could not quantize {model_path.name}: {type(e).__name__}: {first}") from None
        say(f"measuring on {len(val_samples)} validation photos")
        xval, labels = _inputs(val_samples, info)
        index = {c: i for i, c in enumerate(info.classes)}
        yval = np.array([index[classes[i]] for i in labels])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        f_sess = ort.InferenceSession(str(float_path), opts, providers=["CPUExecutionProvider"])
        q_sess = ort.InferenceSession(str(int8_path), opts, providers=["CPUExecutionProvider"])
        pf, f_speed = _run(f_sess, xval)
        pq, q_speed = _run(q_sess, xval)
        float_bytes = float_path.stat().st_size
        report = Int8Report(str(out), len(cal), len(xval),
                            float((pf.argmax(1) == yval).mean()), float((pq.argmax(1) == yval).mean()),
                            float(np.abs(pf - pq).max()), float_bytes, 0, f_speed, q_speed)
        float_props = {p.key: p.value for p in onnx.load(str(float_path)).metadata_props}
        meta = json.loads(float_props[METADATA_KEY])
        meta["int8"] = {k: v for k, v in asdict(report).items() if k not in ("path", "int8_bytes")}
        meta["int8"]["quantized_ops"] = list(QUANTIZED_OPS)
        float_props[METADATA_KEY] = json.dumps(meta)
        proto = onnx.load(str(int8_path))
        del proto.metadata_props[:]
        for k, v in float_props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        data = proto.SerializeToString()
    report.int8_bytes = len(data)
    say(f"writing {out.name}")
    try:
        atomic_write(out, lambda f: f.write(data))
    except OSError as e:
        raise CatdogError(f"cannot write {out}: {e.strerror or e}") from None
    return report
