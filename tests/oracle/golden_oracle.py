"""Rebuild a golden file's computation from the file alone, on an autodiff backend (torch / JAX),
for tests/oracle/test_golden_roundtrip.py.

:func:`recompute` takes what :func:`nprefgen.testing.golden_reader.load_golden` returned -- and
nothing else: no nprefgen object, no nprefgen formula -- and returns ``{key: array}`` for every
``output.*``, ``grad.input.*`` and ``grad.param.*`` the file records, keyed as the file is, ready
for ``compare_golden``. The structure comes from the file as a user would read it:

* which parameters and buffers exist under which ``state_dict`` prefix (``net.0.weight`` is the
  first Linear of a conditioner; ``made.net.*`` a MADE with ``mask`` buffers; ``log_scale`` an
  affine elementwise map; ``mean``/``std`` a Standardize; ``perm`` a Permutation; ``mask`` (D,)
  a coupling mask), the shapes (a conditioner whose first layer has more inputs than x_A also reads
  the context);
* ``meta.variant`` (scale bound, spline bins/tail bound/minimums, loss conventions, network
  layouts such as ``"Sequential(Linear(3,5), Softplus(), Linear(5,4))"``) and, where the variant
  does not say it, the keyword arguments of ``meta.constructor`` (``activation='tanh'``,
  ``bound=3.0``, ``nn.Reshape(3, 2, 2)``, a convolution's stride and padding), parsed with
  :mod:`ast`.

The arithmetic is the oracle's (oracle_formulas.py: the spline, soft clamp, NT-Xent, GMM and
normal log-density written from the derivations) or written here from the variant strings; the
gradients are the backend's autodiff of the file's objective (``meta.objective``).
"""
from __future__ import annotations

import ast
import math
import re

import numpy as np

from oracle_formulas import band_log_power, periodic_conv_transpose2d, wrap_pad
from oracle_formulas import gmm_log_likelihood, normal_log_prob, ntxent, soft_clamp
from oracle_formulas import spline_forward, spline_inverse

LOG_2PI = math.log(2 * math.pi)


# -- reading the structure from meta ----------------------------------------------------------------
def _call(text: str) -> ast.Call:
    """The first call expression of a constructor string (``<buffer.order>`` placeholders and
    ``.fit(data)``-style suffixes removed)."""
    text = re.sub(r"<[^>]*>", "None", text)
    node = ast.parse(text, mode="eval").body
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and isinstance(node.func.value, ast.Call):
        node = node.func.value                     # flows.ActNorm(3).initialize(data) -> ActNorm(3)
    assert isinstance(node, ast.Call), text
    return node


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def ctor_args(meta) -> tuple[list, dict]:
    call = _call(meta["constructor"])
    return [_literal(a) for a in call.args], {k.arg: _literal(k.value) for k in call.keywords}


def ctor_kw(meta, name, default=None):
    """``name=...`` anywhere in the constructor string (also in nested calls, e.g. a Chain's
    AffineCoupling(..., bound=3.0)); ``default`` when absent."""
    m = re.search(rf"\b{name}=([^,()\]]+)", meta["constructor"])
    return default if m is None else ast.literal_eval(m.group(1).strip())


def sequential_acts(desc: str) -> list[str]:
    """``"Sequential(Linear(3,5), Softplus(), Linear(5,4))"`` (or ``nn.Sequential(nn.Linear(..),
    nn.Tanh(), ..)``) -> the activation after each Linear but the last: ``["softplus"]``."""
    names = re.findall(r"(?:nn\.)?([A-Z]\w*)\(", desc)
    names = [n for n in names if n != "Sequential"]
    acts, pending = [], False
    for n in names:
        if n in ("Linear", "MaskedLinear"):
            if pending:
                acts.append("identity")
            pending = True
        else:
            acts.append(n.lower())
            pending = False
    return acts


