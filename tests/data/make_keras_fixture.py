"""Writes keras_mlp.keras and keras_mlp_predictions.npz with real Keras 3 (run by hand:
``KERAS_BACKEND=jax python tests/data/make_keras_fixture.py``; needs keras, jax and h5py).

The model is a functional chain of every layer kind fastmlp reads from a .keras file, compiled
and trained for one epoch so that the file also holds Adam's variables; the .npz holds inputs
and Keras's predictions for them, which tests/test_keras_files.py compares fastmlp's with.
"""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

HERE = Path(__file__).parent

keras.utils.set_random_seed(7)
inputs = keras.Input((2, 3), name="features")
x = keras.layers.Flatten()(inputs)
x = keras.layers.Dense(5, activation="tanh")(x)
x = keras.layers.Dropout(0.25)(x)
x = keras.layers.Dense(4)(x)
x = keras.layers.LeakyReLU(negative_slope=0.1)(x)
x = keras.layers.Dense(3, use_bias=False)(x)
outputs = keras.layers.Activation("softmax")(x)
model = keras.Model(inputs, outputs, name="keras_mlp")
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
rng = np.random.default_rng(7)
x_train = rng.normal(size=(64, 2, 3)).astype("float32")
y_train = keras.utils.to_categorical(rng.integers(0, 3, 64), 3)
model.fit(x_train, y_train, epochs=1, batch_size=16, verbose=0)
model.save(HERE / "keras_mlp.keras")
x_test = rng.normal(size=(8, 2, 3)).astype("float32")
np.savez(HERE / "keras_mlp_predictions.npz", x=x_test, y=np.asarray(model.predict(x_test, verbose=0)))
