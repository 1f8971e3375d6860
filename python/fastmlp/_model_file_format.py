"""What a fastmlp model file is: its member names, its version, the bounds a reader holds it
to, and the error and warning a reader raises. ``fastmlp.saving`` documents and re-exports them.

Every bound below is checked against what a file declares (its zip directory, its ``.npy``
headers, its JSON) before anything that size is read or allocated, so a small file cannot make
the reader allocate or work much more than the file's own size.
"""

from __future__ import annotations

import re

FORMAT = "fastmlp"
VERSION = 1

MANIFEST = "fastmlp.json"
CONFIG = "config.json"
TRAINING = "training.json"
WEIGHTS = "weights"
SLOTS = "optimizer"
# The arrays of a folder are numbered from 00000 with no gap: weights/00000.npy, ...
ARRAY_NAME = re.compile(r"(weights|optimizer)/(\d{5})\.npy")

# ---------------------------------------------------------------- limits
# The zip directory, which zipfile holds whole in memory (about ten times its size): an entry of
# ours takes 65 bytes, so this is room for 60,000 members (7,000 Dense layers with 3 slots each).
MAX_DIRECTORY_BYTES = 4 << 20
# A JSON member: a config takes about 600 bytes a layer, so this is room for 7,000 layers.
MAX_JSON_BYTES = 4 << 20
# An integer literal in JSON: ours are at most 20 digits (a 64-bit generator word); a long one
# costs quadratic time to convert on Pythons without int_max_str_digits.
MAX_JSON_INT_DIGITS = 40
# An .npy header: numpy writes ours in 128 bytes, padding included; numpy itself refuses 10,000.
MAX_NPY_HEADER_BYTES = 4096
# Deflated members (our writer stores, other zip tools may deflate) may declare, all together, this
# many times the archive's size: weights deflate by under 2x, only long runs of zeros (or a
# decompression bomb) by more.
MAX_INFLATION_RATIO = 100
# ... and any archive may declare this much whatever its size (small JSON members deflate well).
MIN_INFLATION_ALLOWANCE = 1 << 20
# Bytes read from a member at a time: bounds what one read holds besides the array it fills.
READ_CHUNK_BYTES = 1 << 20
# The optimizer's step count: the core adds one to it in 64-bit signed arithmetic and uses it as an
# exponent in double precision, where integers beyond 2**53 are no longer exact.
MAX_ITERATIONS = 1 << 53


class FileFormatError(ValueError):
    """A file that is not a readable fastmlp model file.

    Raised by ``load_model``, ``Sequential.load_weights`` and unpickling, with a message that
    names the file and what is wrong, for a file that is:

    - not a regular file (a FIFO, a device such as ``/dev/zero``, a socket);
    - not a zip archive, or a damaged one: truncated, a checksum that fails, members that overlap,
      declare sizes they do not hold, or use a compression method other than stored or deflate;
    - over a bound of ``fastmlp._model_file_format`` (a zip directory, JSON member or ``.npy``
      header too large, members inflating to over ``MAX_INFLATION_RATIO`` times the archive);
    - foreign: no fastmlp manifest, a version newer than this fastmlp reads, a weights-only file
      given to ``load_model``;
    - inconsistent: JSON that does not parse or nests too deeply, a config field of the wrong
      type or value (``units`` that is not a positive integer, an unknown activation, dtype,
      layer, optimizer...), arrays missing or of other shapes than the architecture needs,
      arrays that are not plain float arrays (a pickled object array is never loaded),
      NaN or infinity in weights or optimizer slots, an optimizer state that does not match the
      optimizer (slot count or sizes, step count, generator state).

    A missing file is a ``FileNotFoundError``, a directory an ``IsADirectoryError`` and an
    unreadable file a ``PermissionError``, as ``open()`` raises them.
    """


class OptimizerStateResetWarning(UserWarning):
    """A compiled model loaded from a file without its training state (``training.json`` and
    the optimizer slots): the optimizer starts again from zero (as Keras warns when it cannot
    restore an optimizer's variables)."""


# Shown as fastmlp.saving.X (where they are documented) in tracebacks and reprs.
FileFormatError.__module__ = "fastmlp.saving"
OptimizerStateResetWarning.__module__ = "fastmlp.saving"
