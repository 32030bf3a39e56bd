"""The golden cases (:mod:`nprefgen.testing.golden`): every exported layer of :mod:`nprefgen.nn`,
its losses, every bijector and builder of :mod:`nprefgen.flows`, and the models with a loss.

Each ``build(rng, dtype, n)`` makes the object with weights drawn from ``rng`` (flows' zero-
initialised last layers are re-drawn so that no gradient is trivially zero), draws the inputs
from the same ``rng`` and returns a :class:`~nprefgen.testing.golden.Record`. Names are the
public names: ``nn.<Layer>``, ``nn.<loss>``, ``flows.<Bijector>``, ``flows.<builder>``,
``models.<model or loss>``; a suffix after a second dot names a variant (``flows.maf.iaf``).
"""
from __future__ import annotations

import numpy as np

from nprefgen import flows as F
from nprefgen import nn
from nprefgen.models.contrastive import ntxent_loss
from nprefgen.testing.bijector_checks import randomize_parameters
from nprefgen.testing.golden import (
    Record, bijector_record, draw, layer_record, named_masks, param_grads, register_case,
)

AFFINE = {"transform": "y_B = x_B * exp(s) + t", "scale": "s = bound * tanh(raw_s / bound) "
          "(raw_s unchanged when bound is None)", "conditioner_output": "[raw_s (d_B), t (d_B)]",
          "conditioner_input": "[x_A, context]", "mask": "1 = conditioning part A, 0 = transformed B"}
MAF_VARIANT = {"made_output": "[mu (D), raw_alpha (D)]", "alpha": "bound * tanh(raw_alpha / bound)",
               "forward": "z = (x - mu(x)) * exp(-alpha(x)), log_det = -sum alpha",
               "made_input": "[x, context]", "masks": "buffers '<layer>.mask' (out, in), "
               "effective weight = weight * mask"}


def _cast(module, dtype):
    return module.astype(dtype) if dtype != np.float64 else module


# -- nn layers ---------------------------------------------------------------------------------------
def _simple_layer(name, make, in_shape, labels, constructor, away=0.0, variant=None):
    @register_case(f"nn.{name}", "layer", labels, f"nn.{name}: y = layer(x), gradients by cotangent")
    def build(rng, dtype, n):
        layer = _cast(make(rng), dtype)
        x = draw((n, *in_shape), dtype, away=away, rng=rng)
        return layer_record(layer, x, rng=rng, constructor=constructor, variant=variant)


_simple_layer("Linear", lambda rng: nn.Linear(3, 4, rng=rng), (3,), ["NN.1", "NN.2a", "NN.2b", "NN.2c"],
              "nn.Linear(3, 4)", variant={"weight_layout": "(out_features, in_features)",
                                          "formula": "y = x @ weight.T + bias"})
_MASK = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1.0]])
_simple_layer("MaskedLinear", lambda rng: nn.MaskedLinear(3, 4, _MASK, rng=rng), (3,), ["NN.3"],
              "nn.MaskedLinear(3, 4, mask)", variant={"formula": "y = x @ (weight * mask).T + bias",
                                                      "mask": "buffer.mask (out, in)"})
for _name, _make, _kw in [("ReLU", nn.ReLU, {}), ("LeakyReLU", nn.LeakyReLU, {"negative_slope": 0.1}),
                          ("Tanh", nn.Tanh, {}), ("Sigmoid", nn.Sigmoid, {}),
                          ("Softplus", nn.Softplus, {}), ("ELU", nn.ELU, {"alpha": 0.7}),
                          ("Identity", nn.Identity, {})]:
    _simple_layer(_name, lambda rng, m=_make, kw=_kw: m(**kw), (5,), ["NN.4"],
                  f"nn.{_name}({', '.join(f'{k}={v}' for k, v in _kw.items())})", away=0.05,
                  variant={"inputs": "at least 0.05 away from 0 (no kink at 0)", **_kw})
_simple_layer("Sequential", lambda rng: nn.Sequential(nn.Linear(3, 6, rng=rng), nn.Tanh(),
                                                      nn.Linear(6, 2, rng=rng)),
              (3,), ["NN.10"], "nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))",
              variant={"names": "children '0', '1', '2' as torch.nn.Sequential"})
