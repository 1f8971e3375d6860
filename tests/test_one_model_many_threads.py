"""Calls on one model from several Python threads run one after the other (a per-model lock):
the core's scratch buffers and weights belong to the model, and two calls into them at once
corrupted memory. Different models still train in parallel, bit-identical to sequential runs.

Each scenario runs in a subprocess: before the lock, these crashed the interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PRELUDE = textwrap.dedent(
    """
    import threading
    import numpy as np
    import fastmlp as fm

    rng = np.random.default_rng(0)
    x = rng.random((3000, 40)).astype(np.float32)
    y = rng.integers(0, 10, 3000)

    def make(seed=1, optimizer="adam"):
        fm.utils.set_random_seed(seed)
        model = fm.Sequential([
            fm.layers.Input((40,)),
            fm.layers.Dense(64, activation="relu"),
            fm.layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(model):
        model.fit(x, y, epochs=12, batch_size=16, verbose=0, shuffle=True)

    def same(a, b):
        return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))

    def run_together(*targets):
        threads = [threading.Thread(target=t) for t in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    """
)


def run(body: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_fit_and_predict_on_one_model_from_two_threads() -> None:
    out = run(
        """
        alone = make()
        fit(alone)
        model = make()
        bad = []
        def predict_many():
            for _ in range(300):
                out = model.predict(x[:50], batch_size=7, verbose=0)
                if out.shape != (50, 10) or not np.isfinite(out).all():
                    bad.append(out.shape)
                out = model.predict_on_batch(x[:3])
                if out.shape != (3, 10) or not np.isfinite(out).all():
                    bad.append(out.shape)
        run_together(lambda: fit(model), predict_many)
        print("same", same(alone, model), "bad", len(bad))
        """
    )
    assert "same True bad 0" in out


def test_two_fits_on_one_model_run_one_after_the_other() -> None:
    out = run(
        """
        twice = make()
        fit(twice)
        fit(twice)
        model = make()
        run_together(lambda: fit(model), lambda: fit(model))
        print("same", same(twice, model), model.optimizer.iterations, twice.optimizer.iterations)
        """
    )
    same, model_steps, twice_steps = out.split()[1:4]
    assert same == "True"
    assert model_steps == twice_steps


def test_evaluate_save_and_weights_from_other_threads_during_fit(tmp_path: pytest.TempPathFactory) -> None:
    out = run(
        f"""
        alone = make()
        fit(alone)
        model = make()
        errors = []
        def others():
            try:
                for i in range(30):
                    model.evaluate(x[:100], y[:100], verbose=0)
                    model.get_weights()
                    model.layers[0].kernel
                    model.save({str(tmp_path)!r} + f"/m{{i % 2}}.fastmlp")
            except Exception as error:
                errors.append(repr(error))
        run_together(lambda: fit(model), others)
        loaded = fm.models.load_model({str(tmp_path)!r} + "/m0.fastmlp")
        print("same", same(alone, model), "errors", errors, loaded.predict(x[:2], verbose=0).shape)
        """
    )
    assert "same True errors [] (2, 10)" in out


def test_different_models_in_threads_match_sequential_runs() -> None:
    out = run(
        """
        fm.set_num_threads(2)
        sequential = [make(seed) for seed in (1, 2, 3)]
        for model in sequential:
            fit(model)
        parallel = [make(seed) for seed in (1, 2, 3)]
        run_together(*(lambda m=m: fit(m) for m in parallel))
        print("same", all(same(a, b) for a, b in zip(sequential, parallel)))
        """
    )
    assert "same True" in out


def test_a_callback_may_use_the_model_it_trains() -> None:
    """The lock is re-entrant: evaluate, predict, get/set_weights and save from a callback of the
    same thread's fit do not deadlock."""
    out = run(
        """
        import os, tempfile
        directory = tempfile.mkdtemp()
        class Uses(fm.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                self.model.evaluate(x[:10], y[:10], verbose=0)
                self.model.predict(x[:10], verbose=0)
                self.model.set_weights(self.model.get_weights())
                self.model.save(os.path.join(directory, "m.fastmlp"))
        model = make()
        model.fit(x[:200], y[:200], epochs=2, verbose=0, callbacks=[Uses()])
        print("done")
        """
    )
    assert "done" in out
