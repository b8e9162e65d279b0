import numpy as np
import scipy.sparse as sp
import torch

from wetloop.campaign import Budget, CampaignSpec, Intervention, Objective, Proposal, Variable
from wetloop.planners import ScreenPlanner, bernoulli_information_gain, greedy_diverse
from wetloop.worldmodel import ScreenEnsembleModel


class FakeWorld:
    def __init__(self, probs, network):
        self.version, self.network = "fake", network
        self.genes = tuple(f"G{i}" for i in range(probs.shape[1]))
        self.gene_index = {g: i for i, g in enumerate(self.genes)}
        self._probs = probs

    def botorch_model(self):
        return ScreenEnsembleModel(self._probs)


def _spec(batch=3):
    return CampaignSpec(name="s", question="q", world="crispr_screen", objective=Objective(readout="hit"),
                        interventions=(Variable(name="gene", kind="categorical"),), budget=Budget(rounds=1, batch=batch))


def test_information_gain_is_zero_when_members_agree():
    assert float(bernoulli_information_gain(torch.full((4,), 0.3))) < 1e-6
    assert float(bernoulli_information_gain(torch.tensor([0.0, 1.0]))) > 0.6


def test_rank_picks_best_untested_and_keeps_hypotheses():
    probs = torch.tensor([[0.9, 0.8, 0.1, 0.7, 0.2]] * 4)
    world = FakeWorld(probs, sp.csr_matrix((5, 5), dtype=np.float32))
    prop = Proposal(intervention=Intervention(values={"gene": "G3"}), hypothesis_id="H1")
    history = [(Intervention(values={"gene": "G0"}), None)]
    ranking = ScreenPlanner(_spec()).rank([prop], world, history, 1)
    picked = [r.proposal.intervention.values["gene"] for r in ranking.selected]
    assert picked == ["G1", "G3", "G4"] and ranking.selected[1].proposal.hypothesis_id == "H1"


def test_diversity_damps_neighbours():
    net = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32))
    assert list(greedy_diverse(np.array([1.0, 0.9, 0.8]), np.arange(3), net, 2, 0.5)) == [0, 2]
