"""Shared pieces of the three architectures: aggregate quantization and the layer stack."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import MessagePassing


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout``, drawing random numbers only for the nonzeros of sparse, gradient-free
    inputs (bag-of-words features are >98 % zeros, and CPU Bernoulli sampling of all
    4-12 M entries dominated a training step). Zeros stay zero under any mask, so the result
    has exactly ``F.dropout``'s distribution."""
    if not training or p == 0.0:
        return x
    if x.requires_grad or x.dim() != 2:
        return F.dropout(x, p, training)
    rows, cols = x.nonzero(as_tuple=True)
    if rows.numel() > x.numel() // 8:
        return F.dropout(x, p, training)
    keep = torch.rand(rows.numel()) >= p
    rows, cols = rows[keep], cols[keep]
    out = torch.zeros_like(x)
    out[rows, cols] = x[rows, cols] / (1.0 - p)
    return out


def input_kind(layer: int, relu_between_layers: bool = True) -> str:
    """What layer ``layer``'s input quantizer sees: dataset features first, then ReLU outputs
    (or the previous layer's signed outputs in a stack without ReLUs between layers)."""
    if layer == 0:
        return "data"
    return "relu" if relu_between_layers else "signed"


class QuantMessagePassing(MessagePassing):
    """Sum aggregation followed by the layer's ``aggregate`` quantizer, masked by target node.

    Subclasses set ``self.quant`` (a ``QuantPoints``) and pass ``protect`` to ``propagate``.
    """

    def __init__(self):
        super().__init__(aggr="add", node_dim=0)

    def aggregate(self, inputs, index, ptr=None, dim_size=None, protect=None):
        out = super().aggregate(inputs, index, ptr=ptr, dim_size=dim_size)
        return self.quant.aggregate(out, protect)


class NodeClassifier(nn.Module):
    """A stack of graph convolutions with ReLU between them (unless ``relu_between_layers``
    is False: GIN with its BatchNorm after the ReLU inside each layer).

    Subclasses fill ``self.convs`` and turn the raw ``edge_index`` into the extra arguments
    their convolutions take (``graph_inputs``), e.g. self-loops and GCN normalization.
    """

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList()
        self.relu_between_layers = True

    def graph_inputs(self, edge_index, num_nodes) -> tuple:
        raise NotImplementedError

    def forward(self, x, edge_index, protect=None):
        graph = self.graph_inputs(edge_index, x.size(0))
        for i, conv in enumerate(self.convs):
            if i > 0 and self.relu_between_layers:
                x = F.relu(x)
            x = conv(x, *graph, protect=protect)
        return x