# -- networks ---------------------------------------------------------------------------------------
def activation(B, name, x, meta=None):
    name = name.lower()
    if name == "tanh":
        return B.tanh(x)
    if name == "relu":
        return B.relu(x)
    if name == "softplus":
        return B.softplus(x)
    if name == "sigmoid":
        return B.sigmoid(x)
    if name == "elu":
        return B.elu(x, 1.0 if meta is None else meta["variant"].get("alpha", 1.0))
    if name in ("leakyrelu", "leaky_relu"):
        return B.leaky_relu(x, 0.01 if meta is None else meta["variant"].get("negative_slope", 0.01))
    if name == "identity":
        return x
    raise AssertionError(f"unknown activation {name!r}")


def linear_indices(p, prefix) -> list[int]:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.weight$")
    return sorted(int(m.group(1)) for k in p if (m := pat.match(k)))


def mlp(B, g, prefix, x, acts):
    """Linear layers ``prefix<i>.weight/bias`` in index order (masked by ``buffer <prefix><i>.mask``
    where the file has one, NN.3), ``acts[j]`` (a list, or one name for every gap) between them."""
    idx = linear_indices(g.p, prefix)
    assert idx, f"no Linear under {prefix!r}"
    for j, i in enumerate(idx):
        w = g.p[f"{prefix}{i}.weight"]
        if f"{prefix}{i}.mask" in g.buf:
            w = w * B.asarray(g.buf[f"{prefix}{i}.mask"])
        x = x @ w.T + g.p[f"{prefix}{i}.bias"]                                   # (NN.1)
        if j < len(idx) - 1:
            x = activation(B, acts if isinstance(acts, str) else acts[j], x)
    return x


class Golden:
    """The file's parameters as backend arrays (replaceable by autodiff leaves), buffers as numpy."""

    def __init__(self, B, golden, params=None):
        self.B, self.meta = B, golden["meta"]
        self.p = params if params is not None else {k: B.asarray(v) for k, v in golden["params"].items()}
        self.buf = {k: np.asarray(v, dtype=np.float64) for k, v in golden["buffers"].items()}
        self.name = self.meta["name"]
        self.variant = self.meta["variant"]

    def act(self):
        return ctor_kw(self.meta, "activation")


# -- bijectors --------------------------------------------------------------------------------------
def _children(g, prefix) -> list[int]:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in list(g.p) + list(g.buf) if (m := pat.match(k))})


def _spline_spec(v):
    for d in (v, v.get("spline", {})):
        if "n_bins" in d:
            return d["n_bins"], d["tail_bound"], (d["min_width"], d["min_height"], d["min_derivative"])
    return None


def _affine_bound(g):
    v = g.variant
    if "bound" in v:
        return v["bound"]
    if isinstance(v.get("coupling"), dict) and "bound" in v["coupling"]:
        return v["coupling"]["bound"]
    return ctor_kw(g.meta, "bound", 3.0)


def _autoregressive_bound(g):
    for key in ("maf", "iaf"):
        if isinstance(g.variant.get(key), dict):
            return g.variant[key]["bound"]
    return g.variant["bound"]


def _is_iaf(g):
    return g.name == "flows.IAF" or "inverse_autoregressive=True" in g.meta["constructor"]


def kind_at(g, prefix):
    """What the file holds under ``prefix``: chain, coupling, maf, iaf, elementwise, standardize,
    permutation, logit."""
    keys = set(g.p) | set(g.buf)
    if prefix + "made.net.0.weight" in keys:
        return "iaf" if _is_iaf(g) else "maf"
    if prefix + "net.0.weight" in keys and prefix + "mask" in keys:
        return "coupling"
    if prefix + "log_scale" in keys:
        return "elementwise"
    if prefix + "mean" in keys and prefix + "std" in keys:
        return "standardize"
    if prefix + "perm" in keys:
        return "permutation"
    if _children(g, prefix):
        return "chain"
    if g.name == "flows.LogitTransform":
        return "logit"
    raise AssertionError(f"{g.name}: nothing recognisable under {prefix!r}")


