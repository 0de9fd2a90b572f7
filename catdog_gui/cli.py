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


class _VersionAction(argparse.Action):
    """``--version``: the version, the PyTorch build and where the weights come from (core.about)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default,
                         help=help or "say the version, the PyTorch build and where the weights come from")

    def __call__(self, parser, namespace, values, option_string=None):
        from .core.about import version_lines

        print("\n".join(version_lines()))
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="catdog", description="Train and use image classifiers (cats vs dogs, or any classes).")
    p.add_argument("--version", action=_VersionAction)
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

    lf = sub.add_parser("lr-find", help="sweep the learning rate on your settings and suggest one (fastai's lr_find)")
    lf.add_argument("data", help="training folder, as for catdog train")
    lf.add_argument("--val", help="validation folder (as for catdog train)")
    lf.add_argument("--augment", action="store_true", help="sweep with augmentation on, as catdog train --augment")
    add_cli_arguments(lf)
    lf.add_argument("--resume", metavar="MODEL", help="sweep from this model file (it is not changed)")
    lf.add_argument("--steps", type=int, default=200, help="batches to sweep over at most (default 200)")
    lf.add_argument("--json", action="store_true", help="print the sweep (every step) as JSON")

    e = sub.add_parser("evaluate", help="accuracy, per-class precision/recall/F1 and confusion matrix on a folder")
    e.add_argument("model")
    e.add_argument("data")
    e.add_argument("--json", action="store_true")
    e.add_argument("--device", default="auto")
    e.add_argument("--allow-overlap", action="store_true",
                   help="score even when some photos of DATA are photos the model trained on (the overlap is shown)")
    _add_unfamiliar_flag(e)

    pr = sub.add_parser("predict", help="classify images")
    pr.add_argument("model")
    pr.add_argument("images", nargs="+")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--device", default="auto")
    _add_unfamiliar_flag(pr)

    i = sub.add_parser("info", help="what a model file holds, and its layers")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")

    xp = sub.add_parser("explain", help="a LeNet-5 explained unit by unit on one photo (a pretrained backbone by its "
                                           "blocks), as a self-contained HTML page")
    xp.add_argument("model")
    xp.add_argument("photo")
    xp.add_argument("--out", required=True, help="the HTML file to write")
    xp.add_argument("--unit", help="the unit to explain first, LAYER:MAP,Y,X counted from 1 (e.g. c3:1,5,5; "
                                   "f6:12); default: one unit of every layer")

    s = sub.add_parser("scan", help="check a dataset folder: classes, unreadable files, duplicates")
    s.add_argument("data")
    s.add_argument("--val")
    s.add_argument("--json", action="store_true")

    sub.add_parser("models", help="list the architectures")

    r = sub.add_parser("runs", help="every training run kept: list, show, compare, rename, note, star, delete, export")
    r.add_argument("--json", action="store_true")
    rs = r.add_subparsers(dest="runs_action", parser_class=_Parser)
    x = rs.add_parser("show", help="one run: settings, metrics, per-epoch history")
    x.add_argument("id", help="a run id (or a unique start of one)")
    x.add_argument("--json", action="store_true")
    x = rs.add_parser("compare", help="two runs side by side: the settings that differ, metrics, per-class changes")
    x.add_argument("id", nargs=2)
    x.add_argument("--json", action="store_true")
    x = rs.add_parser("rename", help="give a run a name")
    x.add_argument("id")
    x.add_argument("name")
    x = rs.add_parser("note", help="attach a note to a run")
    x.add_argument("id")
    x.add_argument("text")
    x = rs.add_parser("star", help="star a run (--off: unstar)")
    x.add_argument("id")
    x.add_argument("--off", action="store_true")
    x = rs.add_parser("delete", help="forget a run (its model file is kept unless --model)")
    x.add_argument("id")
    x.add_argument("--model", action="store_true", help="delete the run's model file too")
    x = rs.add_parser("export", help="copy a run (record and model file) into a folder a colleague can open")
    x.add_argument("id")
    x.add_argument("dest")

    x = sub.add_parser("export", help="export a model file to ONNX or TorchScript (class names and preprocessing inside)")
    x.add_argument("model")
    x.add_argument("--format", choices=("onnx", "torchscript"),
                   help="default: from the --out suffix (.onnx: onnx, .pt/.ts: torchscript)")
    x.add_argument("--out", help="file to write (default: MODEL.onnx or MODEL.torchscript.pt beside the model)")
    x.add_argument("--opset", type=_positive_int, default=17, help="ONNX opset version (default 17)")
    x.add_argument("--int8", action="store_true",
                   help="ONNX quantized to 8-bit integers (calibrated on the model's training photos); prints its "
                        "validation accuracy, size and speed against the float model")
    x.add_argument("--calibration", metavar="FOLDER",
                   help="with --int8: a labelled folder to calibrate on and measure with (default: the photos the "
                        "model was trained on)")

    c = sub.add_parser("cache", help="the disk caches (decoded photos, backbone features): how big, or clear them")
    c.add_argument("action", choices=("info", "clear"), help="info: what each cache holds; clear: delete them all")

    rv = sub.add_parser("review", help="find likely label errors, near-duplicates and outliers; apply or undo a plan")
    rv.add_argument("data", help="the labelled dataset folder (one subfolder per class)")
    rv.add_argument("--json", action="store_true", help="print the review as JSON")
    rv.add_argument("--top", type=_positive_int, default=20, help="show the N worst of each kind (default 20; 0: all)")
    rv.add_argument("--test", help="a test folder to check for near-duplicates of training photos (leakage)")
    rv.add_argument("--model", help="the pretrained backbone whose features are compared (default: the default one)")
    rv.add_argument("--write-plan", metavar="PLAN.json",
                    help="write the suggestions as a plan (relabel, remove) to edit, then --apply")
    rv.add_argument("--apply", metavar="PLAN.json", help="apply a reviewed plan (refused if its files changed since)")
    rv.add_argument("--undo", action="store_true", help="undo the last applied plan")

    g = sub.add_parser("get-samples", help="download sample photos of cats and dogs into a new folder")
    g.add_argument("dest", help="the folder to create (it must not exist, or be empty)")
    g.add_argument("--set", dest="sample_set", choices=("small", "large"), default="small",
                   help="small: 3,000 photos (68.6 MB, train/ and validation/); large: Microsoft's "
                        "PetImages, about 25,000 photos (about 800 MB)")
    g.add_argument("--url", help="download the archive from this address instead (a mirror of the same zip)")
    g.add_argument("--sha256", help="refuse the archive unless its SHA-256 checksum is this")
    g.add_argument("--quiet", action="store_true", help="no progress line")
    return p


# ------------------------------------------------------------------------------------------------


def _cmd_lr_find(args) -> int:
    from .core.config import make_config, overrides_from_cli
    from .core.data.augment import AugmentSettings
    from .core.errors import CatdogError
    from .core.training.harness import find_learning_rate

    if not 10 <= args.steps <= 10_000:
        raise CatdogError("--steps must be between 10 and 10000")
    cfg = make_config(augment=AugmentSettings(enabled=args.augment), **overrides_from_cli(args))
    found = find_learning_rate(cfg, args.data, val_dir=args.val, resume_from=args.resume, steps=args.steps)
    if args.json:
        print(json.dumps(found.to_dict(), indent=1))
        return EXIT_OK
    print("\n".join(found.lines()))
    flags = f" --model {cfg.model}" + (" --augment" if args.augment else "")
    print(f"Use it: catdog train {args.data}{flags} --lr {found.suggestion:.2e} --out model.pt")
    return EXIT_OK


def _cmd_train(args) -> int:
    from .core.training import harness as run
    from .core.data.augment import AugmentSettings
    from .core.config import make_config, overrides_from_cli
    from .core.training.distributed import init_from_env, shutdown
    from .core.events import Status
    from .core.training.progress import TqdmProgress
    from .core.storage.run_store import RunRecorder

    given = overrides_from_cli(args)
    cfg = make_config(augment=AugmentSettings(enabled=args.augment), **given)
    if args.augment and "epochs" not in given:
        print(f"Augmentation on: {cfg.epochs} epochs, early-stopping patience {cfg.patience} (augmented training "
              "learns more slowly; --epochs and --patience change this)", flush=True)
    out = run.check_output(args.out)

    ctx = init_from_env()  # under torchrun: join the other processes; only rank 0 prints and saves
    main = ctx is None or ctx.is_main
    try:
        recorder = RunRecorder(source="cli") if main else None
        result = run.train(cfg, args.data, out, val_dir=args.val, resume_from=args.resume,
                           progress=TqdmProgress(bars=not args.quiet) if main else None,
                           tensorboard=args.tensorboard if main and args.tensorboard else None, dist=ctx,
                           recorder=recorder)
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
        from .core.inference.evaluation import measured_on

        print(f"{result.status.words}: {result.reason}. Best epoch {result.best_epoch}: validation accuracy "
              f"{m.accuracy * 100:.1f}% on {measured_on(m.n, result.val_seen)}")
    if recorder.record is not None:
        print(f"Run {recorder.record.id}" + (f" (not kept: {recorder.error})" if recorder.error
                                             else " kept: see `catdog runs`"))
    return EXIT_INTERRUPTED if result.cancelled else EXIT_OK


def _cmd_evaluate(args) -> int:
    from .core.inference.evaluation import evaluate_folder
    from .core.inference.predictor import Predictor

    predictor = Predictor(args.model, args.device, unfamiliar_check=not args.no_unfamiliar_check)
    metrics, skipped = evaluate_folder(predictor, args.data, allow_overlap=args.allow_overlap)
    _print_notice(predictor)
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
    from .core.inference.predictor import Predictor

    predictor = Predictor(args.model, args.device, unfamiliar_check=not args.no_unfamiliar_check)
    preds = predictor.predict_many(args.images)
    _print_notice(predictor)
    if args.json:
        print(json.dumps({"model": str(args.model), "classes": predictor.classes,
                          "unfamiliar_check": predictor.unfamiliar_notice or "on",
                          "predictions": [p.to_dict() for p in preds]}, indent=2))
    else:
        for p in preds:
            if p.ok:
                print(_prediction_line(predictor, p))
            else:
                print(f"{p.source}: error: {p.error}", file=sys.stderr)
    return EXIT_OK if all(p.ok for p in preds) else EXIT_USER


def _print_notice(predictor) -> None:
    """The predictor's one line about its backbone path (onnxruntime unavailable, ...), and whether
    the unfamiliar-photo check runs, on stderr."""
    if predictor.notice:
        print(f"Note: {predictor.notice}", file=sys.stderr)
    if predictor.unfamiliar_notice:
        print(f"Note: {predictor.unfamiliar_notice}", file=sys.stderr)


def _answers_lines(info) -> list[str]:
    """`catdog info`: the model file's calibration and unfamiliar-photo check, in words."""
    from .core.inference.calibration import Calibration
    from .core.inference.unfamiliar import NOT_AVAILABLE, Unfamiliarity

    cal = Calibration.from_meta(info.meta.get("calibration"))
    unf = Unfamiliarity.from_meta(info.meta.get("unfamiliar"), info.extras)
    out = [f"Calibration  temperature {cal.temperature:.3g}: ECE {cal.ece_before * 100:.2f}% before, "
           f"{cal.ece_after * 100:.2f}% after (cross-fitted on {cal.n:,} validation photos)"
           if cal else "Calibration  none (probabilities as trained)"]
    out.append(f"Unfamiliar   {unf.method} score, flagged above {unf.threshold:.4g} ({unf.val_pass * 100:.0f}% of "
               f"{unf.n_val:,} validation photos pass)" if unf else f"Unfamiliar   {NOT_AVAILABLE}")
    return out


