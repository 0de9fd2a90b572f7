"""The Qt window: a thin layer over catdog_gui.core."""


def __getattr__(name):
    if name == "MainWindow":
        from .main_window import MainWindow

        return MainWindow
    raise AttributeError(name)