_simple_layer("MLP", lambda rng: nn.MLP(3, [5, 4], 2, rng=rng, activation="softplus"), (3,), ["NN.10"],
              "nn.MLP(3, [5, 4], 2, activation='softplus')",
              variant={"torch": "Sequential(Linear(3,5), Softplus(), Linear(5,4), Softplus(), Linear(4,2))"})
_simple_layer("Flatten", lambda rng: nn.Flatten(), (2, 3, 2), ["NN.10"], "nn.Flatten()",
              variant={"order": "C order over (c, h, w), as torch.flatten(x, 1)"})
_simple_layer("Reshape", lambda rng: nn.Reshape(3, 2, 2), (12,), ["NN.10"], "nn.Reshape(3, 2, 2)",
              variant={"torch": "torch.nn.Unflatten(1, (3, 2, 2))"})
_simple_layer("Conv2d", lambda rng: nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), rng=rng),
              (2, 6, 5), ["NN.21", "NN.25"], "nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0))",
              variant={"weight_layout": "(out_channels, in_channels, kh, kw)",
                       "formula": "cross-correlation as torch.nn.Conv2d"})
_simple_layer("ConvTranspose2d", lambda rng: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1,
                                                                output_padding=1, rng=rng),
              (2, 3, 4), ["NN.27", "NN.28"],
              "nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1)",
              variant={"weight_layout": "(in_channels, out_channels, kh, kw)"})
_simple_layer("MinibatchStd", lambda rng: nn.MinibatchStd(), (2, 3, 3), ["GAN.16", "GAN.17"],
              "nn.MinibatchStd()", variant={"formula": "append mean_chw sqrt(var_batch(x) + 1e-8) "
                                            "(population variance) as one more channel"})
_simple_layer("CircularPad2d", lambda rng: nn.CircularPad2d((1, 0, 2, 1)), (2, 3, 4), ["GAN.19"],
              "nn.CircularPad2d((1, 0, 2, 1))",
              variant={"padding": "(top, bottom, left, right)",
                       "torch": "torch.nn.functional.pad(x, (2, 1, 1, 0), mode='circular')"})
_simple_layer("CircularFold2d", lambda rng: nn.CircularFold2d((1, 0, 2, 1)), (2, 5, 7), ["GAN.20"],
              "nn.CircularFold2d((1, 0, 2, 1))",
              variant={"formula": "the adjoint of CircularPad2d((1, 0, 2, 1)): padded pixels "
                                  "added into the pixels they wrap onto"})
_simple_layer("PeriodicConv2d", lambda rng: nn.PeriodicConv2d(2, 3, 3, stride=2, padding=1, rng=rng),
              (2, 4, 6), ["GAN.19", "NN.25"], "nn.PeriodicConv2d(2, 3, 3, stride=2, padding=1)",
              variant={"torch": "torch.nn.Conv2d(2, 3, 3, stride=2, padding=1, "
                                "padding_mode='circular')"})
_simple_layer("PeriodicConvTranspose2d", lambda rng: nn.PeriodicConvTranspose2d(
    2, 3, 3, stride=2, padding=1, output_padding=1, rng=rng), (2, 3, 4), ["GAN.20", "NN.28"],
              "nn.PeriodicConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1)",
              variant={"formula": "ConvTranspose2d(padding 0) without bias, folded by (top, "
                                  "bottom, left, right) = (1, 0, 1, 0), then + bias"})
_simple_layer("BinnedLogPower", lambda rng: nn.BinnedLogPower(8, 3), (64,), ["GAN.21", "GAN.22"],
              "nn.BinnedLogPower(8, 3)",
              variant={"formula": "log(mean over |k| shell of |fft2(x)|^2 / 64 + 1e-8), shells "
                                  "log-spaced 1..4 in integer |k|"})
_simple_layer("Branches", lambda rng: nn.Branches(nn.Linear(16, 2, rng=rng), nn.BinnedLogPower(4, 2)),
              (16,), ["GAN.21"], "nn.Branches(nn.Linear(16, 2), nn.BinnedLogPower(4, 2))",
              variant={"formula": "concatenate the branches' outputs along axis 1"})


@register_case("flows.MADE", "layer", ["FLOW.10", "FLOW.11", "NN.3"],
               "flows.MADE with a context: [mu, raw_alpha] = MADE([x, context])")
