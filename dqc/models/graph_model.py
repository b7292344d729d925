"""Graph-level models: a stack of graph convolutions, mean or add pooling per graph, an MLP
readout.

``forward(x, edge_index, batch, num_graphs, protect)`` takes PyG's disjoint batch of graphs
(``batch[v]`` is node ``v``'s graph) and returns one row of logits (or one regression value)
per graph. Each convolution is followed by a ReLU (none after a GIN whose layers end in
BatchNorm, as the authors' do: its signed outputs are pooled as they are); the node
embeddings are averaged (or summed, ``pooling="add"``) per graph in float, then two
``QuantLinear`` layers (ReLU and dropout between) read out, as in the authors'
REDDIT-BINARY GIN. Protection masks reach the
convolutions only; the readout is not mask-aware (its rows are graphs, not nodes).

Dropout acts in the readout only (the convolutions get none). BatchNorm, where a config
asks for it (GIN's ``batch_norm``), sits right after a linear and is folded into it
(``QuantLinear``), or after the ReLU that follows (GIN's ``norm_after_relu``) as a
per-channel scale and shift the integer program requantizes with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import global_add_pool, global_mean_pool

from dqc.models.base import NodeClassifier
from dqc.models.quant_linear import QuantLinear
from dqc.schemes import Scheme

POOLINGS = {"mean": global_mean_pool, "add": global_add_pool}


class GraphModel(nn.Module):
    def __init__(
        self,
        body: NodeClassifier,
        width: int,
        out_channels: int,
        scheme: Scheme,
        dropout: float,
        pooling: str = "mean",
    ):
        """``body``'s last layer outputs ``width`` channels per node."""
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
        self.body = body
        self.dropout = dropout
        self.pooling = pooling
        pooled_kind = "relu" if body.relu_between_layers else "signed"
        self.readout = nn.ModuleList(
            [
                QuantLinear(width, width, scheme, input_kind=pooled_kind),
                QuantLinear(width, out_channels, scheme),
            ]
        )

    def forward(self, x, edge_index, batch, num_graphs: int, protect=None) -> torch.Tensor:
        nodes = self.body(x, edge_index, protect)
        if self.body.relu_between_layers:
            nodes = F.relu(nodes)
        h = POOLINGS[self.pooling](nodes, batch, num_graphs)
        h = F.dropout(F.relu(self.readout[0](h)), self.dropout, self.training)
        return self.readout[1](h)
