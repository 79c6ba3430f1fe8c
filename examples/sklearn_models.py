"""scikit-learn: partial_fit epochs (SGDClassifier) and boosting stages (GradientBoosting).

Run: python examples/sklearn_models.py [RUN_DIR]
"""

import sys
import tempfile
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import SGDClassifier

from datacarto import compute_metrics
from datacarto.integrations.sklearn import record_partial_fit, record_staged

out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="datacarto-"))
X, y = load_digits(return_X_y=True)
X, y = X[:300] / 16.0, y[:300]

sgd = SGDClassifier(loss="log_loss", random_state=0)
dyn = record_partial_fit(sgd, X, y, epochs=5, batch_size=64, path=out / "sgd")   # eval mode
print(f"partial_fit: {dyn.n_examples} examples x {dyn.n_epochs} epochs -> {out / 'sgd'}")

gb = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(X, y)
dyn = record_staged(gb, X, y, every=4, path=out / "gb")                          # stages 4..20
print(f"staged: {dyn.n_examples} examples x {dyn.n_epochs} checkpoints -> {out / 'gb'}")
print(compute_metrics(dyn)[["id", "confidence", "variability", "region"]].head())
