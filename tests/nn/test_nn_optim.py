"""SGD with momentum (NN.15), Adam (NN.16) and gradient-norm clipping (NN.17): hand-computed
steps and, when torch is importable, torch.optim trajectories to 1e-12."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.nn import MLP, SGD, Adam, clip_grad_norm

A = np.array([[2.0, 0.5], [0.5, 1.0]])
C = np.array([0.3, -1.2])


def _quadratic_grad(p):
    """Gradient of 1/2 p^T A p + c^T p, so the trajectory depends on every update."""
    return A @ p + C


def test_sgd_momentum_hand_steps():
    """(NN.15) three steps written out: v1 = d1, v_t = mu v_{t-1} + d_t, p_t = p_{t-1} - lr v_t."""
    p, g = np.array([1.0, -2.0]), np.zeros(2)
    lr, mu, wd = 0.1, 0.9, 0.01
    opt = SGD([(p, g)], lr=lr, momentum=mu, weight_decay=wd)
    grads = [np.array([0.5, -1.0]), np.array([0.2, 0.4]), np.array([-0.3, 0.1])]
    q, v = np.array([1.0, -2.0]), None
    for t, gt in enumerate(grads):
        g[...] = gt
        opt.step()
        d = gt + wd * q
        v = d if t == 0 else mu * v + d
        q = q - lr * v
        np.testing.assert_allclose(p, q, rtol=1e-15)
    # the first step by hand: d = (0.51, -1.02); p = (1 - 0.051, -2 + 0.102)
    np.testing.assert_allclose(_sgd_first_step(), [0.949, -1.898], rtol=1e-15)


def _sgd_first_step():
    p, g = np.array([1.0, -2.0]), np.array([0.5, -1.0])
    SGD([(p, g)], lr=0.1, momentum=0.9, weight_decay=0.01).step()
    return p


def test_adam_hand_steps():
    """(NN.16) the first step of Adam moves each coordinate by lr * g/(|g| + eps/...) ~ lr sign(g);
    the second step checked against the written-out formula."""
    p, g = np.array([1.0, -2.0, 0.5]), np.zeros(3)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt = Adam([(p, g)], lr=lr, betas=(b1, b2), eps=eps)
    g1, g2 = np.array([0.5, -3.0, 1e-3]), np.array([0.1, 1.0, -2e-3])
    g[...] = g1
    opt.step()
    # m1/(1-b1) = g1 and v1/(1-b2) = g1^2: the step is lr * g1 / (|g1| + eps)
    np.testing.assert_allclose(p, [1.0 - lr * 0.5 / (0.5 + eps), -2.0 + lr * 3.0 / (3.0 + eps),
                                   0.5 - lr * 1e-3 / (1e-3 + eps)], rtol=1e-15)
    g[...] = g2
    opt.step()
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1 ** 2 + (1 - b2) * g2 ** 2
    p1 = np.array([1.0, -2.0, 0.5]) - lr * g1 / (np.abs(g1) + eps)
    expect = p1 - lr * (m / (1 - b1 ** 2)) / (np.sqrt(v / (1 - b2 ** 2)) + eps)
    np.testing.assert_allclose(p, expect, rtol=1e-14)
    assert opt.t == 2


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["sgd", "sgd_momentum", "adam", "adam_wd"])
def test_optimizers_against_torch(kind):
    """(NN.15) SGD(momentum, weight decay) and (NN.16) Adam follow torch.optim's trajectory on a
    quadratic to 1e-12 over 25 steps, float64."""
    torch = pytest.importorskip("torch")
    p0 = np.array([1.5, -0.7])
    cfg = {"sgd": (SGD, torch.optim.SGD, dict(lr=0.1)),
           "sgd_momentum": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.1)),
           "adam": (Adam, torch.optim.Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-8)),
           "adam_wd": (Adam, torch.optim.Adam, dict(lr=0.02, weight_decay=0.05))}[kind]
    ours_cls, theirs_cls, kw = cfg
    p, g = p0.copy(), np.zeros(2)
    opt = ours_cls([(p, g)], **kw)
    tp = torch.tensor(p0.copy(), requires_grad=True)
    topt = theirs_cls([tp], **kw)
    for _ in range(25):
        g[...] = _quadratic_grad(p)
        opt.step()
        topt.zero_grad()
        tp.grad = torch.from_numpy(_quadratic_grad(tp.detach().numpy().copy()))
        topt.step()
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert np.linalg.norm(p - p0) > 0.1        # it actually moved


def test_clip_grad_norm():
    """(NN.17) the global norm over all parameters; scaled to max_norm only when above it."""
    g1, g2 = np.array([3.0, 0.0]), np.array([[0.0], [4.0]])
    params = [(np.zeros(2), g1), (np.zeros((2, 1)), g2)]
    assert clip_grad_norm(params, 10.0) == pytest.approx(5.0, rel=1e-15)
    np.testing.assert_array_equal(g1, [3.0, 0.0])                    # below max_norm: untouched
    assert clip_grad_norm(params, 1.0) == pytest.approx(5.0, rel=1e-15)
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(g1, [3.0 * coef, 0.0], rtol=1e-15)
    np.testing.assert_allclose(g2, [[0.0], [4.0 * coef]], rtol=1e-15)
    total = np.sqrt(np.sum(g1 ** 2) + np.sum(g2 ** 2))
    assert total == pytest.approx(1.0, rel=1e-6)


@pytest.mark.torch
def test_clip_grad_norm_against_torch(rng):
    """(NN.17) equals torch.nn.utils.clip_grad_norm_ on an MLP's gradients (norm and result)."""
    torch = pytest.importorskip("torch")
    net = MLP(3, [4], 2, rng=rng)
    for _, _, g in net.named_parameters():
        g[...] = rng.standard_normal(g.shape)
    tparams = []
    for _, p, g in net.named_parameters():
        tp = torch.tensor(p.copy(), requires_grad=True)
        tp.grad = torch.tensor(g.copy())
        tparams.append(tp)
    for max_norm in (100.0, 0.5):
        ours = clip_grad_norm(net.parameters(), max_norm)
        theirs = torch.nn.utils.clip_grad_norm_(tparams, max_norm).item()
        assert ours == pytest.approx(theirs, rel=1e-13)
        for (_, g), tp in zip(net.parameters(), tparams):
            np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-13)


def test_bad_hyperparameters_raise():
    pg = [(np.zeros(2), np.zeros(2))]
    with pytest.raises(ValueError, match="lr"):
        SGD(pg, lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        SGD(pg, momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        Adam(pg, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        Adam(pg, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="betas"):
        Adam(pg, betas=(0.9,))
    with pytest.raises(ValueError, match="eps"):
        Adam(pg, eps=0.0)
    with pytest.raises(ValueError, match="params"):
        Adam([])
    with pytest.raises(ValueError, match="params"):
        SGD([(np.zeros(2), np.zeros(3))])
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(pg, 0.0)
    with pytest.raises(ValueError, match="params: expected finite gradients"):
        clip_grad_norm([(np.zeros(1), np.array([np.inf]))], 1.0)
