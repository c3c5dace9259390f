"""benchmarks/finetune_speed.py: option names map to FineTunedTransformer parameters, and
bad options or a missing GPU end the script with a one-line error before anything loads."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anchoral.errors import ValidationError

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "finetune_speed.py"


@pytest.fixture(scope="module")
def speed_module():
    spec = importlib.util.spec_from_file_location("benchmark_finetune_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("option, params", [
    ("full", {}),
    ("top1", {"train_layers": 1}),
    ("head", {"train_layers": 0}),
    ("lpft", {"lp_ft": True}),
    ("lpft-top2", {"train_layers": 2, "lp_ft": True}),
    ("top1@1e-4", {"train_layers": 1, "learning_rate": 1e-4}),
])
def test_option_names_map_to_model_parameters(speed_module, option, params):
    assert speed_module.option_params(option) == params


def test_an_unknown_option_is_refused(speed_module):
    with pytest.raises(ValidationError, match="unknown option 'topx'"):
        speed_module.option_params("topx")


@pytest.mark.parametrize("arguments, message", [
    (["--options", "top9"], "error: train_layers must be None (full fine-tuning) or an integer from 0 to 6"),
    (["--options", "full,lp"], "error: unknown option 'lp'"),
    pytest.param(["--device", "cuda"], "error: device='cuda' but PyTorch sees no CUDA GPU here",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")),
])
def test_bad_arguments_end_with_one_line(arguments, message):
    finished = subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 1
    assert finished.stderr.strip().startswith(message) and "\n" not in finished.stderr.strip()
