"""The ``catdog`` command: train, evaluate, predict and inspect models without the window.

Exit status: 0 on success, 2 on a user error (one line on stderr, no traceback), 130 when a
training run was interrupted (the best model so far is still saved), 1 on a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence

EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2
        self.print_usage(sys.stderr)
        print(f"catdog: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USER)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return v


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="catdog", description="Train and use image classifiers (cats vs dogs, or any classes).")
    p.add_argument("--version", action="version", version=f"catdog {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model on image folders")
    t.add_argument("data", help="training folder: one subfolder per class, or files named like cat.1.jpg")
    t.add_argument("--val", help="validation folder (default: hold out --val-fraction of the training folder)")
    t.add_argument("--out", required=True, help="model file to write (e.g. model.pt)")
    t.add_argument("--model", default=None, help="architecture (see `catdog models`); default lenet5")
    t.add_argument("--augment", action="store_true",
                   help="random crops, flips, small turns, brightness and contrast changes (default epochs x4)")
    t.add_argument("--pretrained", action="store_true", help="transfer learning from ImageNet weights (default model then: efficientnet_lite0)")
    t.add_argument("--finetune", action="store_true",
                   help="with --pretrained: after the new head converges, also train the backbone's last blocks")
    t.add_argument("--weights", help="local file with the backbone's pretrained weights (torchvision models)")
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--lr", type=_float, help="learning rate")
    t.add_argument("--optimizer", choices=("adam", "adamw", "sgd"))
    t.add_argument("--weight-decay", type=_float)
    t.add_argument("--image-size", type=_positive_int)
    t.add_argument("--seed", type=_positive_int, default=0)
    t.add_argument("--val-fraction", type=_float)
    t.add_argument("--patience", type=_positive_int, help="stop after N epochs without better validation loss (0: never)")
    t.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    t.add_argument("--resume", metavar="MODEL", help="continue training from this model file")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--tensorboard", metavar="DIR",
                   help="also log the run for TensorBoard in a new folder under DIR (needs: pip install tensorboard)")

    e = sub.add_parser("evaluate", help="accuracy, per-class precision/recall/F1 and confusion matrix on a folder")
    e.add_argument("model")
    e.add_argument("data")
    e.add_argument("--json", action="store_true")
    e.add_argument("--device", default="auto")

    pr = sub.add_parser("predict", help="classify images")
    pr.add_argument("model")
    pr.add_argument("images", nargs="+")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--device", default="auto")

    i = sub.add_parser("info", help="what a model file holds, and its layers")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")

    s = sub.add_parser("scan", help="check a dataset folder: classes, unreadable files, duplicates")
    s.add_argument("data")
    s.add_argument("--val")
    s.add_argument("--json", action="store_true")

    sub.add_parser("models", help="list the architectures")

    x = sub.add_parser("export", help="export a model file to ONNX or TorchScript (class names and preprocessing inside)")
    x.add_argument("model")
    x.add_argument("--format", choices=("onnx", "torchscript"),
                   help="default: from the --out suffix (.onnx: onnx, .pt/.ts: torchscript)")
    x.add_argument("--out", help="file to write (default: MODEL.onnx or MODEL.torchscript.pt beside the model)")
    x.add_argument("--opset", type=_positive_int, default=17, help="ONNX opset version (default 17)")
    return p


# ------------------------------------------------------------------------------------------------


def _cmd_train(args) -> int:
    from .core.events import BatchEnd, CheckpointSaved, DatasetScanned, EpochEnd, Finished, RunStarted, StageProgress
    from .core.training import TrainConfig, Trainer

    # --pretrained alone means transfer learning from the bundled backbone (LeNet-5 has no pretrained weights)
    model = args.model or ("efficientnet_lite0" if args.pretrained else "lenet5")
    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                     weight_decay=args.weight_decay, image_size=args.image_size, seed=args.seed,
                     val_fraction=args.val_fraction, patience=args.patience, device=args.device,
                     weights_path=args.weights)
    if args.pretrained:
        overrides["pretrained"] = True
    if args.finetune:
        overrides["transfer_mode"] = "finetune"
    from .core.augment import AugmentSettings

    cfg = TrainConfig.for_model(model, augment=AugmentSettings(enabled=args.augment), **overrides)
    if args.augment and args.epochs is None:
        print(f"Augmentation on: {cfg.epochs} epochs, early-stopping patience {cfg.patience} (augmented training "
              "learns more slowly; --epochs and --patience change this)", flush=True)
    out = Path(args.out)
    if not out.parent.exists():
        print(f"catdog: error: cannot write {out}: folder {out.parent} does not exist", file=sys.stderr)
        return EXIT_USER

    logger = None
    if args.tensorboard and os.environ.get("RANK", "0") == "0":  # under torchrun: the first process only
        from .core.tensorboard import TensorBoardLogger  # CatdogError with the pip command if it is missing

        logger = TensorBoardLogger(args.tensorboard)

    from tqdm.auto import tqdm

    state = {"bar": None, "stage": None}
    show = not args.quiet

    def close_bar():
        if state["bar"] is not None:
            state["bar"].close()
            state["bar"] = None

    def on_event(ev):
        if isinstance(ev, DatasetScanned):
            close_bar()
            print("\n".join(ev.report.lines()), flush=True)
        elif isinstance(ev, StageProgress) and show:
            if state["stage"] != ev.stage or state["bar"] is None:
                close_bar()
                names = {"scan": "checking files", "decode": "decoding images", "weights": "downloading weights",
                         "features": "computing features"}
                state["bar"] = tqdm(total=ev.total, desc=names.get(ev.stage, ev.stage), leave=False, unit="img",
                                    disable=None)
                state["stage"] = ev.stage
            state["bar"].n = ev.done
            state["bar"].refresh()
        elif isinstance(ev, RunStarted):
            close_bar()
            print(f"Training {cfg.model} ({ev.mode}) on {ev.device}: {ev.n_train} training, "
                  f"{ev.n_val} validation images, classes {', '.join(ev.classes)}", flush=True)
        elif isinstance(ev, BatchEnd) and show:
            if state["stage"] != ("epoch", ev.epoch):
                close_bar()
                state["bar"] = tqdm(total=ev.steps, desc=f"epoch {ev.epoch}", leave=False, unit="batch", disable=None)
                state["stage"] = ("epoch", ev.epoch)
            state["bar"].update(1)
            state["bar"].set_postfix(loss=f"{ev.loss:.3f}", refresh=False)
        elif isinstance(ev, EpochEnd):
            close_bar()
            star = " *" if ev.is_best else ""
            print(f"epoch {ev.epoch:3d}/{ev.epochs}  train loss {ev.train_loss:.4f} acc {ev.train_acc * 100:5.1f}%  "
                  f"val loss {ev.val_loss:.4f} acc {ev.val_acc * 100:5.1f}%  {ev.images_per_s:7.0f} img/s  "
                  f"{ev.seconds:5.1f}s{star}", flush=True)
        elif isinstance(ev, CheckpointSaved):
            print(f"Saved {ev.path} (epoch {ev.epoch}, validation accuracy {ev.val_acc * 100:.1f}%)", flush=True)
        elif isinstance(ev, Finished):
            close_bar()

    from .core.distributed import init_from_env, shutdown

    ctx = init_from_env()  # under torchrun: join the other processes; only rank 0 prints and saves
    if ctx is not None and not ctx.is_main:
        show = False
    trainer = Trainer(cfg, [on_event] if ctx is None or ctx.is_main else [], dist=ctx)
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in handled}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        def on_signal(sig, _frame):
            if ctx is None or ctx.is_main:
                print("\nStopping after this batch (Ctrl-C again to abort)...", file=sys.stderr, flush=True)
            signal.signal(sig, previous[sig])
            trainer.cancel()
        for s in handled:
            signal.signal(s, on_signal)
    try:
        if logger is not None:
            logger.attach(trainer)
        result = trainer.fit(args.data, args.val, out, resume_from=args.resume)
    finally:
        if in_main:
            for s in handled:
                signal.signal(s, previous[s])
        shutdown()
    if ctx is not None and not ctx.is_main:
        return EXIT_OK if result.status != "failed" else (EXIT_USER if result.user_error else EXIT_BUG)
    if result.status == "failed":
        if not result.user_error:
            print(result.traceback, file=sys.stderr)
            return EXIT_BUG
        print(f"catdog: error: {result.reason}", file=sys.stderr)
        return EXIT_USER
    if trainer.metrics is not None:
        m = trainer.metrics
        print(f"{result.status.replace('_', ' ')}: {result.reason}. Best epoch {result.best_epoch}: validation accuracy "
              f"{m.accuracy * 100:.1f}% on {m.n} images the model did not train on")
    if result.status == "cancelled":
        return EXIT_INTERRUPTED
    return EXIT_OK


def _cmd_evaluate(args) -> int:
    from .core.evaluation import evaluate_folder
    from .core.inference import Predictor

    metrics, skipped = evaluate_folder(Predictor(args.model, args.device), args.data)
    if args.json:
        d = metrics.to_dict()
        d["skipped"] = skipped
        print(json.dumps(d, indent=2))
    else:
        print("\n".join(metrics.lines()))
        if skipped:
            print(f"\nSkipped {skipped} unreadable file(s).")
    return EXIT_OK


def _cmd_predict(args) -> int:
    from .core.inference import Predictor

    predictor = Predictor(args.model, args.device)
    preds = predictor.predict_many(args.images)
    if args.json:
        print(json.dumps({"model": str(args.model), "classes": predictor.classes,
                          "predictions": [p.to_dict() for p in preds]}, indent=2))
    else:
        for p in preds:
            if p.ok:
                print(f"{p.source}: {p.label} ({p.describe()})")
            else:
                print(f"{p.source}: error: {p.error}", file=sys.stderr)
    return EXIT_OK if all(p.ok for p in preds) else EXIT_USER


def format_layers(layers) -> list[str]:
    rows = [("layer", "type", "kernel", "stride", "output volume", "parameters")]
    for l in layers:
        rows.append((l.name, l.kind, l.kernel or "-", l.stride or "-", " x ".join(map(str, l.out_shape)), f"{l.params:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    out = ["  ".join(c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    out.insert(1, "-" * len(out[0]))
    return out


def _cmd_info(args) -> int:
    from .core.modelfile import load_model
    from .core.models import get_spec, summary

    model, info = load_model(args.model)
    layers = summary(model, info.image_size)
    total = sum(p.numel() for p in model.parameters())
    m = info.metrics
    if args.json:
        print(json.dumps({"meta": {k: v for k, v in info.meta.items() if k != "metrics"} | {
            "metrics": {k: v for k, v in m.items() if k != "history"}},
            "layers": [l.__dict__ | {"out_shape": list(l.out_shape)} for l in layers], "parameters": total}, indent=2))
        return EXIT_OK
    spec = get_spec(info.model_name)
    print(f"Model file   {args.model}")
    print(f"Architecture {spec.title} ({info.model_name})")
    print(f"Classes      {', '.join(info.classes)}")
    print(f"Input        {info.image_size}x{info.image_size} RGB, normalised with mean {info.mean} std {info.std}")
    if "val_accuracy" in m:
        print(f"Validation   {m['val_accuracy'] * 100:.1f}% accuracy on {m.get('n_val', '?')} images "
              f"(best epoch {m.get('best_epoch', '?')})")
    cfg = info.config
    if cfg:
        aug = cfg.get("augment", {})
        print(f"Trained with epochs={cfg.get('epochs')} batch_size={cfg.get('batch_size')} lr={cfg.get('lr')} "
              f"optimizer={cfg.get('optimizer')} seed={cfg.get('seed')} augment={'on' if aug.get('enabled') else 'off'} "
              f"pretrained={'yes' if cfg.get('pretrained') else 'no'}")
    v = info.meta.get("versions", {})
    if v:
        print(f"Saved by     catdog-gui {v.get('catdog_gui')}, torch {v.get('torch')}, on {info.meta.get('created', '?')}")
    print()
    print("\n".join(format_layers(layers)))
    masked = sum(sum(p.numel() for p in m.parameters()) - m.effective_params()
                 for m in model.modules() if callable(getattr(m, "effective_params", None)))
    if masked:
        print(f"\nTotal parameters: {total - masked:,} ({total:,} stored: {masked:,} weights stay zero, "
              "like the connections C3's table leaves out in LeNet-5)")
    else:
        print(f"\nTotal parameters: {total:,}")
    return EXIT_OK


def _cmd_scan(args) -> int:
    from .core.data import scan_dataset

    ds = scan_dataset(args.data, args.val)
    if args.json:
        print(json.dumps(ds.report.to_dict(), indent=2))
    else:
        print("\n".join(ds.report.lines()))
    return EXIT_OK


def _cmd_models(_args) -> int:
    from .core.models import list_specs

    for s in list_specs():
        pre = {"none": "from scratch", "bundled": "pretrained weights included", "download": "pretrained weights downloaded once"}[s.pretrained]
        print(f"{s.name:<20} {s.title} - {s.default_image_size}px, {pre}")
    return EXIT_OK


def _cmd_export(args) -> int:
    from .core.errors import CatdogError
    from .core.export import default_export_path, export_model, format_for_path

    fmt = args.format or (format_for_path(args.out) if args.out else None)
    if fmt is None:
        raise CatdogError("say --format onnx or --format torchscript (or give --out a .onnx or .pt name)")
    out = Path(args.out) if args.out else default_export_path(args.model, fmt)
    path = export_model(args.model, fmt, out, opset=args.opset)
    print(f"Exported {args.model} to {path} ({fmt}, {path.stat().st_size / 1e6:.1f} MB); outputs class probabilities")
    return EXIT_OK


COMMANDS = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict, "info": _cmd_info,
            "scan": _cmd_scan, "models": _cmd_models, "export": _cmd_export}


def _printable_streams() -> None:
    """File names need not be valid UTF-8 (nor fit the console's encoding): print them escaped
    (``\\udcff``) instead of dying with UnicodeEncodeError on a strict stdout."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a stream that cannot be changed
                pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    _printable_streams()
    args = build_parser().parse_args(argv)
    from .core.errors import CatdogError

    try:
        return COMMANDS[args.command](args)
    except CatdogError as e:
        print(f"catdog: error: {e}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("catdog: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
