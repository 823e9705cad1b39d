"""A plain ``import kopt`` is enough for ``keras.models.load_model`` to read kopt's models."""

import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    code = (
        "import keras\n"
        "import kopt.clustering, kopt.pruning, kopt.quantization\n"
        "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])\n"
        f"kopt.quantization.quantize_model(m).save(r'{folder}/qat.keras')\n"
        f"kopt.pruning.prune_low_magnitude(m).save(r'{folder}/pruned.keras')\n"
        f"kopt.clustering.cluster_weights(m, 2).save(r'{folder}/clustered.keras')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return folder


@pytest.mark.parametrize(
    "imports",
    [
        "import keras\nimport kopt",  # Keras first: kopt registers at once
        "import kopt\nimport keras",  # kopt first: registered once Keras has loaded
        "import kopt.quantization\nimport keras",  # one subpackage loads Keras; the others follow
        "from kopt import pruning\nimport keras",
    ],
)
def test_every_kopt_model_loads_after_any_kopt_import(saved, imports):
    code = (
        imports
        + "\n"
        + "".join(f"keras.models.load_model(r'{saved}/{name}.keras')\n" for name in ("qat", "pruned", "clustered"))
        + "print('loaded')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "loaded" in result.stdout, result.stderr[-2000:]


def test_every_subpackage_is_an_attribute_of_kopt():
    code = (
        "import kopt\n"
        "for name in ('auto', 'clustering', 'distillation', 'distribute', 'pruning', 'quantization', 'training'):\n"
        "    assert getattr(kopt, name).__name__ == 'kopt.' + name\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
