"""The pure-torch vectorised ensemble: shapes, member diversity, learning, determinism."""

from __future__ import annotations

import torch

from wetloop.worldmodel import GaussianEnsemble, train_ensemble


def _clean(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(3 * x[:, :1]) + 0.5 * x[:, 1:]


def _toy(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """y = sin(3 x0) + 0.5 x1 + noise whose sd is 0.05 for x0 < 0 and 0.25 above. Shapes x (n, 2), y (n, 1)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g) * 2 - 1
    noise = (0.05 + 0.2 * (x[:, :1] > 0)) * torch.randn(n, 1, generator=g)
    return x, _clean(x) + noise


def test_forward_shapes_and_vectorised_members_differ():
    ens = GaussianEnsemble(members=5, d_in=7, d_out=2, hidden=16, layers=2, seed=0)
    assert ens.hidden[0].weight.shape == (5, 7, 16)
    x = torch.randn(1, 11, 7).expand(5, -1, -1)  # the same rows for every member
    mean, logvar = ens(x)
    assert mean.shape == logvar.shape == (5, 11, 2)
    spread = mean.std(dim=0).mean()
    assert spread > 1e-3, "members with their own init must disagree on the same input"


def test_logvar_stays_within_soft_bounds():
    ens = GaussianEnsemble(members=3, d_in=2, d_out=1, hidden=8, layers=1, seed=0)
    with torch.no_grad():
        ens.head.bias.fill_(1e3)  # push the raw log-variance far above the upper bound
    _, logvar = ens(torch.randn(3, 5, 2))
    assert (logvar <= ens.max_logvar + 1e-3).all()
    with torch.no_grad():
        ens.head.bias.fill_(-1e3)
    _, logvar = ens(torch.randn(3, 5, 2))
    assert (logvar >= ens.min_logvar - 1e-3).all()


def test_training_reduces_nll_and_learns_the_function():
    x, y = _toy()
    ens = GaussianEnsemble(members=5, d_in=2, d_out=1, hidden=32, layers=2, seed=1)
    record = train_ensemble(ens, x, y, epochs=5, min_steps=300, batch_size=64, lr=1e-2, seed=1)
    assert record.steps >= 300 and record.epochs * 7 == record.steps  # 400 rows / 64 -> 7 steps per epoch
    assert record.losses[-1] < record.losses[0] - 0.5
    xt, yt = _toy(200, seed=9)
    with torch.no_grad():
        mean, logvar = ens(ens.standardise_x(xt).expand(5, -1, -1))
    pred = mean.mean(0) * ens.y_std + ens.y_mean
    assert (pred - _clean(xt)).pow(2).mean().sqrt() < 0.15 * yt.std()
    noisy = xt[:, 0] > 0.2
    quiet = xt[:, 0] < -0.2
    assert logvar.mean(0)[noisy].mean() > logvar.mean(0)[quiet].mean() + 1.0, "noise level must be learned"


def test_members_train_on_their_own_bootstrap():
    x, y = _toy()
    ens = GaussianEnsemble(members=4, d_in=2, d_out=1, hidden=16, layers=2, seed=0)
    train_ensemble(ens, x, y, epochs=2, min_steps=100, seed=0)
    with torch.no_grad():
        mean, _ = ens(ens.standardise_x(x).expand(4, -1, -1))
    assert mean.std(0).mean() > 1e-3


def test_training_is_deterministic_given_the_seed():
    x, y = _toy()

    def fitted(seed: int) -> GaussianEnsemble:
        ens = GaussianEnsemble(members=3, d_in=2, d_out=1, hidden=16, layers=2, seed=seed)
        train_ensemble(ens, x, y, epochs=2, min_steps=40, seed=seed)
        return ens

    a, b, c = fitted(4), fitted(4), fitted(5)
    assert torch.equal(a.head.weight, b.head.weight)
    assert not torch.equal(a.head.weight, c.head.weight)
