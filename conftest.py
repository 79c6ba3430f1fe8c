"""pytest (``--doctest-modules``): collect an integration's doctests only where its framework imports.

Importing an adapter is asking for its framework, so without it the import fails by design;
skipping those modules keeps ``pytest`` green on a machine with only some extras installed.
Lives at the repository root so that it is not shipped in the wheel.
"""

from __future__ import annotations

import os

from datacarto._deps import is_available

# Keras 3 chooses its backend at import; the tests need no TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "torch")

_NEEDS = {
    "torch.py": ("torch",),
    "huggingface.py": ("torch", "transformers", "accelerate"),
    "lightning.py": ("torch", "lightning"),
    "keras.py": ("keras", os.environ["KERAS_BACKEND"]),  # backend names are module names
    "sklearn.py": ("sklearn",),
    "xgboost.py": ("xgboost",),
    "lightgbm.py": ("lightgbm",),
}

collect_ignore = [f"src/datacarto/integrations/{name}" for name, modules in _NEEDS.items()
                  if not all(is_available(m) for m in modules)]