def _made(rng, dtype, n):
    made = F.MADE(3, [7], rng=rng, context_dim=2, activation="tanh", zero_init=False)
    made = _cast(made, dtype)
    x, c = draw((n, 3), dtype, rng=rng), draw((n, 2), dtype, rng=rng)
    out, cache = made.forward(x, c)
    d_out = draw(out.shape, dtype, rng=rng)
    made.zero_grad()
    d_x, d_c = made.backward(cache, d_out)

    def evaluate(params, inputs):
        made.load_state_dict(params)
        return float(np.sum(d_out * made.forward(inputs["x"], inputs["context"])[0]))
    return Record(params=made.state_dict(), buffers={**named_masks(made),
                                                     "order": made.order.astype(np.float64)},
                  inputs={"x": x, "context": c}, cotangents={"y": d_out}, outputs={"y": out},
                  grad_inputs={"x": d_x, "context": d_c}, grad_params=param_grads(made),
                  objective="sum(cotangent.y * output.y)",
                  constructor="flows.MADE(3, [7], context_dim=2, activation='tanh')",
                  variant={"output": "[mu (D), raw_alpha (D)]", "input": "[x, context]",
                           "order": "input degrees 1..D (buffer.order)"}, evaluate=evaluate)


# -- losses ----------------------------------------------------------------------------------------
def _loss_record(loss_fn, inputs, grad_names, constructor, variant=None):
    loss, grads = loss_fn(*inputs.values())
    grads = grads if isinstance(grads, tuple) else (grads,)
    return Record(inputs=inputs, outputs={"loss": np.asarray(loss)},
                  grad_inputs=dict(zip(grad_names, grads)), objective="output.loss",
                  constructor=constructor, variant=variant or {},
                  evaluate=lambda params, inputs: float(loss_fn(*inputs.values())[0]))


@register_case("nn.mse_loss", "loss", ["NN.11"], "mean squared error, reduction='mean'", batch=4)
def _mse(rng, dtype, n):
    return _loss_record(nn.mse_loss, {"pred": draw((n, 3), dtype, rng=rng),
                                      "target": draw((n, 3), dtype, rng=rng)},
                        ["pred"], "nn.mse_loss(pred, target)",
                        {"reduction": "mean over all elements", "formula": "mean((pred - target)^2)"})


@register_case("nn.bce_with_logits_loss", "loss", ["NN.12"], "binary cross-entropy on logits")
def _bce(rng, dtype, n):
    return _loss_record(nn.bce_with_logits_loss,
                        {"logits": draw((n, 3), dtype, scale=2.0, rng=rng),
                         "target": rng.uniform(0, 1, (n, 3)).astype(dtype)},
                        ["logits"], "nn.bce_with_logits_loss(logits, target)",
                        {"reduction": "mean over all elements",
                         "formula": "mean(softplus(a) - y a), as torch BCEWithLogitsLoss"})


@register_case("nn.gaussian_nll_loss", "loss", ["NN.13"], "Gaussian NLL with a log-variance")
def _gnll(rng, dtype, n):
    return _loss_record(nn.gaussian_nll_loss,
                        {"mu": draw((n, 3), dtype, rng=rng), "log_var": draw((n, 3), dtype, 0.5, rng=rng),
                         "target": draw((n, 3), dtype, rng=rng)},
                        ["mu", "log_var"], "nn.gaussian_nll_loss(mu, log_var, target)",
                        {"reduction": "mean over all elements", "parametrisation": "log-variance",
                         "formula": "mean(0.5 (log 2pi + log_var + (x - mu)^2 exp(-log_var)))"})


@register_case("nn.softmax_cross_entropy_loss", "loss", ["NN.14"], "softmax cross-entropy")
def _xent(rng, dtype, n):
    return _loss_record(nn.softmax_cross_entropy_loss,
                        {"logits": draw((n, 5), dtype, scale=2.0, rng=rng),
                         "labels": rng.integers(0, 5, n).astype(np.int64)},
                        ["logits"], "nn.softmax_cross_entropy_loss(logits, labels)",
                        {"reduction": "mean over samples, as torch CrossEntropyLoss"})


@register_case("models.ntxent_loss", "loss", ["REP.12", "REP.13", "REP.14", "REP.15"],
               "NT-Xent of N positive pairs (SimCLR), tau = 0.5", dtypes=("float64",), batch=4,
               min_batch=2)
