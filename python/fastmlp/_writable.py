"""What a save may write: only what the readers accept, so that a save never puts a file the
loaders refuse in place of one they read (a checkpoint of a diverged run over a good one).

The readers refuse NaN and infinity in weights and optimizer slots, JSON with NaN or infinity,
and JSON members over ``MAX_JSON_BYTES``; a save that would write any of them raises
``ValueError`` before the file is replaced (the save is atomic: the old file stays).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._model_file_format import MAX_JSON_BYTES


def check_finite_arrays(model_name: str, arrays: Sequence[Any], what: str) -> None:
    """A ValueError naming the first of ``arrays`` (``what``: "weight", "optimizer slot") that
    holds NaN or infinity."""
    for index, array in enumerate(arrays):
        if not np.isfinite(np.asarray(array)).all():
            raise ValueError(
                f"Model {model_name!r}: {what} {index} holds NaN or infinity (training diverged?). The "
                "loaders refuse such a file, so none is written and a file already at the path is kept. "
                "Lower the learning rate, or stop with keras.callbacks.TerminateOnNaN."
            )


def file_json(model_name: str, value: Any, member: str) -> str:
    """``value`` as the JSON text of member ``member``: a ValueError for NaN or infinity in it
    or for more than ``MAX_JSON_BYTES``, which the readers refuse."""
    try:
        text = json.dumps(value, indent=1, allow_nan=False)
    except ValueError as error:
        raise ValueError(
            f"Model {model_name!r}: its {member} holds NaN or infinity ({error}), which the loaders refuse; "
            "nothing is written and a file already at the path is kept."
        ) from None
    if len(text.encode("utf-8")) > MAX_JSON_BYTES:
        raise ValueError(
            f"Model {model_name!r}: its {member} takes {len(text.encode('utf-8'))} bytes, more than the "
            f"{MAX_JSON_BYTES} the loaders read; nothing is written and a file already at the path is kept."
        )
    return text
