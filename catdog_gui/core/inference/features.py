"""A frozen backbone's features: computed fast (onnxruntime on CPU) and computed once (a disk cache).

Transfer learning with a frozen backbone spends nearly all its time running the backbone over every
photo. Two things make that cheap:

* :class:`FeatureExtractor` runs the frozen extractor (``TrainPhase.frozen``) through onnxruntime's
  CPU provider, several times faster than eager PyTorch on a CPU. The extractor is exported to ONNX
  once per backbone, weights and input size and kept in the user cache folder (``onnx/``); before
  first use in a process it is checked against PyTorch on the first few real images (largest
  difference at most :data:`TOLERANCE`), and a new export is kept only once it passed. Without onnxruntime (or onnx), or when the export
  fails or differs, the features come from PyTorch and the caller is told so in one line. PyTorch is
  also the path on CUDA/MPS (where it is fast already), with augmentation, and for fine-tuning:
  those never come here.
* :class:`FeatureStore` keeps every photo's features on disk (``features/``), keyed by the
  extractor (backbone name, hash of its weights, input size, normalisation, pixel decoding) and each
  photo file's identity (path, size, mtime), so the next run on the same folder computes only the
  photos that are new or changed. Bounded (``$CATDOG_FEATURE_CACHE_MB``, 2 GB by default, least
  recently used first), written atomically, and a failed write (full disk) only means "not cached".

Qt-free: the trainer and the predictor use it; :func:`~.cachefiles.clear_caches` empties both caches.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..storage.caches import MIB, Entry, cache_dir, identity_text, remove, touch, trim_lru, write_cache_file

#: largest |difference| between onnxruntime's and PyTorch's features that still counts as equal
TOLERANCE = 1e-4
#: images of the first batch that a new ONNX export is checked on
VERIFY_IMAGES = 4
#: the ONNX opset of the exported backbones
OPSET = 17
#: bump when the features (or the files holding them) change meaning
FEATURES_VERSION = 1
#: the feature cache is trimmed (least recently used first) to this many bytes
FEATURE_CACHE_LIMIT = int(os.environ.get("CATDOG_FEATURE_CACHE_MB", "2048")) * MIB
#: ... and the exported backbones to this many
ONNX_CACHE_LIMIT = int(os.environ.get("CATDOG_ONNX_CACHE_MB", "512")) * MIB
#: a model's features are merged into one file when it has more than this many
MAX_SHARDS = 16

Notify = Callable[[str], None]


def weights_hash(module: nn.Module) -> str:
    """A hash of ``module``'s state dict (names, dtypes, shapes and bytes of every tensor, buffers
    included): equal exactly when the module computes the same function (given its code)."""
    h = hashlib.blake2b(digest_size=20)
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _ort_version() -> str:
    try:
        import onnxruntime as ort
    except Exception:  # noqa: BLE001 - any failure to import: no onnxruntime
        return "none"
    return ort.__version__


# ------------------------------------------------------------------------------------------------
# running the extractor


class FeatureExtractor:
    """Features of a frozen extractor for batches of normalised images (N, 3, S, S).

    ``backend``: "auto" (onnxruntime on CPU where it loads and agrees with PyTorch, else PyTorch)
    or "pytorch". The choice is made on the first batch; :attr:`path` then says which one runs
    ("onnxruntime" or "pytorch"). ``notify`` receives the one line that explains a fall back to
    PyTorch. ``name`` (the backbone's registry name) and ``size`` name the cached ONNX file;
    ``digest`` is the :func:`weights_hash` of ``module`` when the caller has it already.

    Thread-safe; onnxruntime sessions are made per thread count (``torch.get_num_threads()`` at the
    call), so the caller's thread choice holds for both paths.
    """

    def __init__(self, module: nn.Module, name: str, size: int, device: torch.device, backend: str = "auto",
                 notify: Optional[Notify] = None, digest: Optional[str] = None):
        if backend not in ("auto", "pytorch"):
            raise ValueError(f"unknown feature backend {backend!r}")
        self.module = module
        self.name = name
        self.size = size
        self.device = device
        self.notify = notify
        self._digest = digest
        self._lock = threading.Lock()
        self._wanted = backend == "auto" and device.type == "cpu"
        self.path: Optional[str] = None if self._wanted else "pytorch"
        self._onnx: Optional[bytes | Path] = None  # the verified model: a cached file (or bytes, if unwritable)
        self._sessions: dict[int, object] = {}
        self.notice: Optional[str] = None  # the fall-back line, if one was given

    # -- public ------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, x: torch.Tensor, allow_export: bool = True) -> torch.Tensor:
        """Features (N, F) float32 on ``x``'s device. ``allow_export=False``: use an ONNX file only
        if one is cached already (the decision then waits for a call that allows it)."""
        if self.path is None:
            with self._lock:
                if self.path is None:
                    self._decide(x, allow_export)
        if self.path == "onnxruntime":
            try:
                return self._run_onnx(x)
            except Exception as e:  # noqa: BLE001 - onnxruntime failing mid-run: PyTorch takes over
                self._fall_back(f"onnxruntime failed ({_short(e)})")
        return self._run_torch(x)

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = weights_hash(self.module)
        return self._digest

    def onnx_file(self) -> Path:
        """Where this extractor's ONNX export is (or would be) cached."""
        key = hashlib.blake2b(
            f"v{FEATURES_VERSION}|{self.name}|{self.size}|{self.digest}|opset {OPSET}|torch {torch.__version__}|"
            f"onnxruntime {_ort_version()}".encode(), digest_size=12).hexdigest()
        return cache_dir("onnx") / f"{self.name}-{self.size}px-{key}.onnx"

    # -- the two paths -----------------------------------------------------------------------
    def _run_torch(self, x: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        return self.module(x).float()

    def _run_onnx(self, x: torch.Tensor) -> torch.Tensor:
        sess = self._session(torch.get_num_threads())
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        out = sess.run(None, {sess.get_inputs()[0].name: arr})[0]
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(x.device)

    def _session(self, threads: int):
        sess = self._sessions.get(threads)
        if sess is None:
            with self._lock:
                sess = self._sessions.get(threads)
                if sess is None:
                    sess = self._sessions[threads] = _make_session(self._onnx, threads)
        return sess

    # -- choosing ----------------------------------------------------------------------------
    def _fall_back(self, why: str) -> None:
        self.path = "pytorch"
        self._sessions.clear()
        if self.notice is None:
            self.notice = f"{why}: computing {self.name} features with PyTorch instead (slower)"
            if self.notify is not None:
                self.notify(self.notice)

    def _decide(self, x: torch.Tensor, allow_export: bool) -> None:
        """onnxruntime or PyTorch, on the first batch ``x``: the cached ONNX file (or a new export)
        is used only if its features on the first few images of ``x`` equal PyTorch's. Checked in
        every process before first use, so a file made by other code (a changed architecture, an
        older onnxruntime, a damaged disk) is never trusted blindly; it costs PyTorch's features of
        :data:`VERIFY_IMAGES` images."""
        if not self._wanted:
            self.path = "pytorch"
            return
        try:
            import onnxruntime  # noqa: F401
        except Exception as e:  # noqa: BLE001 - a broken install raises more than ImportError
            self._fall_back(f"onnxruntime is not available ({_short(e)}; pip install onnxruntime)")
            return
        sample = x[:VERIFY_IMAGES]
        file = self.onnx_file()
        if file.is_file():
            try:
                diff, sess = self._verify(file, sample)
            except Exception:  # noqa: BLE001 - unreadable or damaged
                diff, sess = float("inf"), None
            if diff <= TOLERANCE:
                self._use(file, sess)
                touch(file)
                return
            remove([file])  # not what this code and these weights compute: export it again
        if not allow_export:
            return  # undecided: PyTorch for this call, the next call that may export decides
        try:
            data = _export(self.module, x[: max(1, min(2, len(x)))])
        except Exception as e:  # noqa: BLE001
            self._fall_back(f"the {self.name} backbone could not be exported for onnxruntime ({_short(e)})")
            return
        try:
            diff, sess = self._verify(data, sample)
        except Exception as e:  # noqa: BLE001
            self._fall_back(f"onnxruntime could not run the exported {self.name} backbone ({_short(e)})")
            return
        if not diff <= TOLERANCE:
            self._fall_back(f"onnxruntime's {self.name} features differ from PyTorch's by {diff:.1e} "
                            f"(more than {TOLERANCE:g})")
            return
        self._use(data, sess)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            write_cache_file(file, data)
            self._onnx = file
            _trim_onnx(file)
        except OSError:
            pass  # not kept (full or read-only disk): this run still uses it from memory

    def _use(self, model, sess) -> None:
        self._onnx = model
        self._sessions = {torch.get_num_threads(): sess}
        self.path = "onnxruntime"

    def _verify(self, model, x: torch.Tensor):
        """(largest |difference| between onnxruntime and PyTorch on ``x``, the session)."""
        sess = _make_session(model, max(1, torch.get_num_threads()))
        out = sess.run(None, {sess.get_inputs()[0].name: x.detach().to("cpu", torch.float32).contiguous().numpy()})[0]
        ref = self._run_torch(x).cpu().numpy()
        if out.shape != ref.shape:
            return float("inf"), sess
        return float(np.abs(out - ref).max()), sess


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _make_session(model, threads: int):
    """An onnxruntime CPU session on ``model`` (a file or bytes) with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only
    src = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _export(module: nn.Module, example: torch.Tensor) -> bytes:
    """``module`` as ONNX bytes, the batch dimension free (a copy is exported, on the CPU)."""
    from .export import _onnx_bytes  # the one place that drives torch's ONNX exporters

    clone = copy.deepcopy(module).to("cpu").float().eval()
    clone._forward_hooks.clear()
    clone._forward_pre_hooks.clear()
    return _onnx_bytes(clone, example.detach().to("cpu", torch.float32).contiguous(), OPSET)


def _trim_onnx(just_written: Path) -> None:
    folder = just_written.parent
    entries = []
    for f in folder.glob("*.onnx"):
        try:
            st = f.stat()
        except OSError:
            continue
        entries.append(Entry(st.st_mtime, (f,), st.st_size))
    trim_lru(entries, ONNX_CACHE_LIMIT, keep=[just_written])


# ------------------------------------------------------------------------------------------------
# the disk cache


def store_key(name: str, size: int, digest: str, mean: Sequence[float], std: Sequence[float]) -> str:
    """The folder name of one extractor's features: what makes its features what they are."""
    from ..data.decode_cache import DECODE_VERSION

    h = hashlib.blake2b(
        f"v{FEATURES_VERSION}|{name}|{size}|{digest}|{list(map(float, mean))}|{list(map(float, std))}|"
        f"decode {DECODE_VERSION}".encode(), digest_size=12).hexdigest()
    return f"{name}-{size}px-{h}"


class FeatureStore:
    """Per-photo features of one extractor on disk: ``folder/<key>/<shard>.f32`` (float32 rows)
    with ``<shard>.json`` (the photos' identities, in row order; written last, so a shard without
    it is incomplete and ignored).

    Every method swallows disk errors: a cache that cannot be read is a miss, one that cannot be
    written is not kept.
    """

    def __init__(self, key: str, folder: Optional[Path] = None, limit: Optional[int] = None):
        self.root = Path(folder) if folder is not None else cache_dir("features")
        self.dir = self.root / key
        self.limit = FEATURE_CACHE_LIMIT if limit is None else limit

    def _shards(self) -> list[tuple[float, Path]]:
        out = []
        try:
            for meta in self.dir.glob("*.json"):
                try:
                    out.append((meta.stat().st_mtime, meta))
                except OSError:
                    continue
        except OSError:
            return []
        return sorted(out)

    def _read(self, meta: Path) -> Optional[tuple[list, list[str], np.ndarray]]:
        """(identities, their texts, features) of one shard; None if it cannot be read whole."""
        try:
            info = json.loads(meta.read_text())
            dim, ids = int(info["dim"]), list(info["ids"])
            texts = [identity_text(i) for i in ids]
            data = meta.with_suffix(".f32")
            if data.stat().st_size != len(ids) * dim * 4:
                return None
            arr = np.fromfile(data, dtype=np.float32).reshape(len(ids), dim)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return ids, texts, arr

    def lookup(self, identities: Sequence) -> tuple[Optional[np.ndarray], np.ndarray]:
        """(features (N, F) or None when nothing is cached, found (N,) bool): the rows found hold
        the cached features of those photos; a photo without identity (None) is never found."""
        want = {identity_text(i): n for n, i in enumerate(identities) if i is not None}
        found = np.zeros(len(identities), dtype=bool)
        feats = None
        if not want:
            return feats, found
        for _mtime, meta in self._shards():  # oldest first: a newer shard's row wins
            got = self._read(meta)
            if got is None:
                continue
            _ids, texts, arr = got
            rows = [(want[t], r) for r, t in enumerate(texts) if t in want]
            if not rows:
                continue
            if feats is None:
                feats = np.zeros((len(identities), arr.shape[1]), dtype=np.float32)
            elif arr.shape[1] != feats.shape[1]:
                continue
            dst, src = zip(*rows)
            feats[list(dst)] = arr[list(src)]
            found[list(dst)] = True
            touch(meta)  # used: trimmed last
        return feats, found

    def save(self, identities: Sequence, features: np.ndarray) -> bool:
        """Keep the features of these photos (rows in the same order); False when not kept."""
        keep = [n for n, i in enumerate(identities) if i is not None]
        if not keep:
            return False
        features = np.ascontiguousarray(features[keep], dtype=np.float32)
        ids = [list(identities[n]) for n in keep]
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._write(ids, features)
            shards = self._shards()
            if len(shards) > MAX_SHARDS:
                self._merge(shards)
            self.trim()
            return True
        except OSError:
            return False

    def _write(self, ids: list, features: np.ndarray) -> Path:
        name = hashlib.blake2b("\n".join(identity_text(i) for i in ids).encode("utf-8", "surrogateescape"),
                               digest_size=12).hexdigest()
        data, meta = self.dir / f"{name}.f32", self.dir / f"{name}.json"
        write_cache_file(data, lambda f: features.tofile(f))
        try:
            write_cache_file(meta, json.dumps({"dim": int(features.shape[1]), "ids": ids}).encode())
        except OSError:
            remove([data])
            raise
        return meta

    def _merge(self, shards: list[tuple[float, Path]]) -> None:
        """All shards into one (a newer shard's row wins), then the old ones removed."""
        rows: dict[str, tuple[list, np.ndarray]] = {}
        for _mtime, meta in shards:
            got = self._read(meta)
            if got is None:
                continue
            for ident, text, row in zip(*got):
                rows[text] = (ident, row)
        if not rows:
            return
        dims = {r.shape[0] for _i, r in rows.values()}
        if len(dims) != 1:
            return
        ids = [i for i, _r in rows.values()]
        merged = self._write(ids, np.stack([r for _i, r in rows.values()]))
        for _mtime, meta in shards:
            if meta != merged:
                remove([meta, meta.with_suffix(".f32")])

    def trim(self) -> None:
        """Every extractor's features together within the limit, least recently used shard first."""
        entries = []
        for meta in self.root.glob("*/*.json"):
            data = meta.with_suffix(".f32")
            try:
                entries.append(Entry(meta.stat().st_mtime, (meta, data), data.stat().st_size + meta.stat().st_size))
            except OSError:
                continue
        trim_lru(entries, self.limit)
