"""The screen model's learner and its rank gate on synthetic screens (no data files needed).

A synthetic library of 1,500 genes in 150 random gene sets; the hits are the members of a few sets
(they cluster in the sets, as real hits cluster in pathways). Each round tests 100 genes at random.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import norm

from wetloop.campaign import Intervention, Observation
from wetloop.worlds.crispr_screen import ScreenFeatures, ScreenModelConfig, ScreenWorldModel
from wetloop.worlds.crispr_screen._bench import screen_spec
from wetloop.worlds.crispr_screen._model import paired_auroc_difference

N, SETS, ROUND = 1500, 150, 100


def _screen(seed=0, prior_knows=False):
    """(features, hits (N,) bool). With `prior_knows` the network degree (the prior) ranks the hits first
    and the hits are spread over the sets; else the degree is noise and the hits are whole sets."""
    rng = np.random.default_rng(seed)
    members = sp.lil_matrix((N, SETS), dtype=np.float32)
    for s in range(SETS):
        members[rng.choice(N, rng.integers(15, 30), replace=False), s] = 1.0
    members = members.tocsr()
    if prior_knows:
        degree = rng.normal(size=N)
        hits = degree > np.quantile(degree, 0.92)
    else:
        hits = np.asarray(members[:, :5].sum(1)).ravel() > 0
        degree = rng.normal(size=N)
    static = np.stack([degree, np.ones(N)], axis=1).astype(np.float32)
    features = ScreenFeatures(
        genes=tuple(f"G{i}" for i in range(N)),
        static=static,
        prior=np.zeros(N),
        network=sp.csr_matrix((N, N), dtype=np.float32),
        members=members,
        set_sim=np.full(SETS, -1.0),
        set_names=np.array([f"SET_{s}" for s in range(SETS)]),
    )
    return features, hits


def _history(features, hits, rounds, shuffle=False, seed=1):
    """`rounds` rounds of ROUND random genes; with `shuffle` the answers are permuted within each round
    (the lab's negative control)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(N)
    out = []
    for r in range(rounds):
        genes = order[r * ROUND : (r + 1) * ROUND]
        shown = rng.permutation(genes) if shuffle else genes
        out += [
            (
                Intervention(values={"gene": features.genes[g]}),
                Observation(experiment_key=f"{r}-{g}", status="ok", readouts={"hit": float(hits[s]), "score": 0.0}),
            )
            for g, s in zip(genes, shown)
        ]
    return out


def _model(features, **config):
    return ScreenWorldModel(screen_spec("synthetic", None, 5, ROUND, 0), config=ScreenModelConfig(**config), features=features)


def _auroc(y, x):
    return 0.5 + paired_auroc_difference(y, x, np.zeros_like(x))[0]


def test_set_propagation_scores_genes_that_share_sets_with_hits():
    features, hits = _screen()
    tested = np.zeros(N, bool)
    tested[:300] = True
    spread = features.set_propagation(tested[None].astype(float), hits.astype(float))
    assert spread.shape == (1, N)
    untested = ~tested
    assert _auroc(hits[untested], spread[0, untested]) > 0.8  # shared sets carry the hits to untested genes
    # no results: no evidence either way
    assert np.allclose(features.set_propagation(np.zeros((1, N)), hits.astype(float)), 0.0)


def test_score_propagation_carries_the_genes_short_of_the_hit_threshold():
    """A screen returns a score for every gene. Members of the first five sets score higher (either sign);
    only the top 2% by |score| are called hits, so 300 tested genes hold a few hits but many strong
    non-hits. Propagating the |score| ranks through the sets, or through a network that links the sets'
    genes, finds their untested genes better than the hits alone, and the learner's weights put that
    into the ranking."""
    features, in_sets = _screen()
    rng = np.random.default_rng(4)
    inside = np.flatnonzero(in_sets)
    edges = [(a, b) for a, b in rng.choice(inside, (3 * len(inside), 2)) if a != b]  # the sets' genes linked
    edges += [(a, b) for a, b in rng.choice(N, (3 * N, 2)) if a != b]  # and random links everywhere
    a, b = np.array(edges).T
    network = sp.csr_matrix((np.ones(2 * len(a), np.float32), (np.r_[a, b], np.r_[b, a])), shape=(N, N))
    features.network = (network > 0).astype(np.float32).tocsr()
    score = rng.choice([-1.0, 1.0], N) * (1.5 * in_sets + np.abs(rng.normal(size=N)))
    hits = np.abs(score) >= np.quantile(np.abs(score), 0.98)
    tested = np.zeros(N, bool)
    tested[rng.choice(N, 300, replace=False)] = True
    weight = tested[None].astype(float)
    by_sets, by_network = features.score_propagation(weight, np.where(tested, score, 0.0))
    spread = features.set_propagation(weight, (hits & tested).astype(float))
    untested = ~tested
    assert by_sets.shape == by_network.shape == (1, N)
    assert all(np.allclose(x, 0.0) for x in features.score_propagation(np.zeros((1, N)), score))
    hits_only = _auroc(in_sets[untested], spread[0, untested])
    assert _auroc(in_sets[untested], by_sets[0, untested]) > max(0.85, hits_only + 0.05)
    assert _auroc(in_sets[untested], by_network[0, untested]) > max(0.75, hits_only + 0.05)
    # the scores' signs do not matter, only their size
    unsigned = features.score_propagation(weight, np.where(tested, np.abs(score), 0.0))
    assert np.allclose(unsigned[0], by_sets) and np.allclose(unsigned[1], by_network)

    history = [
        (
            Intervention(values={"gene": features.genes[g]}),
            Observation(experiment_key=str(g), status="ok", readouts={"hit": float(hits[g]), "score": float(score[g])}),
        )
        for g in np.flatnonzero(tested)
    ]
    auc = {}
    for weights in ((0.0, 0.0), (0.5, 0.0), (0.0, 1.0)):
        model = _model(features, gate="none", score_weight=weights[0], network_weight=weights[1])
        model.fit(history)
        auc[weights] = _auroc(in_sets[untested], model.probs.mean(0).numpy()[untested])
    assert auc[(0.5, 0.0)] > auc[(0.0, 0.0)] + 0.02 and auc[(0.0, 1.0)] > auc[(0.0, 0.0)] + 0.02


def test_paired_auroc_difference_matches_the_direct_count_and_has_a_variance():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.2).astype(float)
    a, b = y + rng.normal(size=200), rng.normal(size=200)
    d, var = paired_auroc_difference(y, a, b)
    pos, neg = y > 0, y == 0
    direct = lambda s: np.mean(s[pos][:, None] > s[neg][None, :])  # noqa: E731
    assert d == pytest.approx(direct(a) - direct(b)) and d > 0.2
    assert 0 < var < 0.01
    assert paired_auroc_difference(y, a, a) == (0.0, 0.0)


