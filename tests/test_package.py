"""Package surface: pinned __all__, no heavy imports, CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import datacarto

HEAVY = {"torch", "transformers", "lightning", "keras", "tensorflow", "xgboost", "lightgbm",
         "matplotlib", "plotly", "sklearn", "dask", "sentence_transformers", "scipy"}


def test_all_is_sorted_and_complete() -> None:
    assert datacarto.__all__ == sorted(datacarto.__all__)
    public = {n for n in vars(datacarto) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(datacarto, n)).__name__ == "module"}
    assert set(datacarto.__all__) - {"__version__", "plot_data_map"} == public - modules
    for name in datacarto.__all__:
        assert getattr(datacarto, name) is not None


def test_import_pulls_in_no_framework_or_plotting() -> None:
    code = ("import sys, json, datacarto, datacarto.cli, datacarto.integrations; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert not (HEAVY & loaded), HEAVY & loaded


def test_cli_help_lists_contract_commands() -> None:
    from datacarto.cli import build_parser

    text = build_parser().format_help()
    for command in ("run", "metrics", "map", "report", "flag", "select", "review", "import",
                    "export", "demo"):
        assert command in text


def test_python_m_datacarto_version() -> None:
    out = subprocess.run([sys.executable, "-m", "datacarto", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"datacarto {datacarto.__version__}"
