"""scikit-learn estimators trained by fastmlp's core: drop-in replacements for
``sklearn.neural_network.MLPClassifier`` and ``MLPRegressor``.

Needs scikit-learn (``pip install fastmlp[sklearn]``); ``import fastmlp`` does not import it.
See docs/sklearn.md for what matches scikit-learn and what differs.
"""

from __future__ import annotations

from ._classifier import MLPClassifier
from ._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
