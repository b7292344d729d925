"""LowerMessagePassing: gather -> per-edge ops -> scatter-add into one CSR kernel.

The exported graph aggregates edge messages with ``dqc.index_add(zeros, dst, m)`` where
``m`` is built per edge from node tensors gathered by source (``take(X, src)``) and per-edge
tensors. Since dqc's runtime sorts edges by target and passes the CSR row pointer
``indptr``, the scatter is a segment sum over CSR rows, and the whole message expression can
be evaluated in registers inside it::

    g = take(hq, src); p = multiply(expand_dims(nq - zn), g - zh); mq = requantize(p)
    a = dqc.index_add(zeros, dst, mq - zm)
    ==>
    a = call_tir(dqc_spmm_csr, [indptr, src, hq, nq]) # out[i] = sum_k message(k, src[k])

The elementwise ops after the aggregation that read nothing but its sums and constants
(requantize, bias, ReLU: each the only reader of the one before) go into the kernel as its
epilogue, applied as each row's sums are stored. Under a target with AVX-512 VBMI, a message
that is one ``requantize_product`` of an edge's byte code and the source's byte codes (GCN)
is read from a table of all 65,536 results instead; for the source's packed 4-bit codes, of
256 x 16, under AVX-512 BW too. A message of the source's code alone (GIN's requantize) is
read from a table of one row (``dqc.kernels.spmm_lookup``).

Requires the function attribute ``dqc.graph_inputs`` naming the (src, dst, indptr) params
(set by ``dqc.frontend.export``); intermediates used outside the message become kernel
inputs. Aggregations it cannot fuse keep the generic (serial) ``index_add``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tvm
import tvm_ffi
from tvm import relax

from dqc import relax_ops
from dqc._tvm import Analyzer, constant_value, is_constant
from dqc.fixed_point import FixedPoint, requantize
from dqc.kernels import add_kernel, pack_int4
from dqc.kernels.pack_int4 import fits_int4
from dqc.kernels.spmm_csr import Leaf, Node, code_operand, spmm_csr
from dqc.kernels.spmm_lookup import (
    Lookup,
    code_values,
    lookup_supported,
    message_table,
    nibble_shuffle,
    product_table,
)

BINARY = {
    "relax.add": "add",
    "relax.subtract": "subtract",
    "relax.multiply": "multiply",
    "relax.maximum": "maximum",
}
# Ops an aggregation's epilogue may hold (folded into the kernel's store, see ``epilogue``).
ELEMENTWISE = {*BINARY, "relax.astype", "relax.nn.relu", "dqc.requantize"}


def _trailing(expr: relax.Expr) -> tuple[int, ...] | None:
    """Static per-row shape (all axes but the first) of a tensor, or None if symbolic."""
    shape = expr.ty.shape
    dims = [shape[i] for i in range(1, len(shape))]
    if not all(isinstance(d, tvm.tirx.IntImm) for d in dims):
        return None
    return tuple(int(d) for d in dims)


class _Unfusable(Exception):
    pass


class _TreeBuilder:
    """Expression tree of one message, with its leaves (the Relax exprs the kernel reads)."""

    def __init__(self, bindings: dict, uses: dict, src: relax.Var):
        self.bindings, self.uses, self.src = bindings, uses, src
        self.leaves: list[Leaf] = []
        self.args: list[relax.Expr] = []
        self.int4: set[int] = set()  # leaves gathered from 4-bit codes
        self.analyzer = Analyzer()
        self.aggregate: relax.Var | None = None  # in an epilogue: the row sums

    def epilogue(self, end: relax.Var, aggregate: relax.Var) -> Node:
        """The tree of ``end`` over ``aggregate`` (op ``aggregate``) and constants; raises
        ``_Unfusable``, leaving the leaves as they were, when ``end`` reads anything else."""
        kept = len(self.leaves)
        self.aggregate = aggregate
        try:
            tree = self.build(end, root=True)
            if any(leaf.kind != "channel" for leaf in self.leaves[kept:]):
                raise _Unfusable(f"{end} reads per-edge values after the aggregation")
            return tree
        except _Unfusable:
            del self.leaves[kept:], self.args[kept:]
            raise
        finally:
            self.aggregate = None

    def leaf(self, kind: str, expr: relax.Expr, shape) -> Node:
        if shape is None:
            raise _Unfusable(f"{expr} has a symbolic shape")
        for i, arg in enumerate(self.args):
            if arg.same_as(expr) and self.leaves[i].kind == kind:
                return Node("leaf", expr.ty.dtype, shape, leaf=i)
        self.leaves.append(Leaf(kind, expr.ty.dtype, shape))
        self.args.append(expr)
        return Node("leaf", expr.ty.dtype, shape, leaf=len(self.leaves) - 1)

    def edge_leaf(self, expr: relax.Expr) -> Node:
        num_edges = self.src.ty.shape[0]
        shape = expr.ty.shape
        if len(shape) == 0 or not self.analyzer.can_prove_equal(shape[0], num_edges):
            raise _Unfusable(f"{expr} is neither per-edge nor gathered by source")
        return self.leaf("edge", expr, _trailing(expr))

    def constant(self, expr: relax.Expr, trailing: tuple[int, ...]) -> Node:
        value = constant_value(expr)
        if value.size == 1:
            return Node("const", expr.ty.dtype, (), value=value.reshape(()).item())
        if value.ndim <= len(trailing) and value.shape == trailing[len(trailing) - value.ndim :]:
            return self.leaf("channel", expr, tuple(value.shape))
        raise _Unfusable(f"constant of shape {value.shape}")

    def operand(self, expr: relax.Expr, trailing: tuple[int, ...]) -> Node:
        return self.constant(expr, trailing) if is_constant(expr) else self.build(expr)

    def build(self, expr: relax.Expr, root: bool = False) -> Node:
        if self.aggregate is not None and expr.same_as(self.aggregate):
            return Node("aggregate", expr.ty.dtype, _trailing(expr))
        value = self.bindings.get(expr)
        shared = not root and self.uses.get(expr, 0) > 1
        if shared or not isinstance(value, relax.Call) or not isinstance(value.op, tvm.ir.Op):
            return self.edge_leaf(expr)
        name, dtype, trailing = value.op.name, expr.ty.dtype, _trailing(expr)
        if name == "relax.take" and value.args[1].same_as(self.src) and int(value.attrs.axis) == 0:
            node = self.leaf("gather", value.args[0], _trailing(value.args[0]))
            if _is_int4_codes(self.bindings.get(value.args[0])):
                self.int4.add(node.leaf)
            return node
        if name in ("relax.ones", "relax.zeros"):
            return Node("const", dtype, (), value=int(name == "relax.ones"))
        if name == "relax.full" and is_constant(value.args[1]):
            return self.constant(value.args[1], ())
        if trailing is None:
            raise _Unfusable(f"{expr} has a symbolic shape")
        if name == "relax.astype":
            return Node("cast", dtype, trailing, (self.build(value.args[0]),))
        if name == "relax.nn.relu":
            zero = Node("const", dtype, (), value=0)
            return Node("maximum", dtype, trailing, (self.build(value.args[0]), zero))
        if name in BINARY:
            children = tuple(self.operand(a, trailing) for a in value.args)
            centered = _centered_product(children, dtype) if name == "relax.subtract" else None
            return centered or Node(BINARY[name], dtype, trailing, children)
        if name == "relax.expand_dims":
            rank = len(expr.ty.shape)
            axes = tuple(sorted(int(a) % rank - 1 for a in value.attrs.axis))
            return Node("expand", dtype, trailing, (self.build(value.args[0]),), axes=axes)
        if name == "dqc.requantize" and "shift" in value.attrs:
            return self.requantize(value, dtype, trailing)
        return self.edge_leaf(expr)

    def requantize(self, call: relax.Call, dtype: str, trailing: tuple[int, ...]) -> Node:
        a = call.attrs
        count = len(a["zero_points"])
        children = [self.build(t) for t in call.args[:count]]
        children += [self.constant(b, trailing) for b in call.args[count:]]
        attrs = {
            "zero_points": [int(z) for z in a["zero_points"]],
            "multipliers": tuple(int(m) for m in a["multipliers"]),
            "shift": int(a["shift"]),
            "zero_point": int(a["zero_point"]),
            "qmin": int(a["qmin"]),
            "qmax": int(a["qmax"]),
        }
        product = _code_product(children[0]) if len(children) == 1 else None
        if product is not None and attrs["zero_points"] == [0]:
            return Node("requantize_product", dtype, trailing, product, attrs=attrs)
        return Node("requantize", dtype, trailing, tuple(children), attrs=attrs)


def _is_int4_codes(value) -> bool:
    """Whether a binding's value is a (re)quantize to codes that fit 4 bits."""
    if not (relax_ops.is_op(value, "dqc.requantize") or relax_ops.is_op(value, "dqc.quantize")):
        return False
    return fits_int4(value.ty.dtype, int(value.attrs["qmin"]), int(value.attrs["qmax"]))


