"""A BERT encoder (the MiniLM family of sentence-transformers models) in plain numpy.

Inference only, float32, from safetensors weights: embeddings -> N transformer layers (self
attention, GELU feed-forward, post-layer-norm) -> mean pooling over real tokens -> L2 normalization.
No torch, no ONNX export: the weights a package ships are read as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
_SQRT1_2 = np.float32(1 / np.sqrt(2))


@dataclass(frozen=True, slots=True)
class Layer:
    qkv: Array  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_bias: Array
    attn_out: Array
    attn_out_bias: Array
    attn_norm: tuple[Array, Array]
    ffn_in: Array
    ffn_in_bias: Array
    ffn_out: Array
    ffn_out_bias: Array
    ffn_norm: tuple[Array, Array]


@dataclass(frozen=True, slots=True)
class BertEncoder:
    words: npt.NDArray[np.float16]  # the largest matrix, only gathered from: half precision halves it
    positions: Array
    token_type: Array
    embed_norm: tuple[Array, Array]
    layers: tuple[Layer, ...]
    heads: int
    eps: float

    @property
    def dimensions(self) -> int:
        return int(self.words.shape[1])

    @property
    def max_positions(self) -> int:
        return int(self.positions.shape[0])

    @classmethod
    def load(cls, weights: Path, config: dict[str, Any]) -> BertEncoder:
        from safetensors.numpy import load_file

        w = {k.removeprefix("bert."): v for k, v in load_file(str(weights)).items()}
        layers = tuple(_layer(w, f"encoder.layer.{i}.") for i in range(int(config["num_hidden_layers"])))
        return cls(
            words=np.ascontiguousarray(w["embeddings.word_embeddings.weight"], dtype=np.float16),
            positions=_f32(w["embeddings.position_embeddings.weight"]),
            token_type=_f32(w["embeddings.token_type_embeddings.weight"][0]),
            embed_norm=_norm(w, "embeddings.LayerNorm"),
            layers=layers,
            heads=int(config["num_attention_heads"]),
            eps=float(config.get("layer_norm_eps", 1e-12)),
        )

    def encode(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Array:
        """Token ids and attention mask (batch, length) -> unit-length sentence vectors (batch, hidden)."""
        length = ids.shape[1]
        x = self.words[ids].astype(np.float32) + self.positions[:length] + self.token_type
        x = _layer_norm(x, self.embed_norm, self.eps)
        bias = np.where(mask[:, None, None, :] > 0, np.float32(0), np.float32(-1e9))
        for layer in self.layers:
            x = self._block(x, layer, bias)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (x * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Array = (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
        return unit

    def _block(self, x: Array, layer: Layer, bias: Array) -> Array:
        batch, length, hidden = x.shape
        size = hidden // self.heads
        qkv = (x @ layer.qkv + layer.qkv_bias).reshape(batch, length, 3, self.heads, size)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(1 / np.sqrt(size)) + bias
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = _layer_norm(x + context @ layer.attn_out + layer.attn_out_bias, layer.attn_norm, self.eps)
        inner = _gelu(x @ layer.ffn_in + layer.ffn_in_bias)
        return _layer_norm(x + inner @ layer.ffn_out + layer.ffn_out_bias, layer.ffn_norm, self.eps)


def _layer(w: dict[str, Any], p: str) -> Layer:
    attn = f"{p}attention."
    qkv = [w[f"{attn}self.{n}.weight"].T for n in ("query", "key", "value")]
    qkv_bias = [w[f"{attn}self.{n}.bias"] for n in ("query", "key", "value")]
    return Layer(
        qkv=_f32(np.concatenate(qkv, axis=1)),
        qkv_bias=_f32(np.concatenate(qkv_bias)),
        attn_out=_f32(w[f"{attn}output.dense.weight"].T),
        attn_out_bias=_f32(w[f"{attn}output.dense.bias"]),
        attn_norm=_norm(w, f"{attn}output.LayerNorm"),
        ffn_in=_f32(w[f"{p}intermediate.dense.weight"].T),
        ffn_in_bias=_f32(w[f"{p}intermediate.dense.bias"]),
        ffn_out=_f32(w[f"{p}output.dense.weight"].T),
        ffn_out_bias=_f32(w[f"{p}output.dense.bias"]),
        ffn_norm=_norm(w, f"{p}output.LayerNorm"),
    )


def _norm(w: dict[str, Any], name: str) -> tuple[Array, Array]:
    return _f32(w[f"{name}.weight"]), _f32(w[f"{name}.bias"])


def _f32(a: Any) -> Array:
    return np.ascontiguousarray(a, dtype=np.float32)


def _layer_norm(x: Array, params: tuple[Array, Array], eps: float) -> Array:
    weight, bias = params
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)
    normed: Array = centered / np.sqrt(var + np.float32(eps)) * weight + bias
    return normed


def _gelu(x: Array) -> Array:
    """GELU with the exact erf (BERT's `gelu`), erf by Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7)."""
    z = x * _SQRT1_2
    t = 1 / (1 + np.float32(0.3275911) * np.abs(z))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(z) * (1 - poly * np.exp(-z * z))
    out: Array = (0.5 * x * (1 + erf)).astype(np.float32)
    return out
