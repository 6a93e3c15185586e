"""The gateway's image holds only what the gateway uses: its code imports nothing its package leaves out.

The compose test found it once (a gateway that would not start in its image: the case library's replay
imported the promotion evidence, and with it numpy). This finds it in seconds, without Docker: the
gateway's app and command line are imported with the pipeline's ML libraries made unimportable.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# what the model service and the worker's reports install, and the gateway's image does not
NOT_IN_THE_GATEWAY = ("numpy", "scipy", "sklearn", "onnxruntime", "pandas", "pyarrow", "altair", "mlflow")


@pytest.mark.parametrize("module", ["gateway.app", "gateway.cli", "gateway.cases", "gateway.shadow"])
def test_the_gateway_imports_without_the_ml_libraries(module: str) -> None:
    code = (
        "import sys\n"
        f"for name in {NOT_IN_THE_GATEWAY!r}:\n"
        "    sys.modules[name] = None  # import fails, as in the gateway's image\n"
        f"import {module}\n"
        f"app = getattr(sys.modules[{module!r}], 'create_app', None)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