def _made(g, prefix, h, c):
    B = g.B
    D = h.shape[1]
    w0 = g.p[prefix + "made.net.0.weight"]
    inp = h if w0.shape[1] == D else B.cat([h, c], 1)           # MADE input [x, context]
    out = mlp(B, g, prefix + "made.net.", inp, g.act())
    return out[:, :D], soft_clamp(B, out[:, D:], _autoregressive_bound(g))     # (FLOW.5), (FLOW.9)


def _coupling_parts(g, prefix, v, c):
    B = g.B
    mask = g.buf[prefix + "mask"]
    idx_a, idx_b = np.flatnonzero(mask == 1), np.flatnonzero(mask == 0)
    v_a, v_b = B.cols(v, idx_a), B.cols(v, idx_b)
    w0 = g.p[prefix + "net.0.weight"]
    inp = v_a if w0.shape[1] == len(idx_a) else B.cat([v_a, c], 1)   # [x_A, context]
    h = mlp(B, g, prefix + "net.", inp, g.act())
    return idx_a, idx_b, v_a, v_b, h


def _merge(B, a, b, idx_a, idx_b):
    return B.cols(B.cat([a, b], 1), np.argsort(np.concatenate([idx_a, idx_b])))


def _sequential_order(g, prefix):
    return np.argsort(g.buf[prefix + "order"], kind="stable")     # input degrees 1..D


def forward(g, prefix, x, c):
    """z = f(x | c), log|det df/dx| per row (FLOW.2-FLOW.19, SPL.4-SPL.6, SPL.12)."""
    B, n = g.B, x.shape[0]
    kind = kind_at(g, prefix)
    if kind == "chain":
        total = B.zeros((n,))
        for k in _children(g, prefix):
            x, ld = forward(g, f"{prefix}{k}.", x, c)
            total = total + ld
        return x, total
    if kind == "standardize":                                              # (FLOW.17)
        std = B.asarray(g.buf[prefix + "std"])
        return (x - B.asarray(g.buf[prefix + "mean"])) / std, B.zeros((n,)) - B.sum(B.log(std))
    if kind == "elementwise":                                              # (FLOW.17)
        ls = g.p[prefix + "log_scale"]
        return x * B.exp(ls) + g.p[prefix + "shift"], B.zeros((n,)) + B.sum(ls)
    if kind == "permutation":                                              # (FLOW.16)
        return B.cols(x, g.buf[prefix + "perm"].astype(np.int64)), B.zeros((n,))
    if kind == "logit":                                                    # (FLOW.19)
        lam, a = g.variant["lam"], g.variant.get("data_scale", 1.0)
        q = lam + (1 - 2 * lam) * (x / a)
        per = math.log1p(-2 * lam) - math.log(a) - B.log(q) - B.log1p(-q)
        return B.log(q) - B.log1p(-q), B.sum(per, 1)
    if kind == "coupling":
        idx_a, idx_b, x_a, x_b, h = _coupling_parts(g, prefix, x, c)
        d_b, spec = len(idx_b), _spline_spec(g.variant)
        if spec is None:                                                   # (FLOW.4)-(FLOW.6)
            s = soft_clamp(B, h[:, :d_b], _affine_bound(g))
            y_b, ld = x_b * B.exp(s) + h[:, d_b:], B.sum(s, 1)
        else:                                                              # (SPL.12)
            K, bound, mins = spec
            y_b, ld_el = spline_forward(B, x_b, B.reshape(h, (n, d_b, 3 * K - 1)), bound, mins)
            ld = B.sum(ld_el, 1)
        return _merge(B, x_a, y_b, idx_a, idx_b), ld
    if kind == "maf":                                                      # (FLOW.11)
        mu, alpha = _made(g, prefix, x, c)
        return (x - mu) * B.exp(-alpha), -B.sum(alpha, 1)
    if kind == "iaf":                                                      # (FLOW.13) sequential
        z = x * 0.0
        for i in _sequential_order(g, prefix):
            mu, alpha = _made(g, prefix, z, c)
            sel = np.zeros(x.shape[1], dtype=bool)
            sel[i] = True
            z = B.where(sel[None, :], (x - mu) * B.exp(-alpha), z)
        _, alpha = _made(g, prefix, z, c)
        return z, -B.sum(alpha, 1)
    raise AssertionError(kind)


