"""Start the application: the window paints first, torch loads in the background afterwards.

On Linux the system libraries Qt needs are checked first (:mod:`.linux_deps`): a missing one is
named, with the command that installs it, instead of Qt's "could not load the Qt platform plugin"."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    if list(sys.argv if argv is None else argv)[1:2] == ["--version"]:
        from ..core.about import version_lines

        print("\n".join(version_lines()))
        return 0
    from . import linux_deps

    # on Linux, before Qt: missing system libraries make Qt abort with a message that names
    # nothing to install; say which, and the command that installs them
    problem = linux_deps.startup_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    try:
        from PySide6.QtCore import QCoreApplication, Qt
        from PySide6.QtGui import QGuiApplication
        from PySide6.QtWidgets import QApplication
    except ImportError as e:
        problem = linux_deps.import_problem(e)
        if problem is None:
            raise
        print(problem, file=sys.stderr)
        return 1

    argv = list(sys.argv if argv is None else argv)
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    QCoreApplication.setOrganizationName("catdog-gui")
    QCoreApplication.setApplicationName("catdog-gui")
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationDisplayName("catdog-gui")
    from pathlib import Path

    from PySide6.QtGui import QIcon

    icon = Path(__file__).resolve().parent.parent / "resources" / "icon.png"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))

    from .common import style
    from .main_window import MainWindow

    from .common.training_process import ChildPool

    style.apply(app)
    app.aboutToQuit.connect(ChildPool.shutdown)  # the warm training process ends with the app
    win = MainWindow()
    win.show()
    # `catdog-gui FOLDER` opens a dataset folder, `catdog-gui MODEL.pt` a model
    for arg in argv[1:]:
        if arg.endswith(".pt"):
            win.set_model(arg)
        elif not arg.startswith("-"):
            win.open_dataset_path(arg)
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
