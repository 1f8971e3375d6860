"""Session state and settings named as in ``keras.backend``: ``clear_session``, ``floatx``,
``epsilon``."""

from __future__ import annotations

import gc

from . import _names, config


def clear_session(free_memory: bool = True) -> None:
    """Reset the generated names, as Keras: the next ``Dense`` layer is named ``dense`` again
    (and the next model ``sequential``). Models and layers made before keep their names and
    work on; fastmlp keeps no other global state for a session (the seed is ``set_random_seed``'s).
    With ``free_memory`` (the default) Python's garbage collector runs, as in Keras."""
    _names.reset()
    if free_memory:
        gc.collect()


def floatx() -> str:
    """The default dtype of new models (``fm.config.floatx()``), as ``keras.backend.floatx``."""
    return config.floatx()


def epsilon() -> float:
    """Keras's fuzz factor, 1e-7: the clip of probabilities in the cross-entropy metrics and
    the smallest standard deviation ``Normalization`` divides by."""
    return 1e-7