def inverse(g, prefix, z, c):
    """x = f^{-1}(z | c), log|det df^{-1}/dz| per row (FLOW.7, FLOW.12, FLOW.13, SPL.7-SPL.8)."""
    B, n = g.B, z.shape[0]
    kind = kind_at(g, prefix)
    if kind == "chain":
        total = B.zeros((n,))
        for k in reversed(_children(g, prefix)):
            z, ld = inverse(g, f"{prefix}{k}.", z, c)
            total = total + ld
        return z, total
    if kind == "standardize":
        std = B.asarray(g.buf[prefix + "std"])
        return z * std + B.asarray(g.buf[prefix + "mean"]), B.zeros((n,)) + B.sum(B.log(std))
    if kind == "elementwise":
        ls = g.p[prefix + "log_scale"]
        return (z - g.p[prefix + "shift"]) * B.exp(-ls), B.zeros((n,)) - B.sum(ls)
    if kind == "permutation":
        return B.cols(z, np.argsort(g.buf[prefix + "perm"].astype(np.int64))), B.zeros((n,))
    if kind == "logit":
        lam, a = g.variant["lam"], g.variant.get("data_scale", 1.0)
        q = B.sigmoid(z)
        per = math.log1p(-2 * lam) - math.log(a) - B.log(q) - B.log1p(-q)
        return a * (q - lam) / (1 - 2 * lam), -B.sum(per, 1)
    if kind == "coupling":
        idx_a, idx_b, z_a, z_b, h = _coupling_parts(g, prefix, z, c)
        d_b, spec = len(idx_b), _spline_spec(g.variant)
        if spec is None:
            s = soft_clamp(B, h[:, :d_b], _affine_bound(g))
            x_b, ld = (z_b - h[:, d_b:]) * B.exp(-s), -B.sum(s, 1)
        else:
            K, bound, mins = spec
            x_b, ld_el = spline_inverse(B, z_b, B.reshape(h, (n, d_b, 3 * K - 1)), bound, mins)
            ld = B.sum(ld_el, 1)
        return _merge(B, z_a, x_b, idx_a, idx_b), ld
    if kind == "maf":                                                      # (FLOW.12)
        x = z * 0.0
        for i in _sequential_order(g, prefix):
            mu, alpha = _made(g, prefix, x, c)
            sel = np.zeros(z.shape[1], dtype=bool)
            sel[i] = True
            x = B.where(sel[None, :], z * B.exp(alpha) + mu, x)
        _, alpha = _made(g, prefix, x, c)
        return x, B.sum(alpha, 1)
    if kind == "iaf":                                                      # (FLOW.13) one pass
        mu, alpha = _made(g, prefix, z, c)
        return z * B.exp(alpha) + mu, B.sum(alpha, 1)
    raise AssertionError(kind)


def _flow_context(g, c):
    B = g.B
    return (c - B.asarray(g.buf["context_mean"])) / B.asarray(g.buf["context_std"])


