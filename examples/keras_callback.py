"""Keras 3 with DataMapCallback (eval mode: model.predict on the training set each epoch).

Uses the torch backend unless KERAS_BACKEND says otherwise (no TensorFlow needed).
Run: python examples/keras_callback.py [RUN_DIR]
"""

import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import datacarto  # noqa: E402
from datacarto.integrations.keras import DataMapCallback  # noqa: E402

run_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="datacarto-")
rng = np.random.default_rng(0)
y = rng.integers(0, 3, 64)
X = (rng.normal(size=(3, 8))[y] + rng.normal(size=(64, 8))).astype("float32")

model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(3)])                 # logits (no softmax)
model.compile(optimizer=keras.optimizers.SGD(0.1),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
cb = DataMapCallback(run_dir, X, y)                               # capture="eval"
model.fit(X, y, batch_size=16, epochs=3, verbose=0, callbacks=[cb])

metrics = datacarto.load(run_dir).metrics()
print(f"recorded {len(metrics)} examples x 3 epochs -> {run_dir}")
print(metrics[["id", "confidence", "variability", "region"]].head())