def _ntxent(rng, dtype, n):
    return _loss_record(lambda a, b: (lambda r: (r[0], (r[1], r[2])))(ntxent_loss(a, b, 0.5)),
                        {"z_a": draw((n, 3), dtype, rng=rng), "z_b": draw((n, 3), dtype, rng=rng)},
                        ["z_a", "z_b"], "models.ntxent_loss(z_a, z_b, tau=0.5)",
                        {"tau": 0.5, "formula": "cross-entropy over the 2N-1 others of each of the "
                         "2N views, cosine similarity / tau, mean over the 2N views",
                         "positives": "row i of z_a with row i of z_b"})


# -- bijectors --------------------------------------------------------------------------------------
def _bijector_case(name, labels, summary, make, *, context_dim=0, x_fn=None, constructor="",
                   variant=None, randomize=0.4, min_batch=1):
    @register_case(f"flows.{name}", "bijector", labels, summary, batch=5, min_batch=min_batch)
    def build(rng, dtype, n):
        b = make(rng)
        if randomize and b.parameters():
            randomize_parameters(b, rng=rng, scale=randomize)
        b = _cast(b, dtype)
        x = (x_fn(rng, n) if x_fn else rng.standard_normal((n, b.dim))).astype(dtype)
        c = draw((n, context_dim), dtype, rng=rng) if context_dim else None
        return bijector_record(b, x, c, rng=rng, constructor=constructor, variant=variant)


_bijector_case("AffineCoupling", ["FLOW.5", "FLOW.6", "FLOW.7", "FLOW.8", "FLOW.9"],
               "RealNVP affine coupling with a context, bounded scale",
               lambda rng: F.AffineCoupling(F.alternating_mask(4), [6], rng=rng, context_dim=2,
                                            activation="tanh", bound=2.0),
               context_dim=2, constructor="flows.AffineCoupling(alternating_mask(4), [6], "
               "context_dim=2, activation='tanh', bound=2.0)", variant={**AFFINE, "bound": 2.0})
_bijector_case("AffineCoupling.unbounded", ["FLOW.5", "FLOW.7", "FLOW.8", "FLOW.9"],
               "RealNVP affine coupling, unbounded scale (bound=None), half mask",
               lambda rng: F.AffineCoupling(F.half_mask(4), [5, 5], rng=rng, activation="tanh",
                                            bound=None),
               constructor="flows.AffineCoupling(half_mask(4), [5, 5], activation='tanh', bound=None)",
               variant={**AFFINE, "bound": None, "scale": "s = raw_s"})
_bijector_case("Coupling", ["FLOW.5", "FLOW.6", "FLOW.9"],
               "the generic coupling with an AffineTransform, flipped alternating mask",
               lambda rng: F.Coupling(F.alternating_mask(5, parity=1), F.AffineTransform(bound=3.0),
                                      [6], rng=rng, activation="elu"),
               constructor="flows.Coupling(alternating_mask(5, parity=1), AffineTransform(bound=3.0), "
               "[6], activation='elu')", variant={**AFFINE, "bound": 3.0})
_bijector_case("SplineCoupling", ["SPL.2", "SPL.3", "SPL.4", "SPL.5", "SPL.6", "SPL.7", "SPL.8",
                                  "SPL.12", "SPL.13"],
               "rational-quadratic spline coupling with a context, inputs partly in the tails",
               lambda rng: F.SplineCoupling(4, F.alternating_mask(4), hidden=6, n_bins=4, bound=2.5,
                                            rng=rng, context_dim=2, activation="tanh"),
               context_dim=2, x_fn=lambda rng, n: 1.6 * rng.standard_normal((n, 4)),
               constructor="flows.SplineCoupling(4, alternating_mask(4), hidden=6, n_bins=4, "
               "bound=2.5, context_dim=2, activation='tanh')",
               variant={"n_bins": 4, "tail_bound": 2.5, "tails": "identity outside [-B, B] "
                        "(linear tails, log_det 0 there)", "min_width": 1e-3, "min_height": 1e-3,
                        "min_derivative": 1e-3,
                        "theta_layout": "conditioner output (n, d_B * (3K-1)) read as (n, d_B, 3K-1): "
                        "[K width logits, K height logits, K-1 derivative pre-activations]",
                        "widths": "2B min_width + 2B (1 - K min_width) softmax(a_w)",
                        "derivatives": "min_derivative + softplus(pre + log(expm1(1 - "
                        "min_derivative))), boundary derivatives 1",
                        "conditioner_input": "[x_A, context]"})
