"""Errors a person can act on.

Every problem caused by input (a bad folder, a broken image, a model file from elsewhere, a bad flag)
is raised as :class:`CatdogError` (or a subclass) with a message written for the user. The CLI prints
the message and exits 2; the GUI shows it. Anything else is a bug and keeps its traceback.
"""


class CatdogError(Exception):
    """A user-facing error: the message says what went wrong and what to do."""


class DatasetError(CatdogError):
    """The dataset folder cannot be used for training (empty, one class, vanished...)."""


class OverlapError(DatasetError):
    """A test folder holds photos the model trained on: a score on it would read high. ``overlap`` of
    ``total`` photos; scoring anyway is the caller's choice (``allow_overlap``)."""

    def __init__(self, message: str, overlap: int = 0, total: int = 0):
        super().__init__(message)
        self.overlap, self.total = overlap, total


class ImageError(CatdogError):
    """One image cannot be read (corrupt, not an image, too large...)."""


class ModelFileError(CatdogError):
    """A model file cannot be loaded (not ours, corrupt, unsafe, newer format...)."""


class WeightsUnavailableError(CatdogError):
    """Pretrained weights are neither cached nor downloadable."""


class Cancelled(CatdogError):
    """The user cancelled a long operation."""

    def __init__(self, what: str = "cancelled"):
        super().__init__(what)


class DownloadError(CatdogError):
    """A download or an unpacking failed (sample photos, an archive): the message says why and what to do."""
