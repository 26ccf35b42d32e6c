"""MLP+NeuroSim V3.0's optimizers as Keras optimizers (Train.cpp ``SGD()``, ``Momentum()``, ...).

Per weight, with gradient ``g``, learning rate ``alpha`` of the weight's layer
and ``S`` the sum of the gradients since the last state update. ``first`` is
the first step of an epoch (NeuroSim's ``batchSize % numTrain == 0`` in
``Train()``): only then are the moment estimates updated, from ``S``, and ``S``
reset; ``deltaW`` uses the states before that update::

    sgd       dW = -alpha g
    momentum  dW = -alpha g;  first: dW = -(0.1 m + alpha g),  m <- 0.9 m + alpha S
    adagrad   dW = -alpha g / (sqrt(G) + 0.1);  first: G <- G + S^2
    rmsprop   dW = -alpha g / (sqrt(0.5 v + 0.5 g^2) + 0.2);  first: v <- 0.9 v + 0.1 S^2
    adam      dW = -alpha mt / (sqrt(vt) + 0.2),  mt = (0.1 m' + 0.9 g)/0.9,  vt = (0.7 v + 0.3 g^2)/0.3
              with m' = m at first and 0 otherwise;  first: m <- 0.1 m + 0.9 S,  v <- 0.7 v + 0.3 S^2

(docs/neurosim.md, section 9: the constants are the functions' defaults and
the globals GAMA = 0.9, BETA1 = 0.1, BETA2 = 0.7 of NeuroSim.) Each layer has
its own ``alpha`` (NeuroSim's alpha1, alpha2). ``clip`` bounds the float
weights to ``[-clip, clip]`` as NeuroSim's software ("algorithm") mode does;
on devices the conductance bounds do that instead.
"""

from __future__ import annotations

import keras
from keras import ops

KINDS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")


@keras.saving.register_keras_serializable(package="devsim")
class NeuroSimOptimizer(keras.optimizers.Optimizer):
    """One of NeuroSim's optimizers (module docstring), per-layer learning rates.

    Args:
        kind: one of `KINDS`.
        learning_rates: one rate per layer, in the order the layers' variables
            come (first layer first); a single number applies to every layer.
        steps_per_epoch: optimizer steps in an epoch (the states update at the
            first step of each).
        clip: bound of the float weights (None: no clipping).
    """

    def __init__(self, kind="sgd", learning_rates=(0.4, 0.2), steps_per_epoch=8000, clip=None, name="neurosim", **kwargs):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        rates = (learning_rates,) if isinstance(learning_rates, (int, float)) else tuple(learning_rates)
        super().__init__(learning_rate=float(rates[0]), name=name, **kwargs)
        self.kind, self.learning_rates = kind, tuple(float(r) for r in rates)
        self.steps_per_epoch, self.clip = int(steps_per_epoch), clip

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        layers = []
        for v in var_list:  # the layer of each variable, in order of first appearance
            owner = v.path.rsplit("/", 1)[0] if "/" in v.path else v.name
            if owner not in layers:
                layers.append(owner)
        if len(self.learning_rates) not in (1, len(layers)):
            raise ValueError(f"learning_rates has {len(self.learning_rates)} rates for {len(layers)} layers")
        self._alpha = {}
        for v in var_list:
            owner = v.path.rsplit("/", 1)[0] if "/" in v.path else v.name
            i = layers.index(owner)
            self._alpha[self._var_key(v)] = self.learning_rates[i if len(self.learning_rates) > 1 else 0]
        self._sums, self._m, self._v = [], [], []
        if self.kind != "sgd":
            for v in var_list:
                self._sums.append(self.add_variable_from_reference(v, "gradient_sum"))
                self._m.append(self.add_variable_from_reference(v, "m"))
                self._v.append(self.add_variable_from_reference(v, "v"))

    def update_step(self, gradient, variable, learning_rate):
        alpha = self._alpha[self._var_key(variable)]
        g = ops.cast(gradient, variable.dtype)
        if self.kind == "sgd":
            delta = -alpha * g
        else:
            i = self._get_variable_index(variable)
            total, m, v = self._sums[i], self._m[i], self._v[i]
            first = ops.equal(ops.mod(self.iterations, self.steps_per_epoch), 0)
            s = total + g  # the epoch's gradient sum, this step included
            if self.kind == "momentum":
                delta = ops.where(first, -(0.1 * m + alpha * g), -alpha * g)
                m_new = 0.9 * m + alpha * s
                v_new = v
            elif self.kind == "adagrad":
                delta = -alpha * g / (ops.sqrt(v) + 0.1)
                m_new, v_new = m, v + ops.square(s)
            elif self.kind == "rmsprop":
                delta = -alpha * g / (ops.sqrt(0.5 * v + 0.5 * ops.square(g)) + 0.2)
                m_new, v_new = m, 0.9 * v + 0.1 * ops.square(s)
            else:  # adam
                mt = (0.1 * ops.where(first, m, ops.zeros_like(m)) + 0.9 * g) / 0.9
                vt = (0.7 * v + 0.3 * ops.square(g)) / 0.3
                delta = -alpha * mt / (ops.sqrt(vt) + 0.2)
                m_new, v_new = 0.1 * m + 0.9 * s, 0.7 * v + 0.3 * ops.square(s)
            self.assign(m, ops.where(first, m_new, m))
            self.assign(v, ops.where(first, v_new, v))
            self.assign(total, ops.where(first, ops.zeros_like(s), s))
        new = variable + delta
        if self.clip is not None:
            new = ops.clip(new, -self.clip, self.clip)
        self.assign(variable, new)

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, learning_rates=list(self.learning_rates), steps_per_epoch=self.steps_per_epoch,
                      clip=self.clip)
        config.pop("learning_rate", None)
        return config