_bijector_case("MAF", ["FLOW.6", "FLOW.10", "FLOW.12", "FLOW.13", "FLOW.14"],
               "one MAF layer with a context and a random order",
               lambda rng: F.MAF(3, [7], rng=rng, context_dim=2, activation="tanh", bound=3.0,
                                 order=rng.permutation(3) + 1),
               context_dim=2, constructor="flows.MAF(3, [7], context_dim=2, activation='tanh', "
               "bound=3.0, order=<buffer.order>)", variant={**MAF_VARIANT, "bound": 3.0})
_bijector_case("IAF", ["FLOW.6", "FLOW.15", "FLOW.16"],
               "one IAF layer (forward is the sequential direction)",
               lambda rng: F.IAF(3, [6], rng=rng, activation="tanh", bound=3.0),
               constructor="flows.IAF(3, [6], activation='tanh', bound=3.0)",
               variant={**MAF_VARIANT, "bound": 3.0,
                        "forward": "x = z * exp(alpha(z)) + mu(z) solved for z; log_det = -sum alpha(z)",
                        "inverse": "x = z * exp(alpha(z)) + mu(z) in one pass"})
_bijector_case("ElementwiseAffine", ["FLOW.18"], "trained per-coordinate scale and shift",
               lambda rng: F.ElementwiseAffine(3), constructor="flows.ElementwiseAffine(3)",
               variant={"formula": "z = x * exp(log_scale) + shift"})


def _actnorm(rng):
    b = F.ActNorm(3)
    b.initialize(rng.standard_normal((10, 3)) * [1.0, 2.0, 0.5] + 1.0)
    return b


_bijector_case("ActNorm", ["FLOW.18", "FLOW.19"], "ActNorm after its data-dependent initialisation",
               _actnorm, randomize=0.0, constructor="flows.ActNorm(3).initialize(data)",
               variant={"formula": "z = x * exp(log_scale) + shift (buffer.initialized = 1)"})
_bijector_case("Standardize", ["FLOW.18"], "fixed z-scoring (buffers mean, std)",
               lambda rng: F.Standardize(rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)),
               constructor="flows.Standardize(mean, std)",
               variant={"formula": "z = (x - mean) / std, log_det = -sum log std"})
_bijector_case("LogitTransform", ["FLOW.21"], "logit transform of data in [0, 1]",
               lambda rng: F.LogitTransform(3, lam=0.05), x_fn=lambda rng, n: rng.uniform(0.02, 0.98, (n, 3)),
               constructor="flows.LogitTransform(3, lam=0.05)",
               variant={"lam": 0.05, "data_scale": 1.0,
                        "formula": "p = lam + (1 - 2 lam) x / a, z = log p - log(1 - p)"})
_bijector_case("Permutation", ["FLOW.17"], "a fixed permutation",
               lambda rng: F.Permutation(rng.permutation(4)), constructor="flows.Permutation(perm)",
               variant={"formula": "z = x[:, perm]"})
_bijector_case("Chain", ["FLOW.2", "FLOW.5", "FLOW.17", "FLOW.18"],
               "a chain: ElementwiseAffine, Permutation, AffineCoupling with a context",
               lambda rng: F.Chain([F.ElementwiseAffine(3), F.Permutation([2, 0, 1]),
                                    F.AffineCoupling(F.half_mask(3), [5], rng=rng, context_dim=2,
                                                     activation="tanh", bound=3.0)]),
               context_dim=2, constructor="flows.Chain([ElementwiseAffine(3), Permutation([2, 0, 1]), "
               "AffineCoupling(half_mask(3), [5], context_dim=2, activation='tanh', bound=3.0)])",
               variant={"children": "'0', '1', '2' applied in order x -> z", "coupling": AFFINE})


