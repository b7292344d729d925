"""GCN (Kipf & Welling) with Degree-Quant's quantization points.

Per layer: input -> weight -> feature (X·W) -> norm (per-edge symmetric normalization of
A + I) -> message (norm · x_j) -> aggregate (sum over in-edges) -> update (aggregate + bias;
the bias itself stays float). Node-indexed points are masked by the node, messages by the
source node. Dropout acts on the quantized input, so training sees the ranges eval will.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from dqc.models.base import NodeClassifier, QuantMessagePassing, dropout, input_kind
from dqc.models.quant_points import QuantPoints
from dqc.schemes import Scheme


class GCNConv(QuantMessagePassing):
    def __init__(self, in_channels, out_channels, scheme: Scheme, dropout=0.0, input_kind="relu"):
        super().__init__()
        self.dropout = dropout
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.xavier_uniform_(self.lin.weight)
        roles = ("input", "weight", "feature", "norm", "message", "aggregate", "update")
        self.quant = QuantPoints(scheme, roles, input_kind)

    def forward(self, x, edge_index, norm, protect=None):
        x = dropout(self.quant.input(x, protect), self.dropout, self.training)
        h = self.quant.feature(F.linear(x, self.quant.weight(self.lin.weight)), protect)
        norm = self.quant.norm(norm)
        out = self.propagate(edge_index, x=h, norm=norm, protect=protect)
        return self.quant.update(out + self.bias, protect)

    def message(self, x_j, norm, protect_j):
        return self.quant.message(norm.unsqueeze(-1) * x_j, protect_j)


class GCN(NodeClassifier):
    """GCN layers of widths ``channels`` (``[in, hidden, ..., out]``)."""

    def __init__(self, channels: list[int], scheme, dropout=0.5):
        super().__init__()
        for i, (c_in, c_out) in enumerate(itertools.pairwise(channels)):
            self.convs.append(GCNConv(c_in, c_out, scheme, dropout, input_kind(i)))

    def graph_inputs(self, edge_index, num_nodes):
        return gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
