"""Model architectures, by name. See :mod:`.registry`."""

from .registry import (
    BackboneClassifier,
    LayerInfo,
    ModelInput,
    ModelSpec,
    TrainPhase,
    create_model,
    feature_parts,
    get_spec,
    list_specs,
    prefers_channels_last,
    register,
    summary,
    title_of,
    training_phases,
)