def _code_product(node: Node) -> tuple[Node, Node] | None:
    """``(per-edge code, code)`` if ``node`` multiplies a code that is one scalar per edge by
    another code: the form ``requantize_product`` handles in int32."""
    if node.op != "multiply":
        return None
    for edge, other in (node.children, node.children[::-1]):
        codes = code_operand(edge) is not None and code_operand(other) is not None
        if math.prod(edge.shape) == 1 and codes:
            return edge, other
    return None


def _centered_product(children: tuple[Node, ...], dtype) -> Node | None:
    """``cast(requantize_product(...)) - zero_point`` as one ``centered`` ``requantize_product``:
    the centred code, without a round trip through int8."""
    code, zero = children[0], children[-1]
    if len(children) != 2 or code.op != "cast" or zero.op != "const":
        return None
    product = code.children[0]
    if product.op != "requantize_product" or product.attrs["zero_point"] != zero.value:
        return None
    attrs = {**product.attrs, "centered": True}
    return Node("requantize_product", dtype, product.shape, product.children, attrs=attrs)


def _table_lookup(message: Node, leaves: list[Leaf]) -> tuple[Lookup, np.ndarray] | None:
    """The lookup form of a message that is a function of a per-edge code and full-width
    gathered codes (GCN's ``requantize_product``) or of the gathered codes alone (GIN's
    requantize), bytes or nibbles of packed ones, and its table, on targets with the byte
    permute or shuffle it needs (``dqc.kernels.spmm_lookup``); else None."""
    if message.op == "cast":  # a code widened to the sums' type
        message = message.children[0]
    if message.op == "requantize_product":
        edge, gathered = (code_operand(child) for child in message.children)
        if edge is None or gathered is None:
            return None
        edge_leaf, gather_leaf = leaves[edge[0].leaf], leaves[gathered[0].leaf]
        if edge_leaf.kind != "edge" or edge_leaf.width != 1:
            return None
        gather, edge_index = gathered[0].leaf, edge[0].leaf
    else:
        unary = _unary_messages(message, leaves)
        if unary is None:
            return None
        gather, messages = unary
        gather_leaf, edge_index = leaves[gather], None
    if gather_leaf.kind != "gather" or gather_leaf.shape != message.shape:
        return None
    target = tvm.target.Target.current(allow_none=True)
    nibbles = nibble_shuffle(target) if gather_leaf.packed else None
    supported = nibbles is not None if gather_leaf.packed else lookup_supported(target)
    if not supported:
        return None
    if edge_index is None:
        low = int(messages.min())
        if messages.max() - low > 255:
            return None
        table = message_table(messages[None, :], low, gather_leaf.packed)
        return Lookup(None, gather, low, nibbles), table
    a, b = (str(edge_leaf.dtype), edge[1]), (str(gather_leaf.dtype), gathered[1])
    table, correction = product_table(message.attrs, a, b, gather_leaf.packed)
    return Lookup(edge_index, gather, correction, nibbles), table


