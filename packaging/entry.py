"""Entry point of the frozen app (PyInstaller): the normal app, plus what the executable must also do.

* ``catdog-gui --smoke-test [PHOTO]``: checks that the build works (:mod:`smoke_test`), exits 0 or 1.
* ``catdog-gui --version``: the version, the PyTorch build and where the weights come from.
* ``catdog-gui [-u] -m MODULE ARGS...``: run a bundled module as ``python -m`` would. The app starts its
  training process as ``sys.executable -m catdog_gui.core.training.child`` (several processes:
  ``-m torch.distributed.run ... -m catdog_gui.core.training.child``, whose ranks torchrun starts as
  ``sys.executable -u -m ...``); in the frozen app ``sys.executable`` is this program, so it must
  understand those.
* anything else: ``catdog_gui.gui.app.main`` (the window).
"""

from __future__ import annotations

import sys


def run_module(argv: list[str]) -> int | None:
    """``[-u] -m MODULE ARGS...`` run like ``python``; None if ``argv`` is not such a command line."""
    args = list(argv)
    unbuffered = False
    while args[:1] == ["-u"]:
        unbuffered = True
        args = args[1:]
    if args[:1] != ["-m"] or len(args) < 2:
        return None
    if unbuffered:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.reconfigure(line_buffering=True, write_through=True)
    import runpy

    sys.argv = [sys.executable, *args[2:]]
    try:
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return 0


def main() -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # in case a library starts workers with spawn
    argv = sys.argv[1:]
    code = run_module(argv)
    if code is not None:
        return code
    if argv[:1] == ["--smoke-test"]:
        import smoke_test

        return smoke_test.main(argv[1:])
    if argv[:1] == ["--version"]:
        from catdog_gui.core.about import version_lines

        print("\n".join(version_lines()))
        return 0
    from catdog_gui.gui.app import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
