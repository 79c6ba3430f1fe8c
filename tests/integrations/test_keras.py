"""Keras 3 adapter on the torch backend: conformance (incl. fit(initial_epoch=...)), bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":  # pragma: no cover - another backend was imported first
    pytest.skip("these tests run Keras on the torch backend", allow_module_level=True)

import torch  # noqa: E402
from conftest import tiny_data  # noqa: E402

import datacarto  # noqa: E402
from datacarto.errors import InputError  # noqa: E402
from datacarto.testing import Capture, check_integration  # noqa: E402
from datacarto.integrations.keras import DataMapCallback  # noqa: E402

torch.set_num_threads(1)
# keras 3.15's torch-backend predict() hands numpy a tensor without a copy= keyword (third-party)
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
EPOCHS = 3
BATCH = 5
SEED = 0


class Tap(keras.layers.Layer):
    """Identity layer that hands the training forward pass's outputs to the test."""

    def __init__(self, sink: list, **kw) -> None:
        super().__init__(**kw)
        self.emit = sink.append  # a bound method: Keras would track (copy) a plain list

    def call(self, x, training=None):
        if training:
            self.emit(keras.ops.convert_to_numpy(x).copy())
        return x


def _model(sink: list | None = None, softmax: bool = False, units: int = 3) -> keras.Model:
    keras.utils.set_random_seed(0)
    layers = [keras.Input((4,)), keras.layers.Dense(units)]
    if sink is not None:
        layers.append(Tap(sink))
    if softmax:
        layers.append(keras.layers.Softmax())
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.SGD(0.3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax))
    return model


class PassCapture(keras.callbacks.Callback):
    """Pairs each training batch's tapped logits with its ids (order seeded by (seed, epoch))."""

    def __init__(self, cap: Capture, sink: list, y: np.ndarray, ids: np.ndarray) -> None:
        super().__init__()
        self.cap, self.sink, self.y, self.ids = cap, sink, y, ids

    def on_epoch_begin(self, epoch, logs=None):
        self.order = np.random.default_rng([SEED, epoch]).permutation(len(self.y))

    def on_train_batch_end(self, batch, logs=None):
        pos = self.order[batch * BATCH:(batch + 1) * BATCH]
        self.cap.add_batch(self.ids[pos], self.sink.pop(), self.y[pos])

    def on_epoch_end(self, epoch, logs=None):
        self.cap.end_epoch()


class EvalCapture(keras.callbacks.Callback):
    def __init__(self, cap: Capture, X, y, ids) -> None:
        super().__init__()
        self.cap, self.X, self.y, self.ids = cap, X, y, ids

    def on_epoch_end(self, epoch, logs=None):
        self.cap.add_batch(self.ids, self.model(self.X, training=False), self.y)
        self.cap.end_epoch()


