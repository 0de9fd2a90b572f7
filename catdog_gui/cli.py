"""The ``catdog`` command: train, evaluate, predict and inspect models without the window.

Exit status: 0 on success, 2 on a user error (one line on stderr, no traceback), 130 when a
training run was interrupted (the best model so far is still saved), 1 on a bug.
"""

from __future__ import annotations

import argparse
import json
import sys
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


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="catdog", description="Train and use image classifiers (cats vs dogs, or any classes).")
    p.add_argument("--version", action="version", version=f"catdog {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    from .core.config import add_cli_arguments

    t = sub.add_parser("train", help="train a model on image folders")
    t.add_argument("data", help="training folder: one subfolder per class, or files named like cat.1.jpg")
    t.add_argument("--val", help="validation folder (default: hold out --val-fraction of the training folder)")
    t.add_argument("--out", required=True, help="model file to write (e.g. model.pt)")
    t.add_argument("--augment", action="store_true",
                   help="random crops, flips, small turns, brightness and contrast changes (default epochs x4)")
    add_cli_arguments(t)  # every TrainConfig setting with a flag: --model, --epochs, --lr, --pretrained, ...
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
    from .core import run
    from .core.augment import AugmentSettings
    from .core.config import overrides_from_cli
    from .core.distributed import init_from_env, shutdown
    from .core.events import Status
    from .core.progress import TqdmProgress

    given = overrides_from_cli(args)
    cfg = run.make_config(augment=AugmentSettings(enabled=args.augment), **given)
    if args.augment and "epochs" not in given:
        print(f"Augmentation on: {cfg.epochs} epochs, early-stopping patience {cfg.patience} (augmented training "
              "learns more slowly; --epochs and --patience change this)", flush=True)
    out = run.check_output(args.out)

    ctx = init_from_env()  # under torchrun: join the other processes; only rank 0 prints and saves
    main = ctx is None or ctx.is_main
    try:
        result = run.train(cfg, args.data, out, val_dir=args.val, resume_from=args.resume,
                           progress=TqdmProgress(bars=not args.quiet) if main else None,
                           tensorboard=args.tensorboard if main and args.tensorboard else None, dist=ctx)
    finally:
        shutdown()
    if not main:
        return EXIT_OK if result.ok else (EXIT_USER if result.user_error else EXIT_BUG)
    if result.status is Status.FAILED:
        if not result.user_error:
            print(result.traceback, file=sys.stderr)
            return EXIT_BUG
        print(f"catdog: error: {result.reason}", file=sys.stderr)
        return EXIT_USER
    m = result.metrics
    if m is not None:
        print(f"{result.status.words}: {result.reason}. Best epoch {result.best_epoch}: validation accuracy "
              f"{m.accuracy * 100:.1f}% on {m.n} images the model did not train on")
    return EXIT_INTERRUPTED if result.cancelled else EXIT_OK


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
