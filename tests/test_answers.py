"""Calibrated probabilities and the unfamiliar-photo check: the math on known cases, then a trained
model file (the tiny LeNet-5) whose stored temperature and threshold are recomputed from its
validation photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from catdog_gui.core.inference import calibration as C
from catdog_gui.core.inference import unfamiliar as U

# ------------------------------------------------------------------------------------------------
# calibration


def _overconfident(n=4000, k=2, true_t=2.5, seed=0):
    """Logits whose labels were drawn from softmax(logits / true_t): the right temperature is true_t."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4, (n, k))
    p = C.softmax(z, true_t)
    y = np.array([rng.choice(k, p=row) for row in p])
    return z, y


def test_fit_temperature_recovers_the_temperature_the_labels_came_from():
    z, y = _overconfident()
    t = C.fit_temperature(z, y)
    assert t == pytest.approx(2.5, rel=0.1)
    assert C.nll(z, y, t) < C.nll(z, y, 1.0)


def test_ece_of_a_hand_made_case():
    # 4 photos at confidence 0.9 (bin 0.9-1.0), 3 right: |0.75 - 0.9| = 0.15; 2 photos at 0.6, both
    # right: |1 - 0.6| = 0.4 -> (4 * 0.15 + 2 * 0.4) / 6
    probs = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 2)
    y = np.array([0, 0, 0, 1, 0, 0])
    assert C.ece(probs, y) == pytest.approx((4 * 0.15 + 2 * 0.4) / 6)
    bins = C.reliability(probs, y)
    assert [b.count for b in bins] == [0] * 6 + [2, 0, 0, 4]
    assert bins[9].accuracy == pytest.approx(0.75) and bins[9].confidence == pytest.approx(0.9)


def test_calibration_lowers_the_ece_of_overconfident_logits():
    z, y = _overconfident()
    cal = C.calibrate(z, y)
    assert cal.ece_before > 0.05
    assert cal.ece_after < cal.ece_before / 2
    assert cal.temperature == pytest.approx(C.fit_temperature(z, y))


def test_cross_fitted_probabilities_never_use_the_photos_own_label():
    """Each photo is scored with a temperature fitted on the other fold: flipping the labels of one
    fold changes nothing in that fold's calibrated probabilities (and it would, were they fitted
    on the photos they score)."""
    z, y = _overconfident(600)
    fold = C.folds(len(y))
    probs, _ = C.cross_fitted_probs(z, y)
    flipped = y.copy()
    flipped[fold == 0] = 1 - flipped[fold == 0]
    probs2, _ = C.cross_fitted_probs(z, flipped)
    np.testing.assert_allclose(probs2[fold == 0], probs[fold == 0])
    assert not np.allclose(probs2[fold == 1], probs[fold == 1])


def test_calibration_metadata_round_trip_and_bad_metadata():
    z, y = _overconfident(300)
    cal = C.calibrate(z, y)
    back = C.Calibration.from_meta(cal.to_meta())
    assert back == cal
    assert C.Calibration.from_meta(None) is None
    assert C.Calibration.from_meta({"temperature": -1}) is None
    assert C.Calibration.from_meta({"temperature": "x"}) is None


# ------------------------------------------------------------------------------------------------
# unfamiliarity scores


def _clusters(n=600, d=12, seed=0):
    """Two classes with an anisotropic shared covariance (one direction with almost no spread)."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(3.0, 0.05, d)
    y = rng.integers(0, 2, n)
    means = np.zeros((2, d))
    means[0, 1] = means[1, 0] = 8.0
    return means[y] + rng.normal(size=(n, d)) * scale, y, means, scale


def test_mahalanobis_score_equals_the_exact_distance_when_every_direction_is_kept():
    x, y, _means, _scale = _clusters()
    stats = U.fit_statistics("mahalanobis", x, y)
    u = U.Unfamiliarity("mahalanobis", 0.0, stats)
    test = np.random.default_rng(1).normal(size=(20, x.shape[1]))
    mu = np.stack([x[y == c].mean(0) for c in (0, 1)])
    resid = x - mu[y]
    prec = np.linalg.inv(resid.T @ resid / (len(x) - 2))
    exact = np.min([np.einsum("ij,jk,ik->i", test - m, prec, test - m) for m in mu], axis=0)
    # d=12 < PCA_RANK: the probabilistic-PCA form keeps all but the last direction exactly
    assert stats["basis"].shape[1] == x.shape[1] - 1
    np.testing.assert_allclose(u.scores(test, np.zeros((20, 2))), exact, rtol=1e-3)


@pytest.mark.parametrize("method", ["mahalanobis", "knn"])
def test_threshold_passes_the_target_share_and_flags_far_points(method):
    x, y, means, scale = _clusters()
    xv, _yv, _m, _s = _clusters(400, seed=1)
    fresh, _y, _m, _s = _clusters(2000, seed=2)
    logits = np.zeros((len(xv), 2))
    u = U.fit(method, x, y, xv, logits)
    assert u.val_pass == pytest.approx(0.95, abs=0.01)
    # familiar photos the threshold never saw: about 95% pass
    passed = 1 - u.flags(u.scores(fresh, np.zeros((len(fresh), 2)))).mean()
    assert 0.9 <= passed <= 0.985
    noise = np.random.default_rng(3).normal(size=(50, 12)) * scale
    if method == "mahalanobis":  # off the training photos where they barely vary (small in Euclidean terms)
        far = means[0] + np.eye(x.shape[1])[-1] * 40 * scale[-1] + noise
    else:  # cosine distance: pointing away from every training photo
        far = -means.sum(0) + noise
    assert u.flags(u.scores(far, np.zeros((50, 2)))).all()


def test_energy_and_msp_scores():
    logits = np.array([[10.0, 0.0], [0.1, 0.0]])
    e = U.Unfamiliarity("energy", 0.0).scores(None, logits)
    m = U.Unfamiliarity("msp", 0.0).scores(None, logits)
    assert e[0] < e[1] and m[0] < m[1]  # the confident photo is the more familiar one
    assert m[0] == pytest.approx(-C.softmax(logits)[0].max())


def test_auroc_against_brute_force():
    rng = np.random.default_rng(0)
    f, u = rng.normal(0, 1, 40).round(1), rng.normal(1, 1, 30).round(1)
    brute = np.mean([(b > a) + 0.5 * (b == a) for a in f for b in u])
    assert U.auroc(f, u) == pytest.approx(brute)


def test_unfamiliarity_round_trips_and_refuses_incomplete_metadata():
    x, y, _m, _s = _clusters()
    u = U.fit("mahalanobis", x, y, x[:50], np.zeros((50, 2)))
    meta, tensors = u.to_meta()
    back = U.Unfamiliarity.from_meta(meta, tensors)
    np.testing.assert_allclose(back.scores(x[:5], np.zeros((5, 2))), u.scores(x[:5], np.zeros((5, 2))))
    assert U.Unfamiliarity.from_meta(meta, {}) is None
    assert U.Unfamiliarity.from_meta({"method": "magic"}, tensors) is None
    assert U.Unfamiliarity.from_meta(None, {}) is None


def test_capture_embedding_reads_the_input_of_the_last_linear_layer():
    from catdog_gui.core.models.lenet import LeNet5

    model = LeNet5(2).eval()
    x = torch.randn(3, 3, 32, 32)
    with U.capture_embedding(model) as seen, torch.no_grad():
        logits = model(x)
    (emb,) = seen
    assert emb.shape == (3, 84)
    torch.testing.assert_close(model.output(emb), logits)