# -- flows (the builders) ---------------------------------------------------------------------------
def _flow_case(name, labels, summary, build_flow, constructor, variant):
    @register_case(f"flows.{name}", "flow", labels, summary, batch=5)
    def build(rng, dtype, n):
        data, ctx = rng.standard_normal((30, 3)) * [2.0, 0.5, 1.0] + 1.0, rng.standard_normal((30, 2)) * 3
        flow = build_flow(rng, data, ctx)
        randomize_parameters(flow, rng=rng, scale=0.3)
        flow = _cast(flow, dtype)
        x, c = draw((n, 3), dtype, scale=1.5, rng=rng), draw((n, 2), dtype, scale=2.0, rng=rng)
        w = draw((n,), dtype, rng=rng)
        flow.zero_grad()
        lp, d_x, d_c = flow.log_prob_and_grad(x, c, weights=w)
        z_in = draw((n, 3), dtype, scale=0.8, rng=rng)
        x_inv, ld_inv = flow.inverse(z_in, c)
        def evaluate(params, inputs):
            flow.load_state_dict(params)
            return float(np.sum(w * flow.log_prob(inputs["x"], inputs["context"])))
        buffers = {**flow.buffer_dict(), **named_masks(flow),
                   "context_mean": np.asarray(flow.context_mean), "context_std": np.asarray(flow.context_std)}
        return Record(params=flow.state_dict(), buffers=buffers,
                      inputs={"x": x, "context": c, "z": z_in}, cotangents={"log_prob": w},
                      outputs={"log_prob": lp, "inverse.x": x_inv, "inverse.log_det": ld_inv},
                      grad_inputs={"x": d_x, "context": d_c}, grad_params=param_grads(flow),
                      objective="sum(cotangent.log_prob * output.log_prob) (output.inverse.* at "
                                "input.z; log_det of the inverse x -> z map)",
                      constructor=constructor, variant=variant, evaluate=evaluate)


_FLOW_COMMON = {"base": "standard normal N(0, I)", "log_prob": "log N(f(x); 0, I) + log_det",
                "context": "(context - buffer.context_mean) / buffer.context_std before every "
                           "conditional bijector", "children": "bijectors '0', '1', ... in order x -> z; "
                "'0' is Standardize(data) (buffers 0.mean, 0.std)"}
_flow_case("realnvp", ["FLOW.1", "FLOW.2", "FLOW.3", "FLOW.5", "FLOW.9", "FLOW.19", "FLOW.4"],
           "realnvp(3, 3, [6], context_dim=2, actnorm=True) with standardisation",
           lambda rng, d, c: F.realnvp(3, 3, [6], rng=rng, context_dim=2, activation="tanh",
                                       actnorm=True, standardize=d, standardize_context=c),
           "flows.realnvp(3, 3, [6], context_dim=2, activation='tanh', actnorm=True, "
           "standardize=data, standardize_context=context_data)",
           {**_FLOW_COMMON, "coupling": {**AFFINE, "bound": 3.0}})
_flow_case("maf", ["FLOW.1", "FLOW.2", "FLOW.12", "FLOW.14", "FLOW.17", "FLOW.4"],
           "maf(3, 3, [7], context_dim=2, permutation='random')",
           lambda rng, d, c: F.maf(3, 3, [7], rng=rng, context_dim=2, activation="tanh",
                                   permutation="random", standardize=d, standardize_context=c),
           "flows.maf(3, 3, [7], context_dim=2, activation='tanh', permutation='random', "
           "standardize=data, standardize_context=context_data)",
           {**_FLOW_COMMON, "maf": {**MAF_VARIANT, "bound": 3.0}})
_flow_case("maf.iaf", ["FLOW.1", "FLOW.15", "FLOW.16", "FLOW.4"],
           "maf(..., inverse_autoregressive=True): IAF layers",
           lambda rng, d, c: F.maf(3, 2, [6], rng=rng, context_dim=2, activation="tanh",
                                   inverse_autoregressive=True, standardize=d, standardize_context=c),
           "flows.maf(3, 2, [6], context_dim=2, activation='tanh', inverse_autoregressive=True, "
           "standardize=data, standardize_context=context_data)",
           {**_FLOW_COMMON, "iaf": {**MAF_VARIANT, "bound": 3.0}})
_flow_case("spline_flow", ["FLOW.1", "FLOW.2", "SPL.12", "SPL.13", "FLOW.4"],
           "spline_flow(3, 2, [6], context_dim=2, n_bins=4, bound=3)",
           lambda rng, d, c: F.spline_flow(3, 2, [6], rng=rng, context_dim=2, n_bins=4, bound=3.0,
                                           activation="tanh", standardize=d, standardize_context=c),
           "flows.spline_flow(3, 2, [6], context_dim=2, n_bins=4, bound=3.0, activation='tanh', "
           "standardize=data, standardize_context=context_data)",
           {**_FLOW_COMMON, "spline": {"n_bins": 4, "tail_bound": 3.0, "min_width": 1e-3,
                                       "min_height": 1e-3, "min_derivative": 1e-3}})

from nprefgen.testing import golden_models  # noqa: E402,F401  (registers the model cases)