def test_rank_gate_opens_when_the_results_cluster_in_sets_the_learner_uses():
    features, hits = _screen()
    model = _model(features)
    report = model.fit(_history(features, hits, 4))
    assert report.gate == "rank" and report.evidence > 4 and report.learned_weight > 0.99
    assert report.learned_weight == pytest.approx(norm.cdf(report.evidence - model.config.gate_offset))
    untested = np.ones(N, bool)
    untested[[model.gene_index[x.values["gene"]] for x, _ in _history(features, hits, 4)]] = False
    learned = model.probs.mean(0).numpy()
    assert _auroc(hits[untested], learned[untested]) > 0.75  # and the blend ranks the untested hits first


def test_rank_gate_stays_undecided_under_shuffled_feedback_and_closes_when_the_prior_ranks_better():
    features, hits = _screen()
    real = _model(features).fit(_history(features, hits, 4))
    shuffled = _model(features).fit(_history(features, hits, 4, shuffle=True))
    # answers permuted within each round: no ranking can beat chance on them, so no evidence either way,
    # and the default offset keeps the learned members at a small weight
    assert abs(shuffled.evidence) < 2 and shuffled.learned_weight < 0.5 < 0.99 < real.learned_weight
    # the prior (degree) ranks these hits and the sets carry none: the learned ranking is worse, the gate
    # falls to the prior
    features, hits = _screen(prior_knows=True)
    report = _model(features).fit(_history(features, hits, 4))
    assert report.evidence < -2 and report.learned_weight < 0.05


def test_rank_gate_offset_and_no_evidence_before_a_round_can_be_scored():
    features, hits = _screen()
    first = _model(features).fit(_history(features, hits, 1))  # one round: nothing to replay yet
    assert first.evidence == 0.0 and first.learned_weight == pytest.approx(norm.cdf(-1.0))  # the default offset, 1
    even = _model(features, gate_offset=0.0).fit(_history(features, hits, 1))
    assert even.learned_weight == 0.5


def test_likelihood_gate_rewards_matching_the_base_rate_where_the_rank_gate_does_not():
    """The failure the rank gate fixes: on a low-hit-rate screen with shuffled feedback, a learner that only
    learns the base rate beats an overconfident prior on likelihood, not on ranking."""
    features, hits = _screen()
    rng = np.random.default_rng(3)
    sparse_hits = hits & (rng.random(N) < 0.15)  # ~1% hits; the prior assumes 5%
    history = _history(features, sparse_hits, 8, shuffle=True)
    mlp = dict(learner="mlp", members=4, epochs=100)
    likelihood = _model(features, gate="likelihood", **mlp).fit(history)
    rank = _model(features, gate="rank", **mlp).fit(history)
    assert likelihood.learned_weight > 0.95
    assert abs(rank.evidence) < 2 and rank.learned_weight < 0.95


def test_the_round_summary_names_the_gate_and_its_evidence():
    from wetloop.worlds.crispr_screen import ScreenWorld

    features, hits = _screen()
    history = _history(features, hits, 3)
    rank = ScreenWorld().fit_summary(_model(features).fit(history))
    assert "rank evidence z = +" in rank and "weight of the learned members against the prior 1.00" in rank
    likelihood = ScreenWorld().fit_summary(_model(features, gate="likelihood").fit(history))
    assert "nats" in likelihood and "rank evidence" not in likelihood
    assert "evidence" not in ScreenWorld().fit_summary(_model(features, gate="none").fit(history))
