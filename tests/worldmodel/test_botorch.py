"""The BoTorch view: EnsembleModel contract, posterior shapes, member-major samples, common noise."""

from __future__ import annotations

import torch
from botorch.models.ensemble import EnsembleModel
from botorch.posteriors.ensemble import EnsemblePosterior

from .conftest import regimen


def test_forward_and_posterior_shapes(fitted):
    model = fitted.botorch_model()
    assert isinstance(model, EnsembleModel)
    assert (model.members, model.particles, len(model.times_min)) == (5, 8, 97)
    assert model.num_outputs == 97 and model.times_min[1] == 15.0
    X = torch.rand(3, 4, 2, dtype=torch.float64)  # batch 3, n 4, d 2
    out = model(X)
    assert out.shape == (3, 40, 4, 97) and out.dtype == torch.float64
    post = model.posterior(X)
    assert isinstance(post, EnsemblePosterior)
    assert post.mean.shape == (3, 4, 97) and post.mixture_mean.shape == (4, 97)
    assert torch.allclose(post.mean, out.mean(dim=1))
    assert torch.allclose(post.mixture_mean, out.mean(dim=(0, 1)))
    assert post.rsample(torch.Size([6])).shape == (6, 3, 4, 97)
    assert model(torch.rand(0, 2, dtype=torch.float64)).shape == (40, 0, 97)  # nothing to simulate


def test_samples_start_at_the_observed_initial_glucose(fitted, train_data):
    out = fitted.botorch_model()(torch.rand(2, 2, dtype=torch.float64))
    start = torch.tensor([obs.trajectory.series["glucose"][0] for _, obs in train_data])
    assert torch.allclose(out[:, :, 0].mean(), start.mean().double(), rtol=0.02)
    assert ((out >= 10.0) & (out <= 600.0)).all()  # clamped to the physical range


def test_samples_are_member_major(fitted):
    model = fitted.botorch_model()
    X = fitted.encode([regimen(0.6, 20.0)])
    before = model(X)  # (S, 1, T)
    saved = model.ensemble.head.bias.detach().clone()
    with torch.no_grad():
        model.ensemble.head.bias[1, 0, 0] += 3.0  # member 1 now predicts a fast rise each step
    after = model(X)
    with torch.no_grad():
        model.ensemble.head.bias.copy_(saved)  # the fitted fixture is shared: leave it as found
    changed = (after - before).abs().amax(dim=(1, 2)) > 1.0
    p = model.particles
    assert changed.tolist() == [p <= s < 2 * p for s in range(model.samples)]


def test_samples_of_a_candidate_do_not_depend_on_its_batch(fitted):
    model = fitted.botorch_model()
    a = fitted.encode([regimen(0.6, 20.0)])
    b = fitted.encode([regimen(0.3, 40.0), regimen(1.0, 10.0), regimen(0.6, 20.0)])
    assert torch.allclose(model(a)[:, 0], model(b)[:, 2], atol=1e-4)
    assert torch.equal(model(b), model(b))


def test_the_menu_just_rolled_out_is_not_rolled_out_again(fitted):
    """The loop's simulate step and the planner ask for the same menu: one rollout serves both."""
    model = fitted.botorch_model()
    assert fitted.botorch_model() is model
    calls = []
    original = model._simulate
    model._simulate = lambda X: calls.append(len(X)) or original(X)
    X = torch.rand(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    first = model.posterior(X.unsqueeze(-2)).values  # as the simulate node asks: (n, 1, d)
    again = model.posterior(X).values  # as the planner's menu asks: (n, d)
    assert calls == [6]
    assert torch.equal(first[:, :, 0, :].transpose(0, 1), again)
    model.posterior(X[:3])
    assert calls == [6, 3]
    del model._simulate
