import numpy as np
import torch

from wetloop.campaign import Budget, CampaignSpec, Intervention, Objective, Proposal, Variable
from wetloop.worlds.crispr_screen import (
    ScreenEnsembleModel,
    ScreenPlanner,
    ScreenPlannerConfig,
    bernoulli_information_gain,
    thompson_batch,
)


class FakeWorld:
    def __init__(self, probs, selectable=None):
        self.version = "fake"
        self.genes = tuple(f"G{i}" for i in range(probs.shape[1]))
        self.gene_index = {g: i for i, g in enumerate(self.genes)}
        self.selectable = np.ones(len(self.genes), bool) if selectable is None else np.asarray(selectable)
        self._probs = probs

    def botorch_model(self):
        return ScreenEnsembleModel(self._probs)


def _spec(batch=3):
    return CampaignSpec(
        name="s",
        question="q",
        world="crispr_screen",
        objective=Objective(readout="hit"),
        interventions=(Variable(name="gene", kind="categorical"),),
        budget=Budget(rounds=1, batch=batch),
    )


def test_information_gain_is_zero_when_members_agree():
    assert float(bernoulli_information_gain(torch.full((4,), 0.3))) < 1e-6
    assert float(bernoulli_information_gain(torch.tensor([0.0, 1.0]))) > 0.6


def test_rank_picks_best_untested_and_keeps_hypotheses():
    probs = torch.tensor([[0.9, 0.8, 0.1, 0.7, 0.2]] * 4)
    world = FakeWorld(probs)
    prop = Proposal(intervention=Intervention(values={"gene": "G3"}), hypothesis_id="H1")
    history = [(Intervention(values={"gene": "G0"}), None)]
    ranking = ScreenPlanner(_spec()).rank([prop], world, history, 1)
    picked = [r.proposal.intervention.values["gene"] for r in ranking.selected]
    assert picked == ["G1", "G3", "G4"] and ranking.selected[1].proposal.hypothesis_id == "H1"


def test_agreeing_members_give_the_top_q():
    values = np.tile(np.array([[0.1], [0.9], [0.5], [0.7]]), (1, 4))
    assert list(thompson_batch(values, 3)) == [1, 3, 2]


def test_thompson_batch_takes_each_members_best_in_turn():
    # member 0 believes in genes 0 and 1, member 1 in genes 2 and 3: the batch alternates between them
    values = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.5, 0.5]])
    assert list(thompson_batch(values, 4)) == [0, 2, 1, 3]
    # a member whose best is already taken moves on to its next one; never a duplicate, never more than b
    same_best = np.array([[0.9, 0.9], [0.1, 0.8], [0.8, 0.1]])
    assert list(thompson_batch(same_best, 5)) == [0, 1, 2]


def test_genes_that_are_not_selectable_are_never_offered():
    probs = torch.tensor([[0.9, 0.8, 0.1, 0.7, 0.2]] * 4)
    world = FakeWorld(probs, selectable=[False, True, True, False, True])
    prop = Proposal(intervention=Intervention(values={"gene": "G0"}), hypothesis_id="H1")
    ranking = ScreenPlanner(_spec()).rank([prop], world, [], 1)
    assert [r.proposal.intervention.values["gene"] for r in ranking.selected] == ["G1", "G4", "G2"]
    assert all(r.proposal.intervention.values["gene"] not in ("G0", "G3") for r in ranking.ranked)


def test_the_screen_planner_has_its_own_settings(monkeypatch):
    """`WETLOOP_SCREENPLANNER_*` (not the generic planner's) set it; the world builds it with them."""
    from wetloop.campaign import get_world
    from wetloop.planners import PlannerConfig

    assert (ScreenPlannerConfig().ig_weight, ScreenPlannerConfig().keep_top) == (0.05, 300)
    monkeypatch.setenv("WETLOOP_SCREENPLANNER_KEEP_TOP", "1")
    planner = get_world("crispr_screen").make_planner(_spec(batch=2), PlannerConfig(ig_weight=3.0))
    assert planner.config == ScreenPlannerConfig(keep_top=1) and planner.config.ig_weight == 0.05
    ranking = planner.rank([], FakeWorld(torch.tensor([[0.9, 0.8, 0.1, 0.7, 0.2]] * 4)), [], 1)
    assert len(ranking.ranked) == 3 and "the top 1 others" in ranking.note