def _unary_messages(message: Node, leaves: list[Leaf]) -> tuple[int, np.ndarray] | None:
    """``(leaf, value of the message for each of its codes)`` when the message is
    ``[cast](requantize(leaf)) [- constant]`` or ``cast(leaf) [- constant]`` of one gathered
    leaf (GIN's message: the source's code, requantized to the message's scale); else None.
    The values come from ``dqc.fixed_point.requantize``, the integer reference's own."""
    offset = 0
    if message.op == "subtract" and message.children[1].op == "const":
        message, offset = message.children[0], int(message.children[1].value)
    if message.op == "cast":
        message = message.children[0]
    requant = None
    if message.op == "requantize":
        if len(message.children) != 1 or len(message.attrs["zero_points"]) != 1:
            return None  # a bias or several terms
        requant, message = message, message.children[0]
    elif message.op == "cast":
        message = message.children[0]
    if message.op != "leaf":
        return None
    leaf = leaves[message.leaf]
    if str(leaf.dtype) not in ("int8", "uint8"):
        return None
    values = code_values(str(leaf.dtype), leaf.packed)
    if requant is not None:
        a = requant.attrs
        fixed = FixedPoint(a["multipliers"], a["shift"])
        bounds = (a["zero_point"], a["qmin"], a["qmax"])
        values = requantize([values], a["zero_points"], fixed, *bounds)
    return message.leaf, values.astype(np.int64) - offset


