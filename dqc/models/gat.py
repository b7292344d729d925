"""GAT (Veličković et al.) with Degree-Quant's quantization points.

Per layer: input -> weight -> feature (X·W) -> attention (the vector ``att``, one tensor for
all heads) -> alpha (per-edge, per-head logits, before LeakyReLU) -> [LeakyReLU, edge softmax,
attention dropout in float, as in the paper] -> message (x_j · alpha) -> aggregate -> update
(heads concatenated or averaged, plus bias).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.utils import add_remaining_self_loops, softmax

from dqc.models.base import NodeClassifier, QuantMessagePassing, dropout, input_kind
from dqc.models.quant_points import QuantPoints
from dqc.schemes import Scheme

NEGATIVE_SLOPE = 0.2


class GATConv(QuantMessagePassing):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int,
        scheme: Scheme,
        concat: bool = True,
        dropout: float = 0.0,
        input_kind: str = "relu",
    ):
        super().__init__()
        self.heads, self.out_channels, self.concat = heads, out_channels, concat
        self.dropout = dropout  # on the layer input and on the attention coefficients
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        # att[h] = [a_dst | a_src]: the logit of edge j -> i is <x_i, a_dst> + <x_j, a_src>.
        self.att = nn.Parameter(torch.empty(heads, 2 * out_channels))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels if concat else out_channels))
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.xavier_uniform_(self.att)
        roles = ("input", "weight", "feature", "attention", "alpha", "message", "aggregate")
        self.quant = QuantPoints(scheme, (*roles, "update"), input_kind)

    def forward(self, x, edge_index, protect=None):
        heads, channels = self.heads, self.out_channels
        x = dropout(self.quant.input(x, protect), self.dropout, self.training)
        h = self.quant.feature(F.linear(x, self.quant.weight(self.lin.weight)), protect)
        h = h.view(-1, heads, channels)
        att = self.quant.attention(self.att)
        logit_dst = (h * att[:, :channels]).sum(-1)
        logit_src = (h * att[:, channels:]).sum(-1)
        out = self.propagate(
            edge_index, x=h, logit_src=logit_src, logit_dst=logit_dst, protect=protect
        )
        out = out.reshape(-1, heads * channels) if self.concat else out.mean(dim=1)
        return self.quant.update(out + self.bias, protect)

    def message(self, x_j, logit_src_j, logit_dst_i, index, ptr, size_i, protect_j):
        alpha = self.quant.alpha(logit_src_j + logit_dst_i, protect_j)
        alpha = softmax(F.leaky_relu(alpha, NEGATIVE_SLOPE), index, ptr, size_i)
        alpha = F.dropout(alpha, self.dropout, self.training)
        return self.quant.message(x_j * alpha.unsqueeze(-1), protect_j)


class GAT(NodeClassifier):
    """GAT layers of ``channels[i + 1]`` channels per head, ``heads`` heads concatenated;
    with ``single_head_output`` the last layer has one head (node classification)."""

    def __init__(self, channels: list[int], scheme, heads=8, dropout=0.6, single_head_output=True):
        super().__init__()
        last = len(channels) - 2
        for i, (c_in, c_out) in enumerate(itertools.pairwise(channels)):
            width = c_in if i == 0 else heads * c_in
            if i == last and single_head_output:
                conv = GATConv(width, c_out, 1, scheme, False, dropout, input_kind(i))
            else:
                conv = GATConv(width, c_out, heads, scheme, True, dropout, input_kind(i))
            self.convs.append(conv)

    def graph_inputs(self, edge_index, num_nodes):
        return (add_remaining_self_loops(edge_index, num_nodes=num_nodes)[0],)
