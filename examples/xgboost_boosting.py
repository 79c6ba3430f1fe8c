"""XGBoost: boosting rounds as checkpoints (iteration_range=(0, i)).

Run: python examples/xgboost_boosting.py [RUN_DIR]
"""

import sys
import tempfile

import numpy as np
import xgboost as xgb

import datacarto
from datacarto.integrations.xgboost import record_boosting

run_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="datacarto-")
rng = np.random.default_rng(0)
y = rng.integers(0, 3, 200)
X = rng.normal(size=(3, 8))[y] + rng.normal(size=(200, 8))

model = xgb.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1).fit(X, y)
record_boosting(model, X, y, every=5, path=run_dir)               # rounds 5, 10, ..., 30

metrics = datacarto.load(run_dir).metrics()
print(f"recorded {len(metrics)} examples x 6 checkpoints -> {run_dir}")
print(metrics[["id", "confidence", "variability", "region"]].head())
