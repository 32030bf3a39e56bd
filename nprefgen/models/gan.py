"""Generative adversarial networks with hand-written gradients (derivations/gan.md, GAN.1-GAN.12).

A generator G maps noise z ~ N(0, I) to samples; a discriminator D maps a sample to a logit a,
D(x) = sigmoid(a). They are trained in alternation: D on the binary cross-entropy between real and
generated batches (GAN.3, GAN.4), G on the non-saturating loss -log D(G(z)) (GAN.5), whose
gradient reaches G *through* D (GAN.6)::

    gan = mlp_gan(2, latent_dim=2, rng=0)
    gan.fit(X, rng=0, steps=5000)                  # X: (n, 2)
    x_new = gan.sample(1000, rng=1)                # (1000, 2)
    captured, quality = mode_coverage(x_new, means, sigma)   # (GAN.14)

The same discriminator object is applied to the real and the generated batch of one step: each
``forward`` returns its own cache and each ``backward`` adds into D's grads, so the two passes sum
as the chain rule asks (derivations/nn.md, "No per-call state"). The generator's step also runs
D's backward (to get dL/dx); the parameter gradients that pass leaves in D are zeroed before
D's next step and never reach D's optimizer.

The pure loss functions are :func:`discriminator_loss` and :func:`generator_loss`; the
:class:`GAN` class holds the two networks, the alternating loop with ``n_critic`` D steps per G
step, optional instance noise (GAN.7) and divergence detection (a non-finite loss or gradient
stops training with the last finite parameters kept).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.models._conv import check_two_stage_conv, conv_decoder_layers, conv_encoder_layers
from nprefgen.kernels.softplus import softplus, softplus_grad
from nprefgen.models.gan_r1 import check_r1_discriminator, r1_penalty_and_grad
from nprefgen.nn import MLP, Adam, Linear, Module, load_npz, save_npz
from nprefgen.nn.io import META_PREFIX, read_npz
from nprefgen.nn.minibatch_std import MinibatchStd
from nprefgen.nn.spectral_power import BinnedLogPower, Branches
from nprefgen.nn.train import show_progress


# --------------------------------------------------------------------------------------------
# The losses, pure functions on logits
# --------------------------------------------------------------------------------------------
def discriminator_loss(a_real: np.ndarray, a_fake: np.ndarray):
    """(GAN.3) L_D = mean softplus(-a_real) + mean softplus(a_fake), minus the value of the game
    (GAN.1) as a function of D: the binary cross-entropy
    with label 1 for real and 0 for generated samples, from logits; (GAN.4) its gradients
    dL/da_real = -sigmoid(-a_real) / n, dL/da_fake = sigmoid(a_fake) / m.

    a_real: (n, 1), a_fake: (m, 1) -> (loss, d_real: (n, 1), d_fake: (m, 1))
    """
    a_real = check_array(a_real, "a_real", ndim=2)
    a_fake = check_array(a_fake, "a_fake", ndim=2)
    n, m = a_real.shape[0], a_fake.shape[0]
    loss = float(np.mean(softplus(-a_real)) + np.mean(softplus(a_fake)))
    return loss, -softplus_grad(-a_real) / n, softplus_grad(a_fake) / m


def generator_loss(a_fake: np.ndarray):
    """(GAN.5) the non-saturating generator loss L_G = mean softplus(-a_fake) = -mean log D(G(z)),
    and dL/da_fake = -sigmoid(-a_fake) / m. a_fake: (m, 1) -> (loss, d_fake: (m, 1))"""
    a_fake = check_array(a_fake, "a_fake", ndim=2)
    m = a_fake.shape[0]
    return float(np.mean(softplus(-a_fake))), -softplus_grad(-a_fake) / m


def mode_coverage(samples, means, sigma: float, min_share: float = 0.0):
    """(GAN.14) the mode-coverage metric of Srivastava et al. (2017) and Metz et al. (2017).

    A sample is *high quality* when it lies within 3 sigma of its nearest mode; a mode is
    *captured* when at least one high-quality sample (or a share ``min_share`` of the samples)
    is assigned to it. samples: (n, 2), means: (K, 2) ->
    (modes captured: int, share of high-quality samples: float, counts per mode: (K,))
    """
    x = check_array(samples, "samples", ndim=2)
    mu = check_array(means, "means", shape=(None, x.shape[1]))
    sigma = check_scalar(sigma, "sigma", low=0.0, low_inclusive=False)
    min_share = check_scalar(min_share, "min_share", low=0.0, high=1.0)
    d2 = np.sum((x[:, None, :] - mu[None, :, :]) ** 2, axis=2)        # (n, K)
    nearest = np.argmin(d2, axis=1)
    good = np.sqrt(d2[np.arange(len(x)), nearest]) <= 3.0 * sigma
    counts = np.bincount(nearest[good], minlength=mu.shape[0])
    captured = int(np.sum(counts >= max(1.0, min_share * len(x))))
    return captured, float(np.mean(good)), counts


class TrainingDivergedError(RuntimeError):
    """A GAN loss or gradient became non-finite; the last finite parameters were kept."""


class _Networks(Module):
    """Parameter holder: children ``generator`` and ``discriminator`` (for save/load)."""

    def __init__(self, generator: Module, discriminator: Module) -> None:
        super().__init__()
        self.add_child("generator", generator)
        self.add_child("discriminator", discriminator)


class GAN:
    """Generator (n, latent_dim) -> (n, data_dim) and discriminator (n, data_dim) -> (n, 1) logits.

    Parameters
    ----------
    generator, discriminator : nprefgen.nn.Module
    latent_dim, data_dim : sizes of z and x
    """

    def __init__(self, generator: Module, discriminator: Module, *, latent_dim: int,
                 data_dim: int) -> None:
        for name, net in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(net, Module):
                raise ValueError(f"{name}: expected an nprefgen.nn.Module, "
                                 f"got {type(net).__name__}")
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim = check_int(latent_dim, "latent_dim", low=1)
        self.data_dim = check_int(data_dim, "data_dim", low=1)
        self.nets = _Networks(generator, discriminator)
        self.history_: dict = {}

    def _check_x(self, x, name: str = "x") -> np.ndarray:
        return check_array(x, name, shape=(None, self.data_dim), dtype=np.float64)

    def _check_z(self, z, name: str = "z") -> np.ndarray:
        return check_array(z, name, shape=(None, self.latent_dim), dtype=np.float64)

    # -- one step's gradients ----------------------------------------------------------------
    def discriminator_loss_and_grad(self, x_real, z, noise_real=None, noise_fake=None,
                                    r1_gamma: float = 0.0) -> float:
        """(GAN.3), (GAN.4) D's loss on a real batch x_real: (n, D) and the batch G(z), z: (m, d);
        adds dL_D/dtheta_D into D's grads (G is not differentiated). ``noise_*``: instance
        noise (GAN.7) added to D's inputs, shaped like them, or None. ``r1_gamma`` > 0 adds the
        R1 penalty (GAN.9) on the real batch (as D sees it) to the loss and its double-backward
        gradient (GAN.11), (GAN.12) to D's grads; MLP and conv discriminators (gan_r1.LINEAR_LAYERS)."""
        x_real = self._check_x(x_real, "x_real")
        x_fake = self.generator.forward(self._check_z(z))[0]
        if noise_real is not None:
            x_real = x_real + check_array(noise_real, "noise_real", shape=x_real.shape)
        if noise_fake is not None:
            x_fake = x_fake + check_array(noise_fake, "noise_fake", shape=x_fake.shape)
        a_real, c_real = self.discriminator.forward(x_real)      # one D object, two calls
        a_fake, c_fake = self.discriminator.forward(x_fake)
        loss, d_real, d_fake = discriminator_loss(a_real, a_fake)
        self.discriminator.backward(c_real, d_real)                # both add into D's grads
        self.discriminator.backward(c_fake, d_fake)
        if r1_gamma > 0:
            loss += r1_penalty_and_grad(self.discriminator, c_real, r1_gamma)[0]   # (GAN.9)
        return loss

    def generator_loss_and_grad(self, z, noise=None) -> tuple[float, np.ndarray]:
        """(GAN.5), (GAN.6) G's non-saturating loss at z: (m, d); adds dL_G/dtheta_G into G's
        grads and returns (loss, d_z). The backward through D is needed for dL/dx only: the
        parameter gradients it adds to D are zeroed here, so D's grads are left as they were."""
        z = self._check_z(z)
        saved = [g.copy() for _, g in self.discriminator.parameters()]
        x_fake, c_gen = self.generator.forward(z)
        x_in = x_fake if noise is None else x_fake + check_array(noise, "noise", shape=x_fake.shape)
        a_fake, c_dis = self.discriminator.forward(x_in)
        loss, d_a = generator_loss(a_fake)
        d_x = self.discriminator.backward(c_dis, d_a)              # (GAN.6) dL/dx through D
        for (_, g), s in zip(self.discriminator.parameters(), saved):
            g[...] = s                                             # D's grads untouched
        d_z = self.generator.backward(c_gen, d_x)
        return loss, d_z

    # -- sampling ----------------------------------------------------------------------------
    def sample(self, n: int, *, rng=None) -> np.ndarray:
        """x = G(z), z ~ N(0, I): (n, data_dim)."""
        n = check_int(n, "n", low=1)
        return self.generator.forward(check_rng(rng).standard_normal((n, self.latent_dim)))[0]

    def discriminate(self, x) -> np.ndarray:
        """D's logits a(x): (n, data_dim) -> (n,); D(x) = sigmoid(a). At the optimum of (GAN.3)
        the logit is the log density ratio log p_data(x) - log p_g(x) (GAN.2)."""
        return self.discriminator.forward(self._check_x(x))[0][:, 0]

    # -- training ----------------------------------------------------------------------------
    def fit(self, x, *, rng=None, steps: int = 5000, batch_size: int = 256, lr: float = 2e-4,
            betas=(0.5, 0.999), n_critic: int = 1, instance_noise: float = 0.0,
            r1_gamma: float = 0.0, ema: float | None = None, lr_decay: float = 0.0,
            on_divergence: str = "raise",
            progress: bool | None = None, callback=None) -> "GAN":
        """Alternating Adam updates: ``n_critic`` D steps (GAN.3) per G step (GAN.5).

        x: (n, data_dim) real data. Defaults are DCGAN's (Radford et al. 2016): Adam with lr 2e-4,
        beta1 0.5. ``instance_noise`` s > 0 adds N(0, s_t^2 I) to every D input, s_t annealed
        linearly from s to 0 over the steps (GAN.7). ``r1_gamma`` > 0 adds the R1 gradient
        penalty (gamma/2) E_real ||grad_x a||^2 to D's loss (GAN.9), hand-differentiated twice
        (GAN.10)-(GAN.12); for Sequential discriminators of the layers in
        gan_r1.LINEAR_LAYERS (Linear, Conv2d, ConvTranspose2d, Flatten, Reshape) and tabled
        activations (ValueError otherwise); 0 (the default) leaves training exactly as
        without it (Mescheder et al. 2018 use gamma ~ 0.1-10). ``callback(step, gan)`` runs
        after every G step (e.g. to record samples). ``ema`` = beta in (0, 1) keeps an exponential moving
        average of the generator's parameters (GAN.8) and copies it into the generator at the
        end (the averaged generator is the one evaluated; callbacks see the raw one).
        ``lr_decay`` = f in [0, 1]: over the last f of the steps both learning rates fall
        linearly towards 0 (GAN.18), so the players settle instead of stopping mid-orbit. A
        non-finite loss or gradient stops training, keeps
        the last finite parameters and raises :class:`TrainingDivergedError` (``on_divergence=
        "warn"``: a RuntimeWarning instead). Sets ``history_ = {"d_loss": [...], "g_loss":
        [...]}`` (one entry per G step, D's loss the mean over its n_critic steps); returns self.
        """
        x = self._check_x(x)
        rng = check_rng(rng)
        steps = check_int(steps, "steps", low=1)
        batch_size = check_int(batch_size, "batch_size", low=1)
        n_critic = check_int(n_critic, "n_critic", low=1)
        instance_noise = check_scalar(instance_noise, "instance_noise", low=0.0)
        r1_gamma = check_scalar(r1_gamma, "r1_gamma", low=0.0)
        if r1_gamma > 0:
            check_r1_discriminator(self.discriminator)
        if ema is not None:
            ema = check_scalar(ema, "ema", low=0.0, high=1.0, low_inclusive=False,
                               high_inclusive=False)
        lr_decay = check_scalar(lr_decay, "lr_decay", low=0.0, high=1.0)
        decay_start = int((1.0 - lr_decay) * steps)
        if on_divergence not in ("raise", "warn"):
            raise ValueError(f"on_divergence: expected 'raise' or 'warn', got {on_divergence!r}")
        opt_d = Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        opt_g = Adam(self.generator.parameters(), lr=lr, betas=betas)
        params = self.nets.parameters()
        hist = {"d_loss": [], "g_loss": []}
        bar = None
        if progress or show_progress(progress):          # True forces a bar; None: auto
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, desc="gan", leave=False)
        n, m = x.shape[0], min(batch_size, x.shape[0])
        g_params = [p for p, _ in self.generator.parameters()]
        averaged = [p.copy() for p in g_params] if ema is not None else None
        for step in range(steps):
            s = instance_noise * (1.0 - step / steps)
            if step >= decay_start:                                 # (GAN.18)
                opt_d.lr = opt_g.lr = lr * (steps - step) / (steps - decay_start)
            last = [p.copy() for p, _ in params]
            d_total = 0.0
            for _ in range(n_critic):
                xb = x[rng.integers(0, n, m)]
                z = rng.standard_normal((m, self.latent_dim))
                nr = s * rng.standard_normal(xb.shape) if s > 0 else None
                nf = s * rng.standard_normal(xb.shape) if s > 0 else None
                self.nets.zero_grad()
                d_loss = self.discriminator_loss_and_grad(xb, z, nr, nf, r1_gamma)
                if not self._finite(d_loss, self.discriminator):
                    return self._diverged(last, step, "discriminator", d_loss, hist, on_divergence)
                opt_d.step()
                d_total += d_loss
            z = rng.standard_normal((m, self.latent_dim))
            self.nets.zero_grad()
            g_loss, _ = self.generator_loss_and_grad(
                z, s * rng.standard_normal((m, self.data_dim)) if s > 0 else None)
            if not self._finite(g_loss, self.generator):
                return self._diverged(last, step, "generator", g_loss, hist, on_divergence)
            opt_g.step()
            if averaged is not None:
                for a, p in zip(averaged, g_params):
                    a *= ema                                        # (GAN.8)
                    a += (1.0 - ema) * p
            hist["d_loss"].append(d_total / n_critic)
            hist["g_loss"].append(g_loss)
            if callback is not None:
                callback(step, self)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if averaged is not None:
            for a, p in zip(averaged, g_params):
                p[...] = a
        self.nets.zero_grad()
        self.history_ = hist
        return self

    @staticmethod
    def _finite(loss: float, net: Module) -> bool:
        return bool(np.isfinite(loss)) and all(np.all(np.isfinite(g)) for _, g in net.parameters())

    def _diverged(self, last, step, who, loss, hist, on_divergence) -> "GAN":
        for (p, _), s in zip(self.nets.parameters(), last):
            p[...] = s
        self.nets.zero_grad()
        self.history_ = hist
        msg = (f"GAN training diverged at step {step}: the {who} loss or gradient is not finite "
               f"(loss {loss}); the parameters from before that step were kept. Try a smaller "
               f"lr or instance noise.")
        if on_divergence == "raise":
            raise TrainingDivergedError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        return self

    # -- files -------------------------------------------------------------------------------
    def _layer_kinds(self) -> str:
        """The class names of every module of both networks, depth first, comma-separated: what
        parameter names and shapes do not record (``conv_gan(padding="circular")`` has the
        zero-padded pair's parameters exactly; activations have none)."""
        return ",".join(type(m).__name__ for m in self.nets.modules())

    def save(self, path) -> None:
        """Both networks' parameters to ``.npz`` (no pickle), with the layer kinds
        (:meth:`load` checks them)."""
        save_npz(path, self.nets, meta={"latent_dim": np.array(self.latent_dim),
                                        "data_dim": np.array(self.data_dim),
                                        "layers": np.array(self._layer_kinds())})

    def load(self, path) -> "GAN":
        """Load parameters saved by :meth:`save` into this (identically built) GAN. A file whose
        networks were built of other layer kinds (e.g. ``conv_gan`` with another ``padding``
        or ``d_spectrum``, or another activation) is refused with a ValueError naming ``path``
        and both layer lists, before any parameter is compared or set; files written before
        the layer kinds were recorded are checked by parameter names and shapes only."""
        saved = read_npz(path, keys=[META_PREFIX + "layers"]).get(META_PREFIX + "layers")
        if saved is not None:
            saved, own = str(np.asarray(saved)), self._layer_kinds()
            if saved != own:
                raise ValueError(f"path: {os.fspath(path)!r} holds a GAN built of other layers "
                                 f"(conv_gan's padding=, d_spectrum=, activation must match): "
                                 f"the file's are [{saved}], this GAN's are [{own}]")
        load_npz(path, self.nets)
        return self


