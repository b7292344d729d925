"""The float function of a trained dqc model as stock PyG layers: the eager FP32 peer.

dqc's GCN / GAT / GIN compute what ``GCNConv``, ``GATConv`` and ``GINConv`` compute (GIN in
linear-first form, equal in float), so copying the weights gives the model a PyG user would
run without dqc. ``prepared=True`` moves graph preprocessing out of the forward pass: GCN
caches its normalization, GAT takes edges with self-loops already added. A graph-level
model becomes ``PyGGraphModel``: the same convolutions, ``global_mean_pool`` or
``global_add_pool``, and the readout as plain ``nn.Linear`` layers.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
import torch_geometric.nn as pyg
from torch import nn

from dqc.models.graph_model import POOLINGS


class PyGModel(nn.Module):
    def __init__(self, convs: list[nn.Module], relu_between_layers: bool = True):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.relu_between_layers = relu_between_layers

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            if i > 0 and self.relu_between_layers:
                x = F.relu(x)
            x = conv(x, edge_index)
        return x


class PyGGraphModel(nn.Module):
    def __init__(self, body: PyGModel, readout: list[nn.Linear], pooling: str):
        super().__init__()
        self.body = body
        self.readout = nn.ModuleList(readout)
        self.pool = POOLINGS[pooling]

    def forward(self, x, edge_index, batch) -> torch.Tensor:
        nodes = self.body(x, edge_index)
        h = self.pool(F.relu(nodes) if self.body.relu_between_layers else nodes, batch)
        return self.readout[1](F.relu(self.readout[0](h)))


def _linear(trained: nn.Linear) -> nn.Linear:
    copy = nn.Linear(trained.in_features, trained.out_features)
    copy.load_state_dict(trained.state_dict())
    return copy


def _gcn(conv, prepared: bool) -> nn.Module:
    out_channels, in_channels = conv.lin.weight.shape
    layer = pyg.GCNConv(in_channels, out_channels, cached=prepared)
    layer.lin.weight.data.copy_(conv.lin.weight)
    layer.bias.data.copy_(conv.bias)
    return layer


def _gat(conv, prepared: bool) -> nn.Module:
    heads, channels = conv.heads, conv.out_channels
    in_channels = conv.lin.weight.shape[1]
    layer = pyg.GATConv(
        in_channels, channels, heads=heads, concat=conv.concat, add_self_loops=not prepared
    )
    layer.lin.weight.data.copy_(conv.lin.weight)
    layer.att_dst.data.copy_(conv.att[:, :channels].reshape(1, heads, channels))
    layer.att_src.data.copy_(conv.att[:, channels:].reshape(1, heads, channels))
    layer.bias.data.copy_(conv.bias)
    return layer


def _gin(conv, prepared: bool) -> nn.Module:
    modules: list[nn.Module] = [_linear(conv.lin)]
    for module in conv.mlp:
        if isinstance(module, nn.ReLU):
            modules.append(nn.ReLU())
            continue
        modules.append(_linear(module.lin))
        if module.bn is not None:
            modules.append(copy.deepcopy(module.bn))
    if conv.norm is not None:  # the BatchNorm after the last ReLU
        modules += [nn.ReLU(), copy.deepcopy(conv.norm)]
    trained = copy.deepcopy(nn.Sequential(*modules).state_dict())
    layer = pyg.GINConv(nn.Sequential(*modules), train_eps=True)  # (re-initializes its MLP)
    layer.nn.load_state_dict(trained)
    layer.eps.data.copy_(conv.eps.reshape(layer.eps.shape))
    return layer


def to_pyg(model: nn.Module, arch: str, prepared: bool = False) -> nn.Module:
    """Stock-PyG copy of a trained dqc ``model`` (float, eval mode); graph-level models take
    ``(x, edge_index, batch)``."""
    build = {"gcn": _gcn, "gat": _gat, "gin": _gin}[arch]
    if hasattr(model, "readout"):
        body = to_pyg(model.body, arch, prepared)
        readout = [_linear(layer.lin) for layer in model.readout]
        return PyGGraphModel(body, readout, model.pooling).eval()
    convs = [build(conv, prepared) for conv in model.convs]
    return PyGModel(convs, model.relu_between_layers).eval()