class KeepWeights(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.by_epoch: dict[int, list] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = [w.copy() for w in self.model.get_weights()]


def keras_run(capture: str):
    def run(path: Path, resume: bool) -> Capture:
        X, y, ids = tiny_data()
        cap = Capture()
        sink: list = []
        model = _model(sink if capture == "pass" else None)
        cb = DataMapCallback(path, X, y, ids=ids, capture=capture, seed=SEED)
        watch = PassCapture(cap, sink, y, ids) if capture == "pass" else EvalCapture(cap, X, y, ids)

        def fit(m, cb, epochs, initial_epoch=0, extra=()):
            data = dict(x=cb.train_data(batch_size=BATCH), shuffle=False) if capture == "pass" \
                else dict(x=X, y=y, batch_size=BATCH, shuffle=False)
            m.fit(epochs=epochs, initial_epoch=initial_epoch, verbose=0,
                  callbacks=[cb, *extra], **data)

        if not resume:
            fit(model, cb, EPOCHS, extra=[watch])
            return cap
        keep = KeepWeights()
        fit(model, cb, 2, extra=[keep])  # "crash" after epoch 2 ...
        assert datacarto.load(path).epochs == [1, 2]
        again = _model(sink if capture == "pass" else None)  # ... resume from epoch 1's weights
        again.set_weights(keep.by_epoch[0])
        fit(again, DataMapCallback(path, X, y, ids=ids, capture=capture, seed=SEED), EPOCHS,
            initial_epoch=1)
        return cap
    return run


@pytest.mark.parametrize("capture", ["eval", "pass"])
def test_conformance(capture: str, tmp_path: Path) -> None:
    _, _, ids = tiny_data()
    check_integration(keras_run(capture), tmp_path, expected_ids=ids)
    run = datacarto.load(tmp_path / "full")
    assert run.capture == capture and run.meta.extra["integration"] == "keras"
    assert "train_step" not in vars(_model())  # the wrappers are gone after fit


def test_softmax_model_needs_inputs_probs(tmp_path: Path) -> None:
    X, y, _ = tiny_data()
    with pytest.raises(InputError, match=r"DataMapCallback \(Keras\) \(epoch 1, batch 1\): the "
                                         r"outputs look like probabilities .*inputs='probs'"):
        _model(softmax=True).fit(X, y, epochs=1, verbose=0,
                                 callbacks=[DataMapCallback(tmp_path, X, y)])
    cb = DataMapCallback(None, X, y, inputs="probs")
    _model(softmax=True).fit(X, y, epochs=2, verbose=0, callbacks=[cb])
    assert cb.to_dynamics().n_epochs == 2


def test_single_sigmoid_unit_and_one_hot_labels() -> None:
    X, y, _ = tiny_data()
    yb = (y > 0).astype(np.int64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    cb = DataMapCallback(None, X, np.eye(2)[yb])  # one-hot labels become class indices
    model.fit(X, yb.astype(np.float32), epochs=1, verbose=0, callbacks=[cb])
    dyn = cb.to_dynamics()
    z = model.predict(X, verbose=0)[:, 0]
    np.testing.assert_allclose(dyn.gold_prob[:, 0], np.where(yb == 1, 1, 0) +
                               np.where(yb == 1, -1, 1) / (1 + np.exp(z)), atol=1e-5)


def test_pass_mode_needs_the_callbacks_training_data(tmp_path: Path) -> None:
    X, y, _ = tiny_data()
    cb = DataMapCallback(tmp_path, X, y, capture="pass")
    with pytest.raises(InputError, match=r"DataMapCallback \(Keras\) \(epoch 1, batch 1\): the "
                                         r"batch carries no example ids\. In pass mode train on "
                                         r"callback\.train_data\(\)"):
        _model().fit(X, y, epochs=1, verbose=0, callbacks=[cb])


def test_label_outside_class_range(tmp_path: Path) -> None:
    X, y, _ = tiny_data()
    bad = y.copy()
    bad[3] = 5
    with pytest.raises(InputError, match=r"DataMapCallback \(Keras\) \(epoch 1, batch 1\): labels\[3\] "
                                         r"\(id=3\) = 5 is outside 0..2"):
        _model().fit(X, y, epochs=1, verbose=0, callbacks=[DataMapCallback(tmp_path, X, bad)])


@pytest.mark.parametrize("kwargs, match", [
    ({"y": np.zeros(3, dtype=int)}, r"x has 24 rows but y has 3"),
    ({"ids": [1, 2]}, r"ids has 2 entries but x has 24 rows"),
    ({"capture": "epoch"}, r"'capture' parameter of DataMapCallback \(Keras\)"),
], ids=["labels-length", "ids-length", "capture"])
def test_bad_construction(kwargs, match) -> None:
    X, y, _ = tiny_data()
    args = {"y": y, **kwargs}
    with pytest.raises(InputError, match=match):
        DataMapCallback(None, X, **args)


def test_missing_backend_names_the_fix() -> None:
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed: the default backend imports")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = os.devnull  # ignore any keras.json of this machine
    code = ("from datacarto.errors import MissingDependencyError\n"
            "try:\n    import datacarto.integrations.keras\n"
            "except MissingDependencyError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert "set KERAS_BACKEND=torch" in out.stdout, out.stderr[-2000:]
