"""The engine: data, augmentation, models, training, evaluation, inference, model files.

Nothing under ``catdog_gui.core`` imports Qt. Submodules are imported on demand so that
``import catdog_gui.core`` stays cheap (the GUI paints before torch is loaded).
"""
