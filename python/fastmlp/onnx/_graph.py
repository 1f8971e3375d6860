"""An ONNX graph for a stack of dense layers, built from NumPy weights with standard ONNX ops.

Every activation fastmlp computes is written with operators of the default domain that exist,
with the same meaning, from opset 13 on (``Softmax`` over the last axis, ``Erf``, ``Where``).
Each formula is chosen to be exact where the core is exact and never to overflow:

- relu, sigmoid, tanh, softmax: the ONNX operators of the same names;
- leaky_relu, elu: ``Where(x > 0, x, ...)`` with the layer's parameter as a constant of the
  model's dtype (the operators ``LeakyRelu``/``Elu`` take it as a float32 attribute, and
  onnxruntime has no float64 ``Elu``);
- softplus: ``Relu(x) + Log(1 + Exp(-Abs(x)))``, which never takes ``Exp`` of a positive number;
- swish: ``x * Sigmoid(x)``; gelu: ``x * (1 + Erf(x / sqrt 2)) / 2``; gelu_tanh:
  ``x * Sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))`` (the core's form of the tanh approximation).

onnxruntime has no float64 ``Erf``: in a float64 graph, gelu's ``Erf`` runs in float32 between
two ``Cast`` nodes, which bounds its error by about 1e-7 |x|.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import onnx
from numpy.typing import DTypeLike, NDArray
from onnx import TensorProto, helper, numpy_helper

from .. import activations

# The element type of a float32 or float64 graph.
ELEMENT_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}
# The activations _Builder.activation writes (fastmlp's names, and "exp" for scikit-learn's
# Poisson regressor output).
ACTIVATIONS = (*activations.ACTIVATIONS, "exp")


@dataclass(frozen=True)
class DenseLayer:
    """``activation(x @ kernel + bias)``; ``alpha`` is leaky_relu's slope or elu's alpha."""

    name: str
    kernel: NDArray[np.floating]
    bias: Optional[NDArray[np.floating]]
    activation: str
    alpha: float = 0.0


class GraphBuilder:
    """Collects the nodes and initializers of one graph whose tensors have one float dtype."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype
        self.element_type = ELEMENT_TYPES[dtype]
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    def unique(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``, ... if a tensor of the graph already has it."""
        candidate, n = name, 0
        while candidate in self._names:
            n += 1
            candidate = f"{name}_{n}"
        self._names.add(candidate)
        return candidate

    def constant(self, name: str, value: Any, dtype: Optional[DTypeLike] = None) -> str:
        """An initializer holding ``value`` (in the graph's float dtype unless ``dtype`` says
        otherwise); returns its name."""
        array = np.asarray(value, dtype=dtype or self.dtype)
        unique = self.unique(name)
        self.initializers.append(numpy_helper.from_array(array, unique))
        return unique

    def node(self, op: str, inputs: Sequence[str], name: str, **attributes: Any) -> str:
        """Appends one node with one output, named after ``name``; returns the output's name."""
        output = self.unique(name)
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attributes))
        return output

    def dense(self, x: str, layer: DenseLayer) -> str:
        kernel = self.constant(f"{layer.name}/kernel", layer.kernel)
        if layer.bias is None:
            z = self.node("MatMul", [x, kernel], f"{layer.name}/matmul")
        else:
            bias = self.constant(f"{layer.name}/bias", layer.bias)
            z = self.node("Gemm", [x, kernel, bias], f"{layer.name}/gemm")
        return self.activation(z, layer.activation, layer.alpha, layer.name)

    def activation(self, x: str, activation: str, alpha: float, prefix: str) -> str:
        """``activation(x)`` by the formulas of the module docstring."""
        def name(what: str) -> str:
            return f"{prefix}/{activation}/{what}" if what else f"{prefix}/{activation}"

        if activation == "linear":
            return x
        simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp"}
        if activation in simple:
            return self.node(simple[activation], [x], name(""))
        if activation == "softmax":
            return self.node("Softmax", [x], name(""), axis=-1)
        if activation in ("leaky_relu", "elu"):
            zero = self.constant(name("zero"), 0.0)
            if activation == "leaky_relu":
                negative = self.node("Mul", [x, self.constant(name("alpha"), alpha)], name("negative"))
            else:
                exp = self.node("Exp", [self.node("Min", [x, zero], name("min"))], name("exp"))
                expm1 = self.node("Sub", [exp, self.constant(name("one"), 1.0)], name("expm1"))
                negative = self.node("Mul", [expm1, self.constant(name("alpha"), alpha)], name("negative"))
            positive = self.node("Greater", [x, zero], name("positive"))
            return self.node("Where", [positive, x, negative], name(""))
        if activation == "softplus":
            tail = self.node("Exp", [self.node("Neg", [self.node("Abs", [x], name("abs"))], name("neg"))], name("exp"))
            log = self.node("Log", [self.node("Add", [tail, self.constant(name("one"), 1.0)], name("add"))], name("log"))
            return self.node("Add", [self.node("Relu", [x], name("relu")), log], name(""))
        if activation == "swish":
            return self.node("Mul", [x, self.node("Sigmoid", [x], name("sigmoid"))], name(""))
        if activation == "gelu":
            scaled = self.node("Mul", [x, self.constant(name("rsqrt2"), 1.0 / math.sqrt(2.0))], name("scaled"))
            erf = self.erf(scaled, name("erf"))
            one_plus = self.node("Add", [erf, self.constant(name("one"), 1.0)], name("add"))
            half_x = self.node("Mul", [x, self.constant(name("half"), 0.5)], name("half_x"))
            return self.node("Mul", [half_x, one_plus], name(""))
        if activation == "gelu_tanh":
            cube = self.node("Mul", [self.node("Mul", [x, x], name("square")), x], name("cube"))
            inner = self.node(
                "Add", [x, self.node("Mul", [cube, self.constant(name("cubic"), 0.044715)], name("cubic_term"))], name("inner")
            )
            u = self.node("Mul", [inner, self.constant(name("scale"), 2.0 * math.sqrt(2.0 / math.pi))], name("u"))
            return self.node("Mul", [x, self.node("Sigmoid", [u], name("sigmoid"))], name(""))
        raise ValueError(
            f"The ONNX exporter cannot express the activation {activation!r}. "
            f"Expected one of {list(ACTIVATIONS)}."
        )

    def erf(self, x: str, name: str) -> str:
        if self.dtype == "float32":
            return self.node("Erf", [x], name)
        single = self.node("Cast", [x], f"{name}/to_float32", to=TensorProto.FLOAT)
        result = self.node("Erf", [single], f"{name}/float32")
        return self.node("Cast", [result], name, to=self.element_type)

    def model(
        self,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        graph_name: str,
        opset: int,
        doc_string: str,
    ) -> onnx.ModelProto:
        """The finished model, with the oldest IR version that holds ``opset`` (so that older
        runtimes load it) and fastmlp named as its producer."""
        graph = helper.make_graph(self.nodes, graph_name, list(inputs), list(outputs), self.initializers)
        opset_import = [helper.make_opsetid("", opset)]
        model = helper.make_model(graph, opset_imports=opset_import, producer_name="fastmlp", doc_string=doc_string)
        model.ir_version = helper.find_min_ir_version_for(opset_import)
        return model
