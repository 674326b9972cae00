"""Save ``echo_agent.py`` as an MLflow model folder (models-from-code) for ``mlflow models serve``.

<python with mlflow> save_model.py OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import mlflow


def main() -> int:
    out = Path(sys.argv[1])
    if out.exists():
        shutil.rmtree(out)
    code = Path(__file__).resolve().parent / "echo_agent.py"
    example = {"input": [{"role": "user", "content": "hello"}]}
    mlflow.pyfunc.save_model(
        path=str(out), python_model=str(code), input_example=example, pip_requirements=["mlflow"]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
