"""The transformer pieces of DETR, written out: sine positions, encoder and decoder layers, an MLP.

DETR (Carion et al. 2020) reads a CNN's feature map as a sequence of ``h * w`` tokens:

* attention has no notion of where a token is, so a **positional encoding** is added: sines and
  cosines of the token's row and column at several frequencies (:func:`sine_positions`, DETR's
  2-D version of Vaswani et al. 2017, Sec. 3.5);
* an **encoder layer** lets every token attend to every other (self-attention), then a small MLP
  (:class:`EncoderLayer`);
* a **decoder layer** lets the object queries attend to each other (so that two queries do not
  claim the same object), then to the encoder's tokens (cross-attention), then an MLP
  (:class:`DecoderLayer`).

As in DETR, the positions are added to the queries and keys of every attention, never to the
values: what a token *says* stays free of where it is. Layers normalize before each block
("pre-norm"), which trains more stably than DETR's post-norm on small budgets.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sine_positions(height: int, width: int, dim: int, device=None, temperature: float = 10000.0) -> Tensor:
    """DETR's 2-D sine positional encoding of an ``height x width`` map: Tensor[height * width, dim].

    Half the channels encode the row and half the column, each as ``sin, cos`` pairs at ``dim / 4``
    frequencies from 1 to ``1 / temperature`` (positions normalized to [0, 2π]).
    """
    if dim % 4:
        raise ValueError(f"dim: expected a multiple of 4, got {dim}")
    ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height * 2 * math.pi  # (h,)
    xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width * 2 * math.pi  # (w,)
    y, x = torch.meshgrid(ys, xs, indexing="ij")  # (h, w) each
    return torch.cat(
        [sine_embed(y.flatten(), dim // 2, temperature), sine_embed(x.flatten(), dim // 2, temperature)], 1
    )


def sine_embed(values: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """Each value of Tensor[N] as ``dim`` sines and cosines at geometric frequencies: Tensor[N, dim]."""
    frequencies = temperature ** (torch.arange(dim // 2, dtype=torch.float32, device=values.device) * 2 / dim)
    angles = values[:, None] / frequencies  # (N, dim/2)
    return torch.stack([angles.sin(), angles.cos()], dim=2).flatten(1)  # (N, dim) sin, cos interleaved


def box_positions(boxes: Tensor, dim: int) -> Tensor:
    """Sine embedding of normalized ``cxcywh`` boxes, Tensor[..., 4] -> Tensor[..., 2 * dim].

    Each of the four numbers (in [0, 1], scaled to [0, 2π]) gets ``dim / 2`` channels: the
    positional part of an anchor-like query (DAB-DETR, Liu et al. 2022).
    """
    flat = boxes.reshape(-1, 4) * 2 * math.pi  # (M, 4)
    parts = [sine_embed(flat[:, index], dim // 2) for index in range(4)]  # 4 x (M, dim/2)
    return torch.cat(parts, dim=1).reshape(*boxes.shape[:-1], 2 * dim)


class MLP(nn.Sequential):
    """``layers`` linear layers with ReLUs between them: ``in_dim -> hidden -> ... -> out_dim``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int) -> None:
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        modules: list[nn.Module] = []
        for index, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            modules.append(nn.Linear(a, b))
            if index < layers - 1:
                modules.append(nn.ReLU())
        super().__init__(*modules)


class EncoderLayer(nn.Module):
    """Self-attention over the tokens (positions on queries and keys), then an MLP; pre-norm."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = MLP(dim, hidden, dim, 2)

    def forward(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """Tensor[B, N, D] tokens and Tensor[N, D] (or [B, N, D]) positions -> Tensor[B, N, D]."""
        x = self.norm1(tokens)
        tokens = tokens + self.attention(x + positions, x + positions, x, need_weights=False)[0]
        return tokens + self.mlp(self.norm2(tokens))


class DecoderLayer(nn.Module):
    """Self-attention among the queries, cross-attention to the encoder's tokens, an MLP; pre-norm.

    ``forward`` also returns the cross-attention weights (averaged over heads), Tensor[B, Q, N]:
    where on the image each query looked.
    """

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = MLP(dim, hidden, dim, 2)

    def forward(
        self, queries: Tensor, query_positions: Tensor, memory: Tensor, memory_positions: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Tensor[B, Q, D] queries -> (Tensor[B, Q, D], cross-attention weights Tensor[B, Q, N])."""
        x = self.norm1(queries)
        queries = (
            queries + self.self_attention(x + query_positions, x + query_positions, x, need_weights=False)[0]
        )
        x = self.norm2(queries)
        attended, weights = self.cross_attention(x + query_positions, memory + memory_positions, memory)
        queries = queries + attended
        return queries + self.mlp(self.norm3(queries)), weights