def _add_unfamiliar_flag(parser) -> None:
    parser.add_argument("--no-unfamiliar-check", action="store_true",
                        help="do not flag photos unlike the training photos (\"neither cat nor dog\")")


def _prediction_line(predictor, p) -> str:
    """'a.jpg: dog (95.1% dog, 4.9% cat)', or for a flagged photo the verdict first, the answer after."""
    if p.unfamiliar:
        return (f"{p.source}: {predictor.verdict()} (unfamiliarity {p.unfamiliar_score:.3g} > threshold "
                f"{p.unfamiliar_threshold:.3g}); the model's answer: {p.label} ({p.describe()})")
    return f"{p.source}: {p.label} ({p.describe()})"


def format_layers(layers) -> list[str]:
    rows = [("layer", "type", "kernel", "stride", "output volume", "parameters")]
    for l in layers:
        rows.append((l.name, l.kind, l.kernel or "-", l.stride or "-", " x ".join(map(str, l.out_shape)), f"{l.params:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    out = ["  ".join(c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    out.insert(1, "-" * len(out[0]))
    return out


def _cmd_info(args) -> int:
    from .core.storage.modelfile import load_model
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
    for line in _answers_lines(info):
        print(line)
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


def _parse_unit(text: str) -> tuple[str, int, int, int]:
    from .core.errors import CatdogError

    layer, _, rest = text.partition(":")
    try:
        nums = [int(v) for v in rest.split(",")] if rest else [1]
    except ValueError:
        nums = []
    if not layer or not 1 <= len(nums) <= 3 or nums[0] < 1 or any(v < 0 for v in nums[1:]):
        raise CatdogError(f"--unit {text}: write LAYER:MAP,Y,X with the map counted from 1, e.g. c3:1,5,5 or f6:12")
    nums += [0] * (3 - len(nums))
    return layer.lower(), nums[0] - 1, nums[1], nums[2]


def _cmd_explain(args) -> int:
    from .core.errors import CatdogError
    from .core.inference.explainer import explain_photo, page_for, write_page
    from .core.inference.predictor import Predictor
    from .core.inference.unit_arithmetic import is_explainable

    unit = _parse_unit(args.unit) if args.unit else None
    predictor = Predictor(args.model, "cpu")
    array = predictor.preprocess(args.photo)
    if not is_explainable(predictor.model):  # a pretrained backbone: the simpler view
        from .core.inference.backbone_view import backbone_html, explain_backbone
        from .core.inference.explain_html import page_shell

        if unit is not None:
            raise CatdogError("--unit is for LeNet-5 models; a pretrained backbone is shown by its blocks")
        bx = explain_backbone(predictor, array, Path(args.photo).name)
        path = write_page(args.out, page_shell(f"{Path(args.model).name} on {Path(args.photo).name}", "",
                                               backbone_html(bx)))
        print(f"{Path(args.photo).name}: {predictor.predict(args.photo).describe()}")
        print(f"Wrote {path}")
        return EXIT_OK
    ex = explain_photo(predictor, array, Path(args.photo).name)
    if unit is not None:
        try:
            ex.unit(*unit)
        except (KeyError, IndexError) as e:
            raise CatdogError(f"--unit {args.unit}: {str(e).strip(chr(39))}") from None
    path = write_page(args.out, page_for(ex, unit))
    print(f"{Path(args.photo).name}: {ex.prediction_text}")
    print(f"Wrote {path}")
    return EXIT_OK


def _cmd_scan(args) -> int:
    from .core.data.scan import scan_dataset

    ds = scan_dataset(args.data, args.val)
    if args.json:
        print(json.dumps(ds.report.to_dict(), indent=2))
    else:
        print("\n".join(ds.report.lines()))
    return EXIT_OK


def _cmd_review(args) -> int:
    from .core.inference import review as rv
    from .core.inference import review_plan as plan

    if args.undo:
        entries = plan.undo_last(args.data)
        print(f"Undid {len(entries)} action(s)." if entries else "Nothing to undo.")
        return EXIT_OK
    if args.apply:
        entries = plan.apply_plan(args.data, plan.load_plan(args.apply))
        for e in entries:
            print(f"{e['action']:8} {e['path']}" + (f" -> {e['to']}" if e.get("to") else ""))
        print(f"Applied {len(entries)} action(s); undo with: catdog review {args.data} --undo")
        return EXIT_OK
    features = rv.pretrained_features(args.model) if args.model else None
    review = rv.review_dataset(args.data, features, test_dir=args.test)
    top = args.top or None
    if args.write_plan:
        from .core.storage.files import atomic_write

        proposed = plan.proposed_plan(review, top)
        atomic_write(args.write_plan, lambda f: f.write(json.dumps(proposed, indent=1)), mode="w")
    if args.json:
        print(json.dumps(review.to_dict(top), indent=2))
        return EXIT_OK
    print(f"Reviewed {args.data} in {review.seconds:.1f} s")
    print("\n".join(review.lines(top, leaks=bool(args.test))))
    if args.write_plan:
        print(f"Wrote the plan to {args.write_plan}: edit it, then catdog review {args.data} --apply {args.write_plan}")
    return EXIT_OK


def _cmd_models(_args) -> int:
    from .core.models import list_specs

    for s in list_specs():
        pre = {"none": "from scratch", "bundled": "pretrained weights included", "download": "pretrained weights downloaded once"}[s.pretrained]
        print(f"{s.name:<20} {s.title} - {s.default_image_size}px, {pre}")
    return EXIT_OK


def _cmd_runs(args) -> int:
    from .core.storage.run_store import RunStore, compare, compare_lines, list_lines

    store = RunStore()
    action = getattr(args, "runs_action", None)
    if action is None:
        entries = store.entries()
        if args.json:
            print(json.dumps([e.to_dict() if hasattr(e, "to_dict") else
                              {"id": e.id, "damaged": True, "reason": e.reason} for e in entries], indent=1))
        elif not entries:
            print(f"No runs yet in {store.folder}: `catdog train` and the app keep every run there.")
        else:
            print("\n".join(list_lines(entries)))
        return EXIT_OK
    if action == "show":
        rec = store.get(args.id)
        print(json.dumps(rec.to_dict(), indent=1) if args.json else "\n".join(rec.lines()))
        return EXIT_OK
    if action == "compare":
        a, b = (store.get(i) for i in args.id)
        print(json.dumps(compare(a, b), indent=1) if args.json else "\n".join(compare_lines(a, b)))
        return EXIT_OK
    if action == "rename":
        rec = store.update(args.id, name=args.name)
    elif action == "note":
        rec = store.update(args.id, note=args.text)
    elif action == "star":
        rec = store.update(args.id, starred=not args.off)
    elif action == "delete":
        rec = store.delete(args.id, delete_model=args.model)
        print(f"Deleted run {rec.id}" + (f" and {rec.model_path}" if args.model and rec.model_path else
                                        (f"; its model {rec.model_path} is kept" if rec.model_path else "")))
        return EXIT_OK
    elif action == "export":
        out = store.export(args.id, args.dest)
        print(f"Exported run {args.id} to {out}")
        return EXIT_OK
    print(f"{rec.id}: {rec.title}{' (starred)' if rec.starred else ''}{': ' + rec.note if rec.note else ''}")
    return EXIT_OK


def _cmd_export(args) -> int:
    from .core.errors import CatdogError
    from .core.inference.export import default_export_path, export_model, format_for_path

    if args.int8:
        from .core.inference.quantize import export_int8

        if args.format == "torchscript":
            raise CatdogError("--int8 writes ONNX: drop --format torchscript")
        out = Path(args.out) if args.out else default_export_path(args.model, "onnx").with_suffix(".int8.onnx")
        report = export_int8(args.model, out, calibration=args.calibration)
        print("\n".join(report.lines()))
        return EXIT_OK
    fmt = args.format or (format_for_path(args.out) if args.out else None)
    if fmt is None:
        raise CatdogError("say --format onnx or --format torchscript (or give --out a .onnx or .pt name)")
    out = Path(args.out) if args.out else default_export_path(args.model, fmt)
    path = export_model(args.model, fmt, out, opset=args.opset)
    print(f"Exported {args.model} to {path} ({fmt}, {path.stat().st_size / 1e6:.1f} MB); outputs class probabilities")
    return EXIT_OK


def _cmd_cache(args) -> int:
    from .core.storage.caches import cache_info, cache_root, clear_caches
    from .core.text import size_text

    if args.action == "clear":
        freed = clear_caches()
        print(f"Cleared the caches in {cache_root()}: {size_text(freed)} freed")
        return EXIT_OK
    usage = cache_info()
    print(f"Caches in {cache_root()}:")
    width = max(len(u.title) for u in usage)
    for u in usage:
        print(f"  {u.title:<{width}}  {size_text(u.nbytes):>10}  {u.files:6d} file(s)  {u.folder}")
    print(f"  {'total':<{width}}  {size_text(sum(u.nbytes for u in usage)):>10}")
    return EXIT_OK


def _cmd_get_samples(args) -> int:
    from .core.data.imageio import is_image_name
    from .core.data.sample_photos import get_samples

    last = [0.0]
    tty = sys.stderr.isatty()

    def progress(p) -> None:
        import time

        now = time.monotonic()
        if args.quiet or (not tty and now - last[0] < 5.0 and p.done != p.total):
            return
        last[0] = now
        print(("\r" if tty else "") + p.text().ljust(72), end="" if tty else "\n", file=sys.stderr, flush=True)

    try:
        res = get_samples(args.dest, set_key=args.sample_set, url=args.url, sha256=args.sha256, progress=progress,
                          mirror_hint="use --url with a mirror")
    finally:
        if tty and not args.quiet:
            print(file=sys.stderr)
    n = sum(1 for p in res.folder.rglob("*") if p.is_file() and is_image_name(p))
    print(f"{n:,} photos in {res.folder}")
    print(f"Train on them: catdog train {res.folder} --out model.pt")
    return EXIT_OK


COMMANDS = {"get-samples": _cmd_get_samples, "train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict, "info": _cmd_info,
            "scan": _cmd_scan, "models": _cmd_models, "export": _cmd_export, "cache": _cmd_cache,
            "runs": _cmd_runs, "review": _cmd_review, "lr-find": _cmd_lr_find, "explain": _cmd_explain}


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
