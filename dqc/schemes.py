"""Training schemes: FP32, plain QAT and Degree-Quant at INT8 and INT4.

* ``qat-*`` follows the authors' naive-QAT baseline: straight-through gradient, min/max
  ranges with EMA momentum 0.01, every node quantized at every step.
* ``dq-*`` is Degree-Quant as released: clipped gradient, percentile ranges (0.1/99.9 % for
  INT8, 1/99 % for INT4) with running extreme, and stochastic protective masking by in-degree.
"""

from __future__ import annotations

from dataclasses import dataclass

from dqc.quantizer import Float, Quantizer


@dataclass(frozen=True)
class Scheme:
    name: str
    bits: int | None
    degree_quant: bool = False

    @property
    def quantized(self) -> bool:
        return self.bits is not None

    @property
    def tracker(self) -> str:
        return "percentile" if self.degree_quant else "ema"

    @property
    def grad(self) -> str:
        return "gc" if self.degree_quant else "ste"

    @property
    def percentile(self) -> float | None:
        if not self.degree_quant:
            return None
        return 0.001 if self.bits == 8 else 0.01

    def quantizer(self, signed: bool = True, data_input: bool = False) -> Quantizer | Float:
        """A fresh quantization point for this scheme (a pass-through for FP32).

        ``data_input`` marks the dataset's raw features. They are tracked by min/max with a
        running extreme, not percentiles: they are fixed data rather than fluctuating
        activations, and bag-of-words features are so sparse (98.7 % zeros on Cora) that their
        1st and 99th percentiles are both 0, which would quantize every input to 0 at INT4.
        """
        if not self.quantized:
            return Float()
        tracker = "minmax" if data_input else self.tracker
        percentile = None if data_input else self.percentile
        return Quantizer(self.bits, signed, tracker, percentile, self.grad, sparse_data=data_input)


SCHEMES = {
    s.name: s
    for s in (
        Scheme("fp32", None),
        Scheme("qat-int8", 8),
        Scheme("qat-int4", 4),
        Scheme("dq-int8", 8, degree_quant=True),
        Scheme("dq-int4", 4, degree_quant=True),
    )
}


def get_scheme(name: str) -> Scheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown scheme {name!r}; choose from {', '.join(SCHEMES)}") from None
