"""Golden files through PyTorch: a representative set of cases, read with the numpy-only reader,
loaded into equivalent torch modules by state_dict name, recomputed with torch.autograd and
compared with compare_golden at <= 1e-10 relative in float64 (the full torch and JAX suite is
tests/oracle/). Skipped cleanly without torch."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.testing.golden import export_case
from nprefgen.testing.golden_reader import compare_golden, load_golden

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
tnn = torch.nn


def _golden(name, tmp_path, **kw):
    path = tmp_path / f"{name}.npz"
    export_case(name, path, **kw)
    return path, load_golden(path)


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _check(path, theirs, rtol=None):
    result = compare_golden(path, theirs, rtol=rtol)
    assert result["ok"], result["rows"]
    return result


def _module_case(name, module, tmp_path, dtype="float64"):
    """A layer case: load params by state_dict name, y = module(x), objective sum(cot * y)."""
    path, g = _golden(name, tmp_path, seed=2, dtype=dtype)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    module = module.to(tdtype)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in g["params"].items()})
    x = _t(g["inputs"]["x"], grad=True)
    y = module(x)
    (y * _t(g["cotangents"]["y"])).sum().backward()
    theirs = {"output.y": y.detach().numpy(), "grad.input.x": x.grad.numpy(),
              **{f"grad.param.{k}": p.grad.numpy() for k, p in module.named_parameters()}}
    assert set(theirs) == {k for k in g["arrays"] if k.startswith(("output.", "grad."))}
    return _check(path, theirs)


def test_mlp_round_trips_through_torch(tmp_path):
    torch_mlp = lambda: tnn.Sequential(tnn.Linear(3, 5), tnn.Softplus(), tnn.Linear(5, 4),  # noqa: E731
                                       tnn.Softplus(), tnn.Linear(4, 2))
    result = _module_case("nn.MLP", torch_mlp(), tmp_path)
    assert max(r["rel_error"] for r in result["rows"]) <= 1e-10
    # float32: the same file format at the float32 default tolerance
    result = _module_case("nn.MLP", torch_mlp(), tmp_path, dtype="float32")
    assert result["rtol"] == 1e-4


def test_conv_layers_round_trip_through_torch(tmp_path):
    _module_case("nn.Conv2d", tnn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)), tmp_path)
    _module_case("nn.ConvTranspose2d", tnn.ConvTranspose2d(2, 3, 3, stride=2, padding=1,
                                                           output_padding=1), tmp_path)


class TorchAffineCoupling(tnn.Module):
    """A RealNVP coupling as a PyTorch user writes it, reading the golden file's conventions:
    mask 1 = conditioning, conditioner on [x_A, context] -> [raw_s, t], s = b tanh(raw_s / b)."""

    def __init__(self, mask, context_dim, hidden, bound):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask))
        d_a, d_b = int(mask.sum()), int((1 - mask).sum())
        self.net = tnn.Sequential(tnn.Linear(d_a + context_dim, hidden), tnn.Tanh(),
                                  tnn.Linear(hidden, 2 * d_b))
        self.bound, self.a, self.b = bound, np.flatnonzero(mask == 1), np.flatnonzero(mask == 0)

    def _st(self, x_a, c):
        h = self.net(torch.cat([x_a, c], dim=1))
        raw, t = h.chunk(2, dim=1)
        return self.bound * torch.tanh(raw / self.bound), t

    def forward(self, x, c):
        s, t = self._st(x[:, self.a], c)
        z = x.clone()
        z[:, self.b] = x[:, self.b] * torch.exp(s) + t
        return z, s.sum(dim=1)

    def inverse(self, z, c):
        s, t = self._st(z[:, self.a], c)
        x = z.clone()
        x[:, self.b] = (z[:, self.b] - t) * torch.exp(-s)
        return x, -s.sum(dim=1)


def test_affine_coupling_round_trips_through_torch(tmp_path):
    path, g = _golden("flows.AffineCoupling", tmp_path, seed=4)
    b = g["buffers"]
    coupling = TorchAffineCoupling(b["mask"], g["inputs"]["context"].shape[1],
                                   g["params"]["net.0.bias"].shape[0],
                                   g["meta"]["variant"]["bound"]).double()
    coupling.load_state_dict({**{k: torch.from_numpy(v) for k, v in g["params"].items()},
                              "mask": torch.from_numpy(b["mask"])})
    x, c = _t(g["inputs"]["x"], True), _t(g["inputs"]["context"], True)
    z, log_det = coupling(x, c)
    ((z * _t(g["cotangents"]["z"])).sum() + (log_det * _t(g["cotangents"]["log_det"])).sum()).backward()
    with torch.no_grad():
        x_inv, ld_inv = coupling.inverse(_t(g["inputs"]["z"]), c)
    theirs = {"output.z": z, "output.log_det": log_det, "output.inverse.x": x_inv,
              "output.inverse.log_det": ld_inv, "grad.input.x": x.grad, "grad.input.context": c.grad,
              **{f"grad.param.{k}": p.grad for k, p in coupling.named_parameters()}}
    result = _check(path, {k: v.detach().numpy() for k, v in theirs.items()})
    assert not result["missing"]


def test_gmm_gradients_match_torch(tmp_path):
    """(GMM.18): autograd through a Cholesky log-density gives the recorded (symmetric) gradients."""
    path, g = _golden("models.GaussianMixture", tmp_path, seed=1)
    p = g["params"]
    w, m, cov = _t(p["weights"], True), _t(p["means"], True), _t(p["covariances"], True)
    x = _t(g["inputs"]["x"], True)
    L = torch.linalg.cholesky(cov)                                  # (K, d, d)
    diff = (x[:, None, :] - m[None]).unsqueeze(-1)                  # (n, K, d, 1)
    sol = torch.linalg.solve_triangular(L[None], diff, upper=False).squeeze(-1)
    log_n = (-0.5 * (sol ** 2).sum(-1) - torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
             - 0.5 * x.shape[1] * np.log(2 * np.pi))
    log_p = torch.logsumexp(torch.log(w) + log_n, dim=1)
    loss = -log_p.mean()
    loss.backward()
    _check(path, {"output.log_prob": log_p.detach().numpy(), "output.loss": loss.detach().numpy(),
                  "grad.input.x": x.grad.numpy(), "grad.param.weights": w.grad.numpy(),
                  "grad.param.means": m.grad.numpy(), "grad.param.covariances": cov.grad.numpy()})


def test_vae_elbo_with_fixed_eps_matches_torch(tmp_path):
    path, g = _golden("models.VAE", tmp_path, seed=3)
    nets = {k: _t(v, True) for k, v in g["params"].items()}

    def mlp(prefix, h):
        h = torch.tanh(h @ nets[f"{prefix}.0.weight"].T + nets[f"{prefix}.0.bias"])
        return h @ nets[f"{prefix}.2.weight"].T + nets[f"{prefix}.2.bias"]
    x, eps = _t(g["inputs"]["x"], True), _t(g["inputs"]["eps"])
    mu, log_var = mlp("encoder", x).chunk(2, dim=1)
    a = mlp("decoder", mu + torch.exp(0.5 * log_var) * eps)
    log_lik = (x * a - tnn.functional.softplus(a)).sum(1)
    kl = 0.5 * (mu ** 2 + torch.expm1(log_var) - log_var).sum(1)
    elbo = log_lik - kl
    loss = -elbo.mean()
    loss.backward()
    _check(path, {"output.elbo": elbo.detach().numpy(), "output.loss": loss.detach().numpy(),
                  "grad.input.x": x.grad.numpy(),
                  **{f"grad.param.{k}": t.grad.numpy() for k, t in nets.items()}})


def test_a_wrong_torch_implementation_is_caught(tmp_path):
    """The planted bug: a torch coupling with an unbounded scale against the bounded golden file."""
    path, g = _golden("flows.AffineCoupling", tmp_path, seed=4)
    coupling = TorchAffineCoupling(g["buffers"]["mask"], 2, 6, bound=1e6).double()  # ~unbounded
    coupling.load_state_dict({**{k: torch.from_numpy(v) for k, v in g["params"].items()},
                              "mask": torch.from_numpy(g["buffers"]["mask"])})
    with torch.no_grad():
        z, log_det = coupling(_t(g["inputs"]["x"]), _t(g["inputs"]["context"]))
    result = compare_golden(path, {"output.z": z.numpy(), "output.log_det": log_det.numpy()})
    assert not result["ok"]
    assert all(not r["ok"] for r in result["rows"])
