"""Conditioner networks with nflows' architectures, for :mod:`nprefgen.interop`
(derivations/flows.md, FLOW.31-FLOW.32).

nflows conditions its couplings on a residual network whose blocks gate their update with the
context (a GLU), and its autoregressive transforms on a MADE that adds the context through a
separate layer. Neither is nprefgen's MLP or MADE, so both are written out here, with
hand-written backward passes and parameter names equal to nflows' ``state_dict`` names.

:class:`ResidualNet` (nflows.nn.nets.ResidualNet), input ``[x_A, c]``:

    t_0 = W_in [x_A, c] + b_in
    u_k = W_k1 a(W_k0 a(t_k) + b_k0) + b_k1,   g_k = W_kc c + b_kc
    t_{k+1} = t_k + u_k sigmoid(g_k)            (sigmoid(g_k) = 1 without a context)     (FLOW.31)
    out = W_out t_K + b_out

:class:`BlockMADE` (nflows.transforms.made.MADE) with masked weights M (NN.3), input x and c:

    t = M_in x + b_in + a(W_c c + b_c)
    feed-forward blocks:  t = a(t), then t <- a(M_k t + b_k)
    residual blocks:      t <- t + M_k1 a(M_k0 a(t) + b_k0 + W_kc c + b_kc) + b_k1           (FLOW.32)
    out = M_out t + b_out

Backward: each line's VJP in reverse; the context collects a gradient from every layer that
reads it. The activation a is any nprefgen activation (ReLU, tanh, ELU, ...).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng
from nprefgen.nn import Linear, MaskedLinear
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.base import Module, check_cotangent, check_input


def _sigmoid(v):
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _container(**children) -> Module:
    m = Module()
    for name, child in children.items():
        m.add_child(name, child)
    return m


class ResidualNet(Module):
    """nflows' residual conditioner (FLOW.31) on ``inp = [x_A, c]``: (n, d_A + C) -> (n, out).

    Parameters
    ----------
    in_features : d_A; out_features : outputs; hidden : H; context_dim : C (0: no GLU gates)
    n_blocks : residual blocks; activation : nprefgen activation name; rng : SPEC 7
    Attribute ``hidden_features`` = H (nflows scales spline logits by 1/sqrt(H) when present).
    """

    def __init__(self, in_features: int, out_features: int, hidden: int, *, context_dim: int = 0,
                 n_blocks: int = 2, activation: str = "relu", rng=None) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", low=0)
        self.out_features = check_int(out_features, "out_features", low=1)
        self.hidden_features = check_int(hidden, "hidden", low=1)
        self.context_dim = check_int(context_dim, "context_dim", low=0)
        self.n_blocks = check_int(n_blocks, "n_blocks", low=0)
        check_choice(activation, "activation", ACTIVATIONS)
        if self.in_features + self.context_dim == 0:
            raise ValueError("in_features: expected in_features + context_dim >= 1, got 0")
        rng = check_rng(rng)
        h = self.hidden_features
        self.act = ACTIVATIONS[activation]()
        self.initial_layer = self.add_child("initial_layer",
                                            Linear(self.in_features + self.context_dim, h, rng=rng))
        blocks = []
        for _ in range(self.n_blocks):
            kids = {"linear_layers": _container(**{"0": Linear(h, h, rng=rng), "1": Linear(h, h, rng=rng)})}
            if self.context_dim:
                kids["context_layer"] = Linear(self.context_dim, h, rng=rng)
            blocks.append(_container(**kids))
        self.blocks = self.add_child("blocks", _container(**{str(k): b for k, b in enumerate(blocks)}))
        self.final_layer = self.add_child("final_layer", Linear(h, self.out_features, rng=rng))

    def _block(self, k):
        b = self.blocks.children()[str(k)]
        lin = b.children()["linear_layers"].children()
        return lin["0"], lin["1"], b.children().get("context_layer")

    def forward(self, x):
        """(FLOW.31) x = [x_A, c]: (n, d_A + C) -> out: (n, out), cache."""
        return self._forward(check_input(x, "x", self.in_features + self.context_dim, self))

    def _forward(self, inp):
        c = inp[:, self.in_features:]
        t, c0 = self.initial_layer._forward(inp)
        caches = []
        for k in range(self.n_blocks):
            l0, l1, lc = self._block(k)
            a1, ca1 = self.act.forward(t)
            u1, cu1 = l0._forward(a1)
            a2, ca2 = self.act.forward(u1)
            u2, cu2 = l1._forward(a2)
            gate, cg = (None, None)
            if lc is not None:
                g, cg = lc._forward(c)
                gate = _sigmoid(g)
                t = t + u2 * gate                                     # (FLOW.31) GLU
            else:
                t = t + u2
            caches.append((ca1, cu1, ca2, cu2, u2, gate, cg))
        out, cf = self.final_layer._forward(t)
        return out, (c0, caches, cf)

    def backward(self, cache, d_y):
        """d_y: (n, out) -> d_x: (n, d_A + C); accumulates the parameter gradients."""
        return self._backward(cache, check_cotangent(d_y, (cache[0].shape[0], self.out_features)))

    def _backward(self, cache, d_out):
        c0, caches, cf = cache
        d_t = self.final_layer._backward(cf, d_out)
        d_c = None
        for k in reversed(range(self.n_blocks)):
            l0, l1, lc = self._block(k)
            ca1, cu1, ca2, cu2, u2, gate, cg = caches[k]
            if lc is not None:
                d_u2 = d_t * gate
                d_g = d_t * u2 * gate * (1.0 - gate)
                dc = lc._backward(cg, d_g)
                d_c = dc if d_c is None else d_c + dc
            else:
                d_u2 = d_t
            d_a2 = l1._backward(cu2, d_u2)
            d_u1 = self.act.backward(ca2, d_a2)
            d_a1 = l0._backward(cu1, d_u1)
            d_t = d_t + self.act.backward(ca1, d_a1)
        d_inp = self.initial_layer._backward(c0, d_t)
        if d_c is not None:
            d_inp[:, self.in_features:] += d_c
        return d_inp

    def __repr__(self) -> str:
        return (f"ResidualNet({self.in_features}+{self.context_dim} -> {self.hidden_features} x "
                f"{self.n_blocks} blocks -> {self.out_features})")


class BlockMADE(Module):
    """nflows' MADE (FLOW.32) with given masks: ``forward(x, context) -> (out, cache)``,
    ``backward(cache, d_out) -> (d_x, d_context)``, ``connectivity()`` for MaskedAutoregressive.

    Parameters
    ----------
    dim : D; initial_mask : (H, D); block_masks : per block, one (H, H) mask (feed-forward) or a
    pair (residual); final_mask : (out, H); context_dim : C; residual : bool;
    activation : nprefgen activation name; rng : SPEC 7.
    """

    def __init__(self, dim: int, initial_mask, block_masks, final_mask, *, context_dim: int = 0,
                 residual: bool = False, activation: str = "relu", rng=None) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", low=1)
        self.context_dim = check_int(context_dim, "context_dim", low=0)
        self.residual = bool(residual)
        check_choice(activation, "activation", ACTIVATIONS)
        rng = check_rng(rng)
        self.act = ACTIVATIONS[activation]()
        m0 = check_array(initial_mask, "initial_mask", ndim=2)
        if m0.shape[1] != self.dim:
            raise ValueError(f"initial_mask: expected {self.dim} columns, got shape {m0.shape}")
        h = m0.shape[0]
        mf = check_array(final_mask, "final_mask", shape=(None, h))
        self.out_features = mf.shape[0]
        self.initial_layer = self.add_child("initial_layer", MaskedLinear(self.dim, h, m0, rng=rng))
        if self.context_dim:
            self.context_layer = self.add_child("context_layer", Linear(self.context_dim, h, rng=rng))
        blocks = []
        for k, masks in enumerate(block_masks):
            masks = [masks] if not self.residual else list(masks)
            if len(masks) != (2 if self.residual else 1):
                raise ValueError(f"block_masks[{k}]: expected {2 if self.residual else 1} masks")
            masks = [check_array(m, f"block_masks[{k}]", shape=(h, h)) for m in masks]
            if self.residual:
                kids = {"linear_layers": _container(**{str(i): MaskedLinear(h, h, m, rng=rng)
                                                       for i, m in enumerate(masks)})}
                if self.context_dim:
                    kids["context_layer"] = Linear(self.context_dim, h, rng=rng)
                blocks.append(_container(**kids))
            else:
                blocks.append(_container(linear=MaskedLinear(h, h, masks[0], rng=rng)))
        self.n_blocks = len(blocks)
        self.blocks = self.add_child("blocks", _container(**{str(k): b for k, b in enumerate(blocks)}))
        self.final_layer = self.add_child("final_layer", MaskedLinear(h, self.out_features, mf, rng=rng))

    def _block(self, k):
        kids = self.blocks.children()[str(k)].children()
        if not self.residual:
            return kids["linear"], None, None
        lin = kids["linear_layers"].children()
        return lin["0"], lin["1"], kids.get("context_layer")

    def masked_layers(self) -> list[MaskedLinear]:
        layers = [self.initial_layer]
        for k in range(self.n_blocks):
            layers += [m for m in self._block(k)[:2] if m is not None]
        return layers + [self.final_layer]

    def connectivity(self) -> np.ndarray:
        """(out, D) bool: output r can depend on x_j (skip paths of residual blocks included)."""
        def step(mask, reach):
            return (mask != 0).astype(np.int64) @ reach.astype(np.int64) > 0
        reach = self.initial_layer.mask != 0
        for k in range(self.n_blocks):
            m0, m1, _ = self._block(k)
            if self.residual:
                reach = reach | step(m1.mask, step(m0.mask, reach))
            else:
                reach = step(m0.mask, reach)
        return step(self.final_layer.mask, reach)

    def forward(self, x, context=None):
        """(FLOW.32) x: (n, D), context: (n, C) or None -> out: (n, out), cache."""
        x = check_input(x, "x", self.dim, self)
        if self.context_dim:
            context = check_input(context, "context", self.context_dim, self)
        t, c_in = self.initial_layer._forward(x)
        cc = None
        if self.context_dim:
            g, cg = self.context_layer._forward(context)
            ag, cag = self.act.forward(g)
            t = t + ag
            cc = (cg, cag)
        caches = []
        if not self.residual:
            t, ca = self.act.forward(t)
            caches.append(ca)
        for k in range(self.n_blocks):
            l0, l1, lc = self._block(k)
            if not self.residual:
                u, cu = l0._forward(t)
                t, ca = self.act.forward(u)
                caches.append((cu, ca))
                continue
            a1, ca1 = self.act.forward(t)
            u1, cu1 = l0._forward(a1)
            cl = None
            if lc is not None:
                gk, cl = lc._forward(context)
                u1 = u1 + gk
            a2, ca2 = self.act.forward(u1)
            u2, cu2 = l1._forward(a2)
            t = t + u2
            caches.append((ca1, cu1, cl, ca2, cu2))
        out, cf = self.final_layer._forward(t)
        return out, (c_in, cc, caches, cf)

    def backward(self, cache, d_out):
        """d_out: (n, out) -> d_x: (n, D), d_context: (n, C) or None; accumulates gradients."""
        c_in, cc, caches, cf = cache
        d_t = self.final_layer._backward(cf, check_array(d_out, "d_out", ndim=2))
        d_c = None
        for k in reversed(range(self.n_blocks)):
            l0, l1, lc = self._block(k)
            if not self.residual:
                cu, ca = caches[k + 1]
                d_t = l0._backward(cu, self.act.backward(ca, d_t))
                continue
            ca1, cu1, cl, ca2, cu2 = caches[k]
            d_u1 = self.act.backward(ca2, l1._backward(cu2, d_t))
            if lc is not None:
                dc = lc._backward(cl, d_u1)
                d_c = dc if d_c is None else d_c + dc
            d_t = d_t + self.act.backward(ca1, l0._backward(cu1, d_u1))
        if not self.residual:
            d_t = self.act.backward(caches[0], d_t)
        if self.context_dim:
            cg, cag = cc
            dc = self.context_layer._backward(cg, self.act.backward(cag, d_t))
            d_c = dc if d_c is None else d_c + dc
        d_x = self.initial_layer._backward(c_in, d_t)
        return d_x, d_c

    def __repr__(self) -> str:
        kind = "residual" if self.residual else "feed-forward"
        return (f"BlockMADE(dim={self.dim}, context_dim={self.context_dim}, {self.n_blocks} "
                f"{kind} blocks, out={self.out_features})")