# -- the cases: (outputs, objective) from params and inputs -----------------------------------------
def _layer(g, inp):
    B, meta = g.B, g.meta
    name = g.name.split(".", 1)[1]
    x = inp["x"]
    if name in ("Linear", "MaskedLinear"):
        w = g.p["weight"] * (B.asarray(g.buf["mask"]) if "mask" in g.buf else 1.0)
        y = x @ w.T + g.p["bias"]                                          # (NN.1), (NN.3)
    elif name == "Sequential":
        y = mlp(B, g, "", x, sequential_acts(meta["constructor"]))
    elif name == "MLP":
        y = mlp(B, g, "", x, sequential_acts(g.variant["torch"]))
    elif name == "Flatten":
        y = B.reshape(x, (x.shape[0], -1))
    elif name == "Reshape":
        y = B.reshape(x, (x.shape[0], *ctor_args(meta)[0]))
    elif name in ("Conv2d", "ConvTranspose2d"):                             # (NN.21), (NN.27)
        args, kw = ctor_args(meta)
        pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
        stride, padding = pair(kw.get("stride", 1)), pair(kw.get("padding", 0))
        if name == "Conv2d":
            y = B.conv2d(x, g.p["weight"], g.p["bias"], stride, padding)
        else:
            y = B.conv_transpose2d(x, g.p["weight"], g.p["bias"], stride, padding,
                                   pair(kw.get("output_padding", 0)))
    elif name == "MinibatchStd":                                          # (GAN.16), eps 1e-8
        n = x.shape[0]
        dev = x - B.sum(x, 0) / n
        s = B.mean(B.sqrt(B.sum(dev * dev, 0) / n + 1e-8))
        y = B.cat([x, s * B.ones((n, 1, *x.shape[2:]))], 1)
    elif name in ("CircularPad2d", "CircularFold2d"):                     # (GAN.19), (GAN.20)
        y = wrap_pad(B, x, tuple(ctor_args(meta)[0][0]), fold=name == "CircularFold2d")
    elif name in ("PeriodicConv2d", "PeriodicConvTranspose2d"):
        args, kw = ctor_args(meta)
        pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
        stride, padding = pair(kw.get("stride", 1)), pair(kw.get("padding", 0))
        if name == "PeriodicConv2d":
            y = B.conv2d(wrap_pad(B, x, (padding[0], padding[0], padding[1], padding[1])),
                         g.p["weight"], g.p["bias"], stride, (0, 0))
        else:
            y = periodic_conv_transpose2d(B, x, g.p["weight"], g.p["bias"], stride, padding,
                                          pair(kw.get("output_padding", 0)))
    elif name == "BinnedLogPower":                                        # (GAN.21), eps 1e-8
        y = band_log_power(B, x, *ctor_args(meta)[0], 1e-8)
    elif name == "Branches":                       # Linear "0.*" beside BinnedLogPower(s, b)
        s_b = re.search(r"BinnedLogPower\((\d+), (\d+)\)", meta["constructor"]).groups()
        y = B.cat([x @ g.p["0.weight"].T + g.p["0.bias"],
                   band_log_power(B, x, int(s_b[0]), int(s_b[1]), 1e-8)], 1)
    elif name == "MADE":                                                  # (FLOW.9)-(FLOW.10)
        y = mlp(B, g, "net.", B.cat([x, inp["context"]], 1), g.act())
    else:
        y = activation(B, name, x, meta)                                  # (NN.4)
    return {"y": y}


def _objective_vec(g, inp, out):
    B = g.B
    return sum(B.sum(out[k] * B.asarray(g.cot[k])) for k in g.cot)


def _loss(g, inp):
    B, name = g.B, g.name
    if name == "nn.mse_loss":                                              # (NN.11)
        d = inp["pred"] - inp["target"]
        return B.mean(d * d)
    if name == "nn.bce_with_logits_loss":                                  # (NN.12)
        a = inp["logits"]
        return B.mean(B.softplus(a) - inp["target"] * a)
    if name == "nn.gaussian_nll_loss":                                     # (NN.13)
        d = inp["target"] - inp["mu"]
        return B.mean(0.5 * (LOG_2PI + inp["log_var"] + d * d * B.exp(-inp["log_var"])))
    if name == "nn.softmax_cross_entropy_loss":                            # (NN.14)
        a = inp["logits"]
        onehot = B.asarray(np.eye(a.shape[1])[g.inputs_np["labels"].astype(np.int64)])
        return B.mean(B.logsumexp(a, 1) - B.sum(a * onehot, 1))
    if name == "models.ntxent_loss":                                       # (REP.12)-(REP.13)
        return ntxent(B, B.cat([inp["z_a"], inp["z_b"]], 0), g.variant["tau"])
    raise AssertionError(name)


