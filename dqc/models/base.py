"""Shared pieces of the three architectures: aggregate quantization and the layer stack."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import MessagePassing


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
    """A stack of graph convolutions with ReLU between them.

    Subclasses fill ``self.convs`` and turn the raw ``edge_index`` into the extra arguments
    their convolutions take (``graph_inputs``), e.g. self-loops and GCN normalization.
    """

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList()

    def graph_inputs(self, edge_index, num_nodes) -> tuple:
        raise NotImplementedError

    def forward(self, x, edge_index, protect=None):
        graph = self.graph_inputs(edge_index, x.size(0))
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = F.relu(x)
            x = conv(x, *graph, protect=protect)
        return x