def mlp_gan(data_dim: int, latent_dim: int = 2, hidden=(128, 128), *, rng=None,
            activation: str = "leaky_relu") -> GAN:
    """MLP generator ``d -> hidden -> D`` (linear output) and MLP discriminator
    ``D -> hidden -> 1`` (a logit)."""
    rng = check_rng(rng)
    data_dim = check_int(data_dim, "data_dim", low=1)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    hidden = [check_int(h, "hidden", low=1) for h in hidden]
    gen = MLP(latent_dim, hidden, data_dim, rng=rng, activation=activation)
    dis = MLP(data_dim, hidden, 1, rng=rng, activation=activation)
    return GAN(gen, dis, latent_dim=latent_dim, data_dim=data_dim)


def conv_gan(image_shape, latent_dim: int = 16, channels=(32, 16), *, rng=None,
             activation: str = "leaky_relu", out_activation: str | None = None,
             minibatch_std: bool = False, d_hidden: int | None = None,
             padding: str = "zeros", d_spectrum: int | None = None) -> GAN:
    """A small DCGAN-style pair for ``(c, h, w)`` images, h and w divisible by 4; data are flat
    ``(n, c h w)`` rows.

    Generator: Linear(d, c1 h/4 w/4) -> act -> Reshape -> ConvTranspose2d(c1, c2, 3, stride 2,
    padding 1, output_padding 1) -> act -> ConvTranspose2d(c2, c) -> [out_activation] -> Flatten.
    Discriminator: Reshape -> Conv2d(c, c2, 3, stride 2, padding 1) -> act -> Conv2d(c2, c1)
    -> act -> Flatten -> Linear(c1 h/4 w/4, 1). ``minibatch_std``: put a
    :class:`nprefgen.nn.minibatch_std.MinibatchStd` feature (GAN.16) before D's Flatten, so the
    final Linear also sees the batch's spread ((c1 + 1) h/4 w/4 inputs; not with R1).
    ``d_hidden``: D's head becomes Linear(c1 h/4 w/4, d_hidden) -> act -> Linear(d_hidden, 1)
    instead of one Linear. With one Linear, D's logit is a *sum* of features of (7 x 7)-pixel
    patches (GAN.15), blind to correlations between distant patches (the largest scales of a field).
    ``padding``: "zeros" (the default) or "circular": every convolution of both networks treats
    the image as periodic (GAN.19, GAN.20; for fields on a periodic box), same weights; not with
    R1.
    ``d_spectrum`` = B: D's head also takes the per-sample log band power of the input in B
    log-spaced |k| shells (:class:`nprefgen.nn.spectral_power.BinnedLogPower`, GAN.21-GAN.22),
    computed beside the convolutions (one-channel square images only): D = Branches(convolutions
    -> Flatten, BinnedLogPower) -> Linear((c1 + minibatch_std) h/4 w/4 + B, ...) -> head;
    not with R1.
    """
    from nprefgen.nn import Flatten, Sequential
    from nprefgen.nn.activations import ACTIVATIONS

    rng = check_rng(rng)
    c, h, w, c1, c2 = check_two_stage_conv(image_shape, channels)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    act = ACTIVATIONS[check_choice(activation, "activation", ACTIVATIONS)]
    circular = check_choice(padding, "padding", ("zeros", "circular")) == "circular"
    # the generator widens from c1 to c2 channels, the discriminator narrows back: the shared
    # two-stage layers with the channel pair reversed
    g_layers = conv_decoder_layers(latent_dim, (c, h, w), (c2, c1), act, rng=rng,
                                   circular=circular)
    if out_activation is not None:
        g_layers.append(ACTIVATIONS[check_choice(out_activation, "out_activation", ACTIVATIONS)]())
    gen = Sequential(*g_layers, Flatten())
    if not isinstance(minibatch_std, bool):
        raise ValueError(f"minibatch_std: expected True or False, got {minibatch_std!r}")
    if d_hidden is not None:
        d_hidden = check_int(d_hidden, "d_hidden", low=1)
    d_out = 1 if d_hidden is None else d_hidden
    if d_spectrum is not None:
        d_spectrum = check_int(d_spectrum, "d_spectrum", low=1)
        if c != 1 or h != w:
            raise ValueError(f"image_shape: d_spectrum needs one-channel square images, "
                             f"got {(c, h, w)}")
        spectrum = BinnedLogPower(h, d_spectrum)               # checks the shells are not empty
    d_layers = conv_encoder_layers((c, h, w), (c2, c1), d_out, act, rng=rng,
                                   extra_channels=int(minibatch_std), circular=circular,
                                   extra_features=d_spectrum or 0)
    if minibatch_std:
        d_layers.insert(-2, MinibatchStd())                    # before Flatten -> Linear
    if d_spectrum is not None:                                 # (GAN.21) beside the convolutions
        d_layers = [Branches(Sequential(*d_layers[:-1]), spectrum), d_layers[-1]]
    if d_hidden is not None:
        d_layers += [act(), Linear(d_hidden, 1, rng=rng)]
    dis = Sequential(*d_layers)
    return GAN(gen, dis, latent_dim=latent_dim, data_dim=c * h * w)