def _model(g, inp):
    """-> (outputs dict, scalar loss)."""
    B, name, v = g.B, g.name, g.variant
    if name.startswith("models.dense_autoencoder"):                        # (REP.9)
        x = inp["x"]
        y = mlp(B, g, "decoder.", mlp(B, g, "encoder.", x, sequential_acts(v["encoder"])),
                sequential_acts(v["decoder"]))
        if ctor_kw(g.meta, "loss") == "mse":
            loss = B.mean((y - x) * (y - x))
        else:
            loss = B.mean(B.softplus(y) - x * y)
        return {"y": y, "loss": loss}, loss
    if name == "models.SimCLR":                                            # (REP.12)-(REP.16)
        def project(x):
            return mlp(B, g, "head.", mlp(B, g, "encoder.", x, sequential_acts(v["encoder"])),
                       sequential_acts(v["head"]))
        z_a, z_b = project(inp["x_a"]), project(inp["x_b"])
        loss = ntxent(B, B.cat([z_a, z_b], 0), v["tau"])
        return {"z_a": z_a, "z_b": z_b, "loss": loss}, loss
    if name == "models.GaussianMixture":                                   # (GMM.1)-(GMM.2)
        cov = g.p["covariances"]
        # the symmetric gradient the file documents: differentiate through (C + C^T) / 2
        cov = 0.5 * (cov + (cov.transpose(-1, -2) if B.name == "torch" else B.jnp.swapaxes(cov, -1, -2)))
        lp = gmm_log_likelihood(B, inp["x"], g.p["weights"], g.p["means"], cov,
                                v["covariance_type"])
        loss = -B.mean(lp)
        return {"log_prob": lp, "loss": loss}, loss
    if name.startswith("models.VAE"):                                      # (VAE.1)-(VAE.11)
        x, eps = inp["x"], B.asarray(g.inputs_np["eps"])
        act = g.act()
        h = mlp(B, g, "encoder.", x, act)
        d = eps.shape[1]
        mu, lv = h[:, :d], h[:, d:]
        zz = mu + B.exp(lv / 2) * eps
        a = mlp(B, g, "decoder.", zz, act)
        kl = 0.5 * B.sum(mu * mu + (B.exp(lv) - 1.0) - lv, 1)
        if ctor_kw(g.meta, "likelihood") == "bernoulli":
            ll = B.sum(x * a - B.softplus(a), 1)
        else:
            lvd = g.p["decoder_log_var"]
            ll = -0.5 * B.sum(LOG_2PI + lvd + (x - a) * (x - a) * B.exp(-lvd), 1)
        elbo = ll - kl
        loss = -B.mean(elbo)
        return {"elbo": elbo, "loss": loss}, loss
    if name == "models.NCSN":                                              # (SCORE.5)-(SCORE.7)
        sigma = g.buf["sigmas"][g.inputs_np["levels"].astype(np.int64)]
        z = B.asarray(g.inputs_np["z"])
        sig = B.asarray(sigma[:, None])
        net_in = B.cat([inp["x"] + sig * z, inp["context"], B.asarray(np.log(sigma)[:, None])], 1)
        s = mlp(B, g, "", net_in, g.act()) / sig
        r = sig * s + z
        loss = B.mean(0.5 * B.sum(r * r, 1))
        return {"loss": loss}, loss
    raise AssertionError(name)


# fixed (not differentiated) inputs of each kind: the bijector's inverse point, a model's noise
_FIXED = {"labels", "levels", "eps"}


