import pytest

from tests.screen_data import data_env, needs_data  # noqa: F401
from wetloop.campaign import Experiment, Intervention
from wetloop.lab_adapters import ExperimentRejected, WorldOptionError, make_lab, wait_for
from wetloop.worlds.crispr_screen._bench import screen_spec

pytestmark = needs_data


def _exp(gene, rnd=1):
    return Experiment(campaign_id="c", round=rnd, intervention=Intervention(values={"gene": gene}), approved_by="test")


def test_reveals_score_and_hit_only_and_is_idempotent(data_env):
    lab = make_lab(screen_spec("IFNG", None, 1, 4, 0))
    t1, t2 = lab.submit(_exp("ZAP70")), lab.submit(_exp("ZAP70"))
    obs = wait_for(lab, [t1])[0]
    assert t1 == t2 and lab.runs[t1.experiment_key] == 1
    assert set(obs.readouts) == {"score", "hit"} and obs.readouts["hit"] == 1.0
    with pytest.raises(ExperimentRejected):
        lab.submit(_exp("NOT_A_GENE"))


def test_shuffle_permutes_answers_within_what_was_tested(data_env):
    genes = ["ZAP70", "VAV1", "CD3G", "A1BG", "A1CF", "AAAS", "AACS", "AADAT"]
    answers = {}
    for shuffle in (False, True):
        lab = make_lab(screen_spec("IFNG", None, 1, 8, 0, shuffle))
        answers[shuffle] = [o.readouts["score"] for o in wait_for(lab, [lab.submit(_exp(g)) for g in genes])]
    assert sorted(answers[True]) == sorted(answers[False]) and answers[True] != answers[False]


def test_missing_screen_option():
    spec = screen_spec("IFNG", None, 1, 1, 0).with_overrides(world_options={})
    with pytest.raises(WorldOptionError, match="screen"):
        make_lab(spec)


def test_a_restarted_lab_answers_the_tickets_of_the_one_before(data_env):
    """The lab keeps nothing on disk: after a kill, a resumed campaign polls tickets of a lab that is gone
    (the world conformance test caught this as UnknownTicket after SIGKILL mid-observe)."""
    from wetloop.campaign import Ticket
    from wetloop.lab_adapters import UnknownTicket

    spec = screen_spec("IFNG", None, 1, 4, 0)
    first = make_lab(spec)
    ticket = first.submit(_exp("ZAP70"))
    again = make_lab(spec)
    obs = wait_for(again, [ticket])[0]
    assert obs.experiment_key == ticket.experiment_key and obs.readouts["hit"] == 1.0
    with pytest.raises(UnknownTicket):
        again.poll(Ticket(experiment_key="k", lab="crispr_screen", lab_ref="crispr_screen:OTHER:ZAP70"))
