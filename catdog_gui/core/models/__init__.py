"""Model architectures, by name. See :mod:`.registry`."""

from .registry import (  # noqa: F401
    BackboneClassifier,
    LayerInfo,
    ModelSpec,
    create_model,
    get_spec,
    list_specs,
    register,
    summary,
    title_of,
)