def _evaluate(g, inp):
    """-> (outputs dict, objective) for the file's case with backend params g.p and inputs inp."""
    B, kind = g.B, g.meta["kind"]
    if kind == "layer":
        out = _layer(g, inp)
        return out, _objective_vec(g, inp, out)
    if kind == "loss":
        loss = _loss(g, inp)
        return {"loss": loss}, loss
    if kind == "model":
        return _model(g, inp)
    if kind == "bijector":
        c = inp.get("context")
        z, ld = forward(g, "", inp["x"], c)
        out = {"z": z, "log_det": ld}
        return out, _objective_vec(g, inp, out)
    if kind == "flow":                                                     # (FLOW.1), (FLOW.22)
        c = _flow_context(g, inp["context"])
        z, ld = forward(g, "", inp["x"], c)
        lp = normal_log_prob(B, z) + ld
        return {"log_prob": lp}, B.sum(lp * B.asarray(g.cot["log_prob"]))
    raise AssertionError(kind)


def _value_and_grad_aux(B, fun, leaves):
    """``fun(leaves) -> (scalar, {name: array})`` -> (gradients, aux) as numpy, by the backend's
    reverse mode: one torch graph, or one jitted XLA program (value, gradient and aux together)."""
    if B.name == "jax":
        jax, jnp = B.jax, B.jnp
        arrays = {k: jnp.asarray(np.asarray(v, dtype=np.float64)) for k, v in leaves.items()}
        (_, aux), grads = jax.jit(jax.value_and_grad(fun, has_aux=True))(arrays)
        return {k: np.array(v) for k, v in grads.items()}, {k: np.array(v) for k, v in aux.items()}
    t = B.t
    arrays = {k: t.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in leaves.items()}
    value, aux = fun(arrays)
    value.backward()
    grads = {k: (a.grad.numpy().copy() if a.grad is not None else np.zeros(tuple(a.shape)))
             for k, a in arrays.items()}
    return grads, {k: v.detach().numpy().copy() for k, v in aux.items()}


def recompute(B, golden) -> dict[str, np.ndarray]:
    """Every output and gradient the golden file records, recomputed on backend ``B`` from the
    file alone; keys as in the file (``output.z``, ``grad.param.net.0.weight``, ...)."""
    meta = golden["meta"]
    inputs_np = {k: np.asarray(v) for k, v in golden["inputs"].items()}
    grad_in = set(golden["grads"]["inputs"])
    grad_p = set(golden["grads"]["params"])
    cot = {k: np.asarray(v, dtype=np.float64) for k, v in golden["cotangents"].items()}

    def full(leaves):
        params = {k[6:]: v for k, v in leaves.items() if k.startswith("param.")}
        for k, v in golden["params"].items():      # parameters without a recorded gradient
            params.setdefault(k, B.asarray(v))
        g = Golden(B, golden, params)
        g.cot, g.inputs_np = cot, inputs_np
        inp = {k: B.asarray(v) for k, v in inputs_np.items() if k not in grad_in | _FIXED}
        inp.update({k[6:]: v for k, v in leaves.items() if k.startswith("input.")})
        out, objective = _evaluate(g, inp)
        if meta["kind"] in ("bijector", "flow"):   # the inverse at input.z (not differentiated)
            c = inp.get("context")
            if meta["kind"] == "flow":
                c = _flow_context(g, c)
            out["inverse.x"], out["inverse.log_det"] = inverse(g, "", inp["z"], c)
        return objective, out

    leaves = {**{f"param.{k}": golden["params"][k] for k in grad_p},
              **{f"input.{k}": inputs_np[k] for k in grad_in}}
    grads, out = _value_and_grad_aux(B, full, leaves)
    theirs = {f"grad.{k}": v for k, v in grads.items()}
    theirs.update({f"output.{k}": np.asarray(v).reshape(golden["outputs"][k].shape)
                   for k, v in out.items()})
    return theirs
