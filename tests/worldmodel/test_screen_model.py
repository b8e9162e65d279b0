import numpy as np
import torch

from tests.screen_data import data_env, needs_data  # noqa: F401
from wetloop.campaign import Intervention, Observation
from wetloop.worlds.crispr_screen import GeneKnowledge, ScreenModelConfig, ScreenWorldModel, load_screen
from wetloop.worlds.crispr_screen._bench import screen_spec

pytestmark = needs_data


def test_knowledge_loads_fast_from_cache(data_env):
    import time

    GeneKnowledge.load()
    t0 = time.perf_counter()
    know = GeneKnowledge.load()
    assert time.perf_counter() - t0 < 1.0
    assert know.network.shape[0] == len(know.symbols) > 15000 and (know.network != know.network.T).nnz == 0


def test_fit_and_botorch_shapes(data_env):
    spec = screen_spec("IFNG", None, 2, 64, 0)
    screen, model = load_screen("IFNG"), ScreenWorldModel(spec)
    rng = np.random.default_rng(0)
    genes = list(rng.choice(screen.genes, 150, replace=False)) + sorted(screen.hits)[:20]
    hist = [
        (
            Intervention(values={"gene": g}),
            Observation(experiment_key=g, status="ok", readouts={"hit": float(g in screen.hits), "score": 0.0}),
        )
        for g in genes
    ]
    report = model.fit(hist)
    assert model.fitted and report.n_hits >= 20
    X = model.encode([Intervention(values={"gene": g}) for g in screen.genes[:5]])
    post = model.botorch_model().posterior(X.unsqueeze(0))
    assert post.values.shape == (1, model.config.members, 5, 1)
    assert torch.all((post.values >= 0) & (post.values <= 1))


def test_prior_does_not_depend_on_library_order(data_env):
    """Genes the knowledge cannot tell apart share one prior, so reordering the library changes nothing
    (stable argsort ranks once broke ties by alphabetical position)."""
    spec = screen_spec("IFNG", None, 2, 64, 0)
    model = ScreenWorldModel(spec)
    f = model.features
    order = np.random.default_rng(1).permutation(len(f.genes))
    screen = load_screen("IFNG")
    task = f"{screen.task} {screen.measurement}"
    shuffled = ScreenWorldModel(spec, features=type(f).build(GeneKnowledge.load(), tuple(f.genes[i] for i in order), task))
    assert np.allclose(shuffled.prior_probability(), model.prior_probability()[order], atol=1e-7)
    no_text = f.prior == 0
    assert no_text.sum() > 10_000  # most genes carry no text prior ...
    deg = f.static[:, 0]
    same = no_text & (deg == np.median(deg[no_text]))
    assert same.sum() > 1 and np.ptp(model.prior_probability()[same]) == 0  # ... and equal knowledge, equal prior


def test_prior_adds_the_task_text_match_to_the_degree(data_env):
    """The prior ranks by rank(degree) + text_weight * rank(text match): among genes of equal degree the
    better-matched gene ranks higher; text_weight 0 is the degree alone; the best-matched tenth of the
    genes moves up the ranking."""
    from scipy.stats import spearmanr

    spec = screen_spec("IFNG", None, 2, 64, 0)
    model = ScreenWorldModel(spec)
    f = model.features
    degree_only = ScreenWorldModel(spec, ScreenModelConfig(text_weight=0), features=f)
    deg = f.static[:, 0]
    assert spearmanr(degree_only.prior_rank(), deg).statistic > 0.999
    rank = model.prior_rank()
    assert model.config.text_weight == 0.5 and np.allclose(model.prior_probability(), 0.1 * rank, atol=1e-7)
    level = np.median(deg[f.prior > 0])
    same = np.flatnonzero(deg == level)
    matched, unmatched = same[f.prior[same] > 0], same[f.prior[same] == 0]
    assert len(matched) and len(unmatched) and rank[matched].min() > rank[unmatched].max()
    top = f.prior >= np.quantile(f.prior[f.prior > 0], 0.9)
    assert rank[top].mean() > degree_only.prior_rank()[top].mean() + 0.05


def test_core_essential_genes_are_left_out_unless_the_spec_asks_for_them(data_env):
    import pytest

    from wetloop.campaign import SpecError
    from wetloop.worlds.crispr_screen import load_essentials

    spec = screen_spec("IFNG", None, 2, 64, 0)
    essential = load_essentials()
    model = ScreenWorldModel(spec)
    is_essential = np.array([g in essential for g in model.genes])
    assert 500 < is_essential.sum() < 800 and np.array_equal(model.selectable, ~is_essential)
    opts = spec.world_options
    assert ScreenWorldModel(spec.with_overrides(world_options={**opts, "exclude_core_essential": False})).selectable.all()
    with pytest.raises(SpecError, match="exclude_core_essential must be true or false"):
        _ = ScreenWorldModel(spec.with_overrides(world_options={**opts, "exclude_core_essential": "no"})).selectable


def _results(genes, hits):
    return [
        (
            Intervention(values={"gene": g}),
            Observation(experiment_key=g, status="ok", readouts={"hit": float(g in hits), "score": 0.0}),
        )
        for g in genes
    ]


def test_likelihood_gate_trusts_the_learned_members_as_far_as_their_evidence_goes(data_env):
    """Gate "likelihood" (the earlier rule), MLP members: results the prior gets wrong and the features
    explain (the hits are the least-connected genes): the prequential log-likelihood ratio favours the
    learned members and the blend follows it."""
    spec = screen_spec("IFNG", None, 3, 60, 0)
    model = ScreenWorldModel(spec, config=ScreenModelConfig(learner="mlp", gate="likelihood"))
    degree = model.features.static[:, 0]
    rng = np.random.default_rng(0)
    genes = [model.genes[i] for i in rng.choice(len(model.genes), 180, replace=False)]
    low = set(np.array(model.genes)[degree <= np.quantile(degree, 0.1)])
    first = model.fit(_results(genes[:60], low))
    assert first.evidence == 0.0 and first.learned_weight == 0.5  # one round: nothing to score yet
    report = model.fit(_results(genes, low))
    assert report.gate == "likelihood" and report.evidence > 5
    assert report.learned_weight == 1 / (1 + np.exp(-report.evidence))
    p, prior = model.probs.mean(0).numpy(), model.prior_probability()
    lowest = degree <= np.quantile(degree, 0.05)
    assert p[lowest].mean() > 3 * prior[lowest].mean()  # the blend moved to where the results point
    unblended = ScreenWorldModel(spec, config=ScreenModelConfig(learner="mlp", gate="none"))
    assert unblended.fit(_results(genes, low)).learned_weight == 1.0


def test_embedding_in_chunks_reports_progress_and_matches_one_pass() -> None:
    """A first knowledge build embeds ~15,000 gene-set names (minutes): it shows progress chunk by chunk,
    and the chunked embeddings are the one-pass ones."""
    from wetloop.worlds.crispr_screen._text import embed_texts

    texts = [f"regulation of process {i} in t cells" for i in range(130)]
    done: list[int] = []
    chunked = embed_texts(texts, on_progress=done.append, chunk=50)
    assert done == [50, 50, 30]
    whole = embed_texts(texts, chunk=1000)
    assert chunked.shape == whole.shape == (130, whole.shape[1])
    np.testing.assert_allclose(chunked.astype(np.float32), whole.astype(np.float32), atol=2e-3)