def _flatten(expr: relax.Expr, leaf: Leaf) -> relax.Expr:
    """The 2-D (or, for channel constants and one value per row, 1-D) view the kernel reads;
    ``expr`` itself when it is that view already (a reshape is a copy kernel when the row
    count is symbolic)."""
    if leaf.kind == "channel":
        return relax.const(constant_value(expr).reshape(-1), leaf.dtype)
    if not leaf.shape or _is_rows_by(expr, leaf.width):
        return expr
    return relax.op.reshape(expr, [expr.ty.shape[0], leaf.width])


def _is_rows_by(expr: relax.Expr, width: int) -> bool:
    """Whether ``expr`` is a 2-D tensor of ``width`` columns."""
    shape = expr.ty.shape
    return len(shape) == 2 and isinstance(shape[1], tvm.tirx.IntImm) and int(shape[1]) == width


@relax.expr_functor.mutator
class _Lowerer(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod = mod
        self.bindings: dict = {}
        self.uses: dict = {}
        self.users: dict = {}  # var -> the vars whose bindings read it
        self.absorbed: set = set()  # vars of epilogues now inside a kernel
        self.graph: dict[str, relax.Var] = {}

    def run(self) -> tvm.IRModule:
        for gvar, func in self.mod.functions.items():
            if isinstance(func, relax.Function) and func.attrs and "dqc.graph_inputs" in func.attrs:
                self.prepare(func)
                self.builder_.update_func(gvar, self.builder_.normalize(self.visit_expr(func)))
        return self.builder_.get()

    def prepare(self, func: relax.Function) -> None:
        names = [str(n) for n in func.attrs["dqc.graph_inputs"]]
        params = {p.name: p for p in func.params}
        self.graph = dict(zip(("src", "dst", "indptr"), (params[n] for n in names), strict=True))
        for block in func.body.blocks:
            for binding in block.bindings:
                self.bindings[binding.var] = binding.value
                for used in relax.analysis.free_vars(binding.value):
                    self.uses[used] = self.uses.get(used, 0) + 1
                    self.users.setdefault(used, []).append(binding.var)
        for used in relax.analysis.free_vars(func.body.body):
            self.uses[used] = self.uses.get(used, 0) + 1

    def is_zeros(self, expr: relax.Expr) -> bool:
        value = self.bindings.get(expr, expr)
        if relax_ops.is_op(value, "relax.zeros"):
            return True
        return (
            relax_ops.is_op(value, "relax.full")
            and is_constant(value.args[1])
            and not np.any(constant_value(value.args[1]))
        )

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        if binding.var in self.absorbed:
            return  # computed by the kernel its epilogue went into
        value = binding.value
        if (
            relax_ops.is_op(value, "dqc.index_add")
            and value.args[1].same_as(self.graph["dst"])
            and self.is_zeros(value.args[0])
        ):
            lowered = self.lower(binding.var, value)
            if lowered is not None:
                return
        super().visit_var_binding_(binding)

    def kernel_input(self, expr: relax.Expr, leaf: Leaf) -> relax.Expr:
        if leaf.kind == "channel":
            return _flatten(expr, leaf)
        flat = self.builder_.emit(_flatten(self.visit_expr(expr), leaf))
        if leaf.packed:
            return self.builder_.call_te(pack_int4.pack, flat, primfunc_name_hint="dqc_pack_int4")
        return flat

    def lower(self, var: relax.Var, call: relax.Call) -> relax.Var | None:
        builder = _TreeBuilder(self.bindings, self.uses, self.graph["src"])
        try:
            message = builder.build(call.args[2], root=True)
        except _Unfusable:
            return None
        out_shape = _trailing(var)
        if out_shape is None or message.shape != out_shape:
            return None
        # 4-bit codes read at the message's full width are gathered two per byte.
        leaves = [
            dataclasses.replace(leaf, packed=i in builder.int4 and leaf.shape == out_shape)
            for i, leaf in enumerate(builder.leaves)
        ]
        epilogue, end = self.epilogue(builder, var)
        leaves += builder.leaves[len(leaves) :]  # the epilogue's per-channel constants
        args = [self.kernel_input(e, leaf) for e, leaf in zip(builder.args, leaves, strict=True)]
        src, indptr = self.visit_expr(self.graph["src"]), self.visit_expr(self.graph["indptr"])
        lookup = _table_lookup(message, leaves)
        if lookup is not None:
            lookup, table = lookup
            args.append(relax.const(table, "int8"))
        kernel = spmm_csr(message, leaves, var.ty.dtype, src.ty.dtype, epilogue, lookup)
        gvar = add_kernel(self.builder_, kernel, "dqc_spmm_csr")
        width = math.prod(out_shape)
        rows = var.ty.shape[0]
        call = relax.call_tir(
            gvar, [indptr, src, *args], relax.TensorType([rows, width], end.ty.dtype)
        )
        if _is_rows_by(end, width):
            out = self.builder_.emit(call, end.name)
        else:
            out = self.builder_.emit(relax.op.reshape(self.builder_.emit(call), end.ty.shape))
        self.set_var_remap(end, out)
        return out

    def epilogue(self, builder: _TreeBuilder, var: relax.Var) -> tuple[Node | None, relax.Var]:
        """The longest chain of elementwise ops after aggregation ``var`` that reads nothing
        but the sums and constants, as an epilogue tree, and the var it ends at (``None``,
        ``var`` when there is none). Each link must be the only reader of the one before,
        with the aggregation's shape, inside the dataflow block."""
        chain, current = [], var
        while self.uses.get(current, 0) == 1 and len(self.users.get(current, [])) == 1:
            (user,) = self.users[current]
            value = self.bindings[user]
            if not isinstance(user, relax.DataflowVar) or not isinstance(value, relax.Call):
                break
            if not isinstance(value.op, tvm.ir.Op) or value.op.name not in ELEMENTWISE:
                break
            if not tvm_ffi.structural_equal(user.ty.shape, var.ty.shape):
                break
            chain.append(user)
            current = user
        for length in range(len(chain), 0, -1):
            try:
                tree = builder.epilogue(chain[length - 1], var)
            except _Unfusable:
                continue
            self.absorbed.update(chain[:length])
            return tree, chain[length - 1]
        return None, var


@tvm.transform.module_pass(opt_level=0, name="LowerMessagePassing")
class LowerMessagePassing:
    """Fuse gather / per-edge / scatter-add chains into CSR kernels (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        mod = _Lowerer(mod).run()
        return relax.transform.DeadCodeElimination()(mod)
