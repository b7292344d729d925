"""Quantize / dequantize as torch custom ops, so ``torch.export`` keeps each as one node.

``dqc::quantize`` maps floats to integer codes with Degree-Quant's arithmetic (float32
``x / scale + zero_point``, rounded by ``dqc.qparams.round_to_code``, clamped to
``[qmin, qmax]``), giving int8 codes for signed grids and uint8 for unsigned ones (INT4 codes
use the same dtypes with a narrower grid). ``dqc::dequantize`` maps codes back to
``(q - zero_point) * scale`` in float32. ``dequantize(quantize(x))`` is bit for bit the fake
quantizer in eval mode.

``dqc::edge_softmax`` is GAT's integer attention softmax (``dqc.edge_softmax``) and
``dqc::edge_softmax_float`` its float counterpart for FP32 models. ``dqc::segment_mean`` and
``dqc::segment_sum`` are the mean and sum of node rows per graph of a batch (``dqc.pooling``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_geometric.utils import softmax as pyg_softmax

from dqc import edge_softmax as softmax_spec
from dqc.qparams import QParams, round_to_code


def code_dtype(qmin: int) -> torch.dtype:
    return torch.int8 if qmin < 0 else torch.uint8


@torch.library.custom_op("dqc::quantize", mutates_args=())
def quantize(x: torch.Tensor, scale: float, zero_point: int, qmin: int, qmax: int) -> torch.Tensor:
    codes = torch.clamp(round_to_code(x / scale + zero_point), qmin, qmax)
    return codes.to(code_dtype(qmin))


@quantize.register_fake
def _(x, scale, zero_point, qmin, qmax):
    return torch.empty_like(x, dtype=code_dtype(qmin))


@torch.library.custom_op("dqc::dequantize", mutates_args=())
def dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    return (q.to(torch.float32) - zero_point) * scale


@dequantize.register_fake
def _(q, scale, zero_point):
    return torch.empty_like(q, dtype=torch.float32)


def quantize_with(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    return torch.ops.dqc.quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax)


def dequantize_with(q: torch.Tensor, qp: QParams) -> torch.Tensor:
    return torch.ops.dqc.dequantize(q, qp.scale, qp.zero_point)


def fake_quantize_with(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """DQ's eval-mode fake quantizer as a quantize / dequantize pair."""
    return dequantize_with(quantize_with(x, qp), qp)


@torch.library.custom_op("dqc::edge_softmax", mutates_args=())
def edge_softmax(
    codes: torch.Tensor,
    dst: torch.Tensor,
    indptr: torch.Tensor,
    scale: float,
    zero_point: int,
    qmin: int,
    qmax: int,
    negative_slope: float,
) -> torch.Tensor:
    """Integer GAT softmax of alpha codes ``[E, heads]`` (``dqc.edge_softmax``): Q15 int32."""
    weights = softmax_spec.edge_softmax(
        codes.numpy(), indptr.numpy(), scale, zero_point, qmin, qmax, negative_slope
    )
    return torch.from_numpy(weights)


@edge_softmax.register_fake
def _(codes, dst, indptr, scale, zero_point, qmin, qmax, negative_slope):
    return torch.empty_like(codes, dtype=torch.int32)


@torch.library.custom_op("dqc::edge_softmax_float", mutates_args=())
def edge_softmax_float(
    logits: torch.Tensor, dst: torch.Tensor, indptr: torch.Tensor, negative_slope: float
) -> torch.Tensor:
    """GAT's float softmax of ``leaky_relu(logits)`` over each target's in-edges."""
    return pyg_softmax(F.leaky_relu(logits, negative_slope), dst, num_nodes=indptr.numel() - 1)


@edge_softmax_float.register_fake
def _(logits, dst, indptr, negative_slope):
    return torch.empty_like(logits)


def _segment_sums(x: torch.Tensor, graph_ptr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    counts = graph_ptr[1:] - graph_ptr[:-1]
    batch = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    return x.new_zeros((counts.numel(), x.size(1))).index_add(0, batch, x), counts


@torch.library.custom_op("dqc::segment_mean", mutates_args=())
def segment_mean(x: torch.Tensor, graph_ptr: torch.Tensor) -> torch.Tensor:
    """Float mean of the rows ``graph_ptr[g]:graph_ptr[g + 1]`` of ``x`` per graph (0 if none)."""
    sums, counts = _segment_sums(x, graph_ptr)
    return sums / counts.clamp(min=1).unsqueeze(-1).to(x.dtype)


@torch.library.custom_op("dqc::segment_sum", mutates_args=())
def segment_sum(x: torch.Tensor, graph_ptr: torch.Tensor) -> torch.Tensor:
    """Float sum of the rows ``graph_ptr[g]:graph_ptr[g + 1]`` of ``x`` per graph."""
    return _segment_sums(x, graph_ptr)[0]


@segment_mean.register_fake
@segment_sum.register_fake
def _(x, graph_ptr):
    return x.new_empty((graph_ptr.size(0) - 1, x.size(1)))
