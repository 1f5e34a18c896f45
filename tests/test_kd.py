"""Distillation terms against independent numpy formulas, the objective's weights and wiring,
and a short training run per term.

Nets here are small stand-ins honouring the net contract (``net(x, return_features=True)``
gives logits and [stem, stages..., embedding]); cgankd.nets is deliberately not imported.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.kd import KD_LOSSES, DistillObjective, build_kd_loss, default_weights, kd_loss_names

N_CLASSES = 5
IMAGE = 8  # 8x8 inputs: stem 8x8, then each stage halves


class TinyNet(nn.Module):
    """Stem conv, then one stride-2 conv stage per extra width, mean-pooled embedding, linear."""

    def __init__(self, widths: tuple[int, ...], n_out: int = N_CLASSES):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, padding=1),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                          nn.BatchNorm2d(c_out), nn.ReLU())
            for c_in, c_out in zip(widths[:-1], widths[1:]))
        self.fc = nn.Linear(widths[-1], n_out)

    def forward(self, x, return_features=False):
        h = self.stem(x)
        feats = [h]
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        emb = h.mean((2, 3))
        feats.append(emb)
        out = self.fc(emb)
        return (out, feats) if return_features else out



def student_net(n_out=N_CLASSES):
    return TinyNet((4, 8, 8), n_out)  # stages: 8@4x4, 8@2x2


def teacher_net(n_out=N_CLASSES):
    return TinyNet((8, 16, 8, 16), n_out)  # stages: 16@4x4, 8@2x2, 16@1x1


def build(name, task="classification", student=None, teacher=None, n_data=10, options=None):
    torch.manual_seed(0)
    student = student or student_net(N_CLASSES if task == "classification" else 1)
    teacher = teacher or teacher_net(N_CLASSES if task == "classification" else 1)
    return build_kd_loss(name, task=task, student=student, teacher=teacher,
                         sample_input=torch.randn(4, 3, IMAGE, IMAGE), n_data=n_data,
                         options=options)


def feats_like(net, x, seed):
    """A net's features as float64 tensors (shapes from the real net, values random)."""
    with torch.no_grad():
        _, feats = net(x, return_features=True)
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(f.shape, generator=gen, dtype=torch.float64) for f in feats]


def call(loss, s_feats, t_feats, s_out=None, t_out=None, labels=None, rows=None):
    zero = torch.zeros(s_feats[0].shape[0], 1, dtype=torch.float64)
    return loss(zero if s_out is None else s_out, zero if t_out is None else t_out,
                s_feats, t_feats, labels, rows).item()


def np_(t):
    return t.detach().numpy().astype(np.float64)


def np_pool(a, size):
    """Average pooling to ``size`` when it divides the map (what adaptive pooling does then)."""
    n, c, h, w = a.shape
    return a.reshape(n, c, size, h // size, size, w // size).mean((3, 5))


def np_normalise_rows(a):
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)


def np_smooth_l1(a, b):
    d = np.abs(a - b)
    return np.where(d < 1, 0.5 * d * d, d - 0.5).mean()


RNG = np.random.default_rng(0)
X = torch.randn(6, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(1))
S_FEATS = feats_like(student_net(), X, seed=2)
T_FEATS = feats_like(teacher_net(), X, seed=3)


# ---- vanilla KD -----------------------------------------------------------------------------

def np_kd(s, t, temperature):
    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))
    log_p_s, log_p_t = log_softmax(s / temperature), log_softmax(t / temperature)
    return (np.exp(log_p_t) * (log_p_t - log_p_s)).sum(1).mean() * temperature ** 2


def test_kd_of_identical_logits_is_zero():
    logits = torch.tensor(RNG.normal(size=(6, N_CLASSES)))
    got = call(build("kd"), S_FEATS, T_FEATS, logits, logits.clone())
    assert got == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_matches_numpy_kl_times_t_squared(temperature):
    s, t = RNG.normal(size=(6, N_CLASSES)) * 3, RNG.normal(size=(6, N_CLASSES)) * 3
    loss = build("kd", options={"temperature": temperature})
    got = call(loss, S_FEATS, T_FEATS, torch.tensor(s), torch.tensor(t))
    assert got == pytest.approx(np_kd(s, t, temperature), abs=1e-5)


def test_kd_hand_checked_two_class_case():
    # s = (0, 0), t = (ln 3, 0) at T = 1: p_t = (3/4, 1/4), p_s = (1/2, 1/2);
    # KL = 3/4 ln(3/2) + 1/4 ln(1/2).
    loss = build("kd", options={"temperature": 1.0},
                 student=TinyNet((2, 2), 2), teacher=TinyNet((2, 2), 2))
    s = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[np.log(3.0), 0.0]], dtype=torch.float64)
    expected = 0.75 * np.log(1.5) + 0.25 * np.log(0.5)
    assert call(loss, S_FEATS, T_FEATS, s, t) == pytest.approx(expected, abs=1e-12)


def test_kd_for_regression_is_mse_to_teacher_prediction():
    s, t = RNG.normal(size=(6, 1)), RNG.normal(size=(6, 1))
    got = call(build("kd", task="regression"), S_FEATS, T_FEATS, torch.tensor(s), torch.tensor(t))
    assert got == pytest.approx(((s - t) ** 2).mean(), abs=1e-12)


def test_kd_rejects_nets_with_different_output_widths():
    with pytest.raises(CgankdInputError, match="kd.kd"):
        build("kd", student=student_net(3), teacher=teacher_net(4))


# ---- FitNet ---------------------------------------------------------------------------------

def test_fitnet_defaults_to_the_middle_stages():
    loss = build("fitnet")
    assert (loss.student_stage, loss.teacher_stage) == (0, 1)  # of 2 and 3 stages


def test_fitnet_with_identity_regressor_is_mse_of_pooled_hint():
    # Student stage 0 (8@4x4) against teacher stage 1 (8@2x2): the hint is pooled to 2x2.
    loss = build("fitnet", options={"batchnorm": False}).double()
    with torch.no_grad():
        conv = loss.regressor[0]
        conv.weight.copy_(torch.eye(8, dtype=torch.float64).view(8, 8, 1, 1))
        conv.bias.zero_()
    expected = ((np_pool(np_(S_FEATS[1]), 2) - np_(T_FEATS[2])) ** 2).mean()
    assert call(loss, S_FEATS, T_FEATS) == pytest.approx(expected, abs=1e-10)


def test_fitnet_regressor_is_trainable_and_stage_is_checked():
    loss = build("fitnet", options={"student_stage": -1, "teacher_stage": 0})
    assert loss.regressor[0].weight.shape == (16, 8, 1, 1)  # student 8 -> teacher 16 channels
    assert sum(p.numel() for p in loss.parameters()) > 0
    with pytest.raises(CgankdInputError, match="kd.fitnet.teacher_stage"):
        build("fitnet", options={"teacher_stage": 3})


# ---- attention transfer ---------------------------------------------------------------------

def np_attention(f):
    return np_normalise_rows((f ** 2).mean(1).reshape(f.shape[0], -1))


def test_at_of_identical_features_is_zero():
    loss = build("at", teacher=student_net())
    assert call(loss, S_FEATS, [f.clone() for f in S_FEATS]) == pytest.approx(0, abs=1e-12)


def test_at_hand_checked_single_map():
    # Student map [[1, 0], [0, 0]] -> attention (1, 0, 0, 0); teacher all ones -> (1/2,) * 4.
    # Squared differences 1/4 each: mean 1/4.
    loss = build("at", student=TinyNet((1, 1)), teacher=TinyNet((2, 2)))
    s = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]], dtype=torch.float64)
    t = torch.ones(1, 2, 2, 2, dtype=torch.float64)
    dummy = torch.zeros(1, 1, dtype=torch.float64)
    assert call(loss, [dummy, s, dummy], [dummy, t, dummy]) == pytest.approx(0.25, abs=1e-12)


def test_at_matches_numpy_over_deepest_aligned_stages():
    # Student stages (8@4x4, 8@2x2) pair with teacher stages 2 and 3 (8@2x2, 16@1x1).
    loss = build("at")
    expected = sum(((np_attention(np_pool(np_(S_FEATS[1 + i]), t.shape[-1]))
                     - np_attention(np_(t))) ** 2).mean()
                   for i, t in enumerate(T_FEATS[2:4]))
    assert loss.pairs == [(0, 1), (1, 2)]
    assert call(loss, S_FEATS, T_FEATS) == pytest.approx(expected, abs=1e-10)


# ---- similarity preserving ------------------------------------------------------------------

def test_sp_matches_numpy():
    def similarity(f):
        flat = f.reshape(f.shape[0], -1)
        return np_normalise_rows(flat @ flat.T)
    s, t = np_(S_FEATS[-2]), np_(T_FEATS[-2])
    expected = ((similarity(s) - similarity(t)) ** 2).sum() / s.shape[0] ** 2
    assert call(build("sp"), S_FEATS, T_FEATS) == pytest.approx(expected, abs=1e-10)
    assert call(build("sp"), S_FEATS, [f * 3 for f in S_FEATS]) == pytest.approx(0, abs=1e-12)


# ---- RKD ------------------------------------------------------------------------------------

def np_rkd(s, t, w_distance=25.0, w_angle=50.0):
    def distances(e):
        d = np.linalg.norm(e[:, None] - e[None, :], axis=2)
        return d / d[~np.eye(len(e), dtype=bool)].mean()

    def angles(e):
        unit = np_normalise_rows(e[None, :, :] - e[:, None, :])  # [i, j] = e_j - e_i
        return np.einsum("ijd,ikd->ijk", unit, unit)
    return (w_distance * np_smooth_l1(distances(s), distances(t))
            + w_angle * np_smooth_l1(angles(s), angles(t)))


def test_rkd_matches_numpy():
    expected = np_rkd(np_(S_FEATS[-1]), np_(T_FEATS[-1]))
    assert call(build("rkd"), S_FEATS, T_FEATS) == pytest.approx(expected, abs=1e-5)
    scaled = [f * 2.5 for f in S_FEATS]  # RKD is scale-invariant: distances are normalised
    assert call(build("rkd"), S_FEATS, scaled) == pytest.approx(0, abs=1e-10)


# ---- PKT ------------------------------------------------------------------------------------

def test_pkt_matches_numpy():
    eps = 1e-7

    def probabilities(e):
        unit = e / (np.linalg.norm(e, axis=1, keepdims=True) + eps)
        sim = (unit @ unit.T + 1) / 2
        return sim / sim.sum(1, keepdims=True)
    p_s, p_t = probabilities(np_(S_FEATS[-1])), probabilities(np_(T_FEATS[-1]))
    expected = (p_t * np.log((p_t + eps) / (p_s + eps))).mean()
    assert call(build("pkt"), S_FEATS, T_FEATS) == pytest.approx(expected, abs=1e-10)


# ---- VID ------------------------------------------------------------------------------------

def test_vid_matches_numpy_gaussian_nll():
    loss = build("vid").double()
    total = 0.0
    for predictor, (i, j) in zip(loss.predictors, loss.pairs):
        t = np_(T_FEATS[1 + j])
        h = np_pool(np_(S_FEATS[1 + i]), t.shape[-1])
        convs = [m for m in predictor.mean if isinstance(m, nn.Conv2d)]
        for k, conv in enumerate(convs):
            h = np.einsum("oc,nchw->nohw", np_(conv.weight)[:, :, 0, 0], h)
            h = h + np_(conv.bias)[None, :, None, None]
            h = np.maximum(h, 0) if k < len(convs) - 1 else h
        variance = np.log1p(np.exp(np_(predictor.raw_variance))) + 1e-5
        variance = variance[None, :, None, None]
        total += (0.5 * ((h - t) ** 2 / variance + np.log(variance))).mean()
    assert call(loss, S_FEATS, T_FEATS) == pytest.approx(total, abs=1e-10)
    raw = loss.predictors[0].raw_variance.detach()
    assert (F.softplus(raw) + 1e-5).numpy() == pytest.approx(5.0, abs=1e-5)  # init variance


# ---- CRD ------------------------------------------------------------------------------------

def np_nce(scores, n_data, eps=1e-7):
    noise = (scores.shape[1] - 1) / n_data
    pos, neg = scores[:, 0], scores[:, 1:]
    return -(np.log(pos / (pos + noise + eps)).sum()
             + np.log(noise / (neg + noise + eps)).sum()) / scores.shape[0]


def test_crd_shapes_and_negative_cap():
    loss = build("crd", n_data=10, options={"negatives": "uniform"})
    assert loss.memory_student.shape == loss.memory_teacher.shape == (10, 128)
    assert loss.head_student.in_features == 8 and loss.head_teacher.in_features == 16
    assert loss.n_negatives == 9  # capped at n_data - 1
    index = torch.tensor([0, 3, 9, 4, 5, 7])
    rows = loss.sample_contrast_rows(index)
    assert rows.shape == (6, 10)
    assert torch.equal(rows[:, 0], index)
    assert not (rows[:, 1:] == index[:, None]).any() and rows.min() >= 0 and rows.max() < 10


def test_crd_defaults_to_exact_negatives_as_the_reference():
    loss = build("crd", n_data=10)
    assert loss.negatives == "exact" and loss.needs_data_labels
    with pytest.raises(CgankdInputError, match=r"kd\.crd\.negatives: exact needs the training"):
        loss.sample_contrast_rows(torch.tensor([0, 1]))


def test_crd_exact_negatives_never_share_the_anchors_class():
    n_data = 60
    labels = torch.tensor([0] * 30 + [1] * 5 + [3] * 25)[torch.randperm(n_data)]  # class 2 empty
    loss = build("crd", n_data=n_data, options={"nce_k": 500})
    loss.set_data_labels(labels)
    assert loss.n_negatives == 59  # capped at n_data - 1, drawn with replacement
    index = torch.arange(n_data)
    torch.manual_seed(1)
    rows = loss.sample_contrast_rows(index)
    assert torch.equal(rows[:, 0], index)
    negatives = rows[:, 1:]
    assert not (labels[negatives] == labels[index][:, None]).any()
    # every other-class row is reachable: a class-1 anchor sees all 55 rows of classes 0 and 3
    for anchor in index[labels == 1].tolist():
        assert set(negatives[anchor].tolist()) <= set(index[labels != 1].tolist())
    assert set(negatives[labels == 1].reshape(-1).tolist()) == set(index[labels != 1].tolist())
    # uniform (today's draw) does put same-class rows among the negatives
    uniform = build("crd", n_data=n_data, options={"nce_k": 500, "negatives": "uniform"})
    torch.manual_seed(1)
    same = labels[uniform.sample_contrast_rows(index)[:, 1:]] == labels[index][:, None]
    assert same.any()


@pytest.mark.parametrize("options, match", [
    ({"negatives": "relax"}, r"kd\.crd\.negatives: 'relax' is not one of exact, uniform"),
])
def test_crd_negatives_option_is_checked(options, match):
    with pytest.raises(CgankdInputError, match=match):
        build("crd", options=options)


def test_crd_exact_needs_two_classes():
    loss = build("crd", n_data=4)
    with pytest.raises(CgankdInputError, match="at least two classes"):
        loss.set_data_labels(torch.zeros(4))
    with pytest.raises(CgankdInputError, match="3 labels for 4"):
        loss.set_data_labels(torch.arange(3))


@pytest.mark.parametrize("negatives", ["uniform", "exact"])
def test_crd_matches_numpy_nce_and_updates_memory(negatives):
    n_data, index = 10, torch.tensor([0, 3, 9, 4, 5, 7])
    loss = build("crd", n_data=n_data, options={"negatives": negatives}).double()
    if negatives == "exact":
        loss.set_data_labels(torch.arange(n_data) % 3)
    old_student, old_teacher = np_(loss.memory_student), np_(loss.memory_teacher)
    torch.manual_seed(123)
    rows = loss.sample_contrast_rows(index).numpy()
    torch.manual_seed(123)  # forward draws the same negatives
    got = call(loss, S_FEATS, T_FEATS, rows=index)

    def unit_head(head, f):
        return np_normalise_rows(np_(f) @ np_(head.weight).T + np_(head.bias))
    v_s, v_t = unit_head(loss.head_student, S_FEATS[-1]), unit_head(loss.head_teacher, T_FEATS[-1])
    s_scores = np.exp(np.einsum("bkd,bd->bk", old_teacher[rows], v_s) / 0.07)
    t_scores = np.exp(np.einsum("bkd,bd->bk", old_student[rows], v_t) / 0.07)
    z_s, z_t = s_scores.mean() * n_data, t_scores.mean() * n_data  # Z from the first batch
    expected = np_nce(s_scores / z_s, n_data) + np_nce(t_scores / z_t, n_data)
    assert np.isfinite(got) and got > 0
    assert got == pytest.approx(expected, abs=1e-5)
    assert loss.z_student.item() == pytest.approx(z_s)
    assert loss.z_teacher.item() == pytest.approx(z_t)

    new_student = np_(loss.memory_student)
    idx = index.numpy()
    np.testing.assert_allclose(new_student[idx],
                               np_normalise_rows(0.5 * old_student[idx] + 0.5 * v_s), atol=1e-12)
    untouched = np.setdiff1d(np.arange(n_data), idx)
    np.testing.assert_array_equal(new_student[untouched], old_student[untouched])
    call(loss, S_FEATS, T_FEATS, rows=index)
    assert loss.z_student.item() == pytest.approx(z_s)  # fixed after the first batch


def test_crd_needs_rows():
    with pytest.raises(CgankdInputError, match="kd.crd"):
        call(build("crd").double(), S_FEATS, T_FEATS, rows=None)
    with pytest.raises(CgankdInputError, match="kd.crd"):
        call(build("crd", n_data=10).double(), S_FEATS, T_FEATS, rows=torch.arange(6) + 5)


# ---- registry, options, tasks ---------------------------------------------------------------

def test_registered_names_per_task():
    assert kd_loss_names("classification") == KD_LOSSES.names()
    assert set(KD_LOSSES.names()) == {"kd", "fitnet", "at", "sp", "rkd", "pkt", "crd", "vid"}
    assert "crd" not in kd_loss_names("regression") and "kd" in kd_loss_names("regression")


def test_unknown_loss_option_and_task_are_named():
    with pytest.raises(CgankdInputError, match="'nope'"):
        build("nope")
    with pytest.raises(CgankdInputError, match=r"kd\.at\.q"):
        build("at", options={"q": 3})
    with pytest.raises(CgankdInputError, match="'crd' does not apply to regression"):
        build("crd", task="regression")
    with pytest.raises(CgankdInputError, match="'ranking'"):
        kd_loss_names("ranking")


def test_probe_leaves_nets_untouched():
    student, teacher = student_net(), teacher_net()
    student.train()
    before = student.stem[1].running_mean.clone()
    build("fitnet", student=student, teacher=teacher)
    assert student.training and torch.equal(before, student.stem[1].running_mean)


def test_probe_rejects_a_net_breaking_the_feature_contract():
    class NoEmbedding(TinyNet):
        def forward(self, x, return_features=False):
            out, feats = super().forward(x, True)
            return out, feats[:-1]
    with pytest.raises(CgankdInputError, match="teacher"):
        build("sp", teacher=NoEmbedding((4, 8)))


# ---- objective ------------------------------------------------------------------------------

def objective(method, task="classification", n_data=12, **kwargs):
    torch.manual_seed(0)
    n_out = N_CLASSES if task == "classification" else 1
    student = kwargs.pop("student", student_net(n_out))
    teacher = kwargs.pop("teacher", teacher_net(n_out))
    return DistillObjective(method, task=task, student=student, teacher=teacher,
                            sample_input=torch.randn(4, 3, IMAGE, IMAGE), n_data=n_data, **kwargs)


@pytest.mark.parametrize("convention, alpha", [(None, 1.0), ("cgankd", 1.0),
                                               ("repdistiller", 0.0)])
def test_default_weights_follow_the_convention(convention, alpha):
    """cgankd (default): the authors' scripts' CE + KL + beta x method; repdistiller: alpha 0."""
    kw = {} if convention is None else {"convention": convention}
    assert default_weights("none", **kw) == {"gamma": 1.0, "alpha": 0.0, "beta": 0.0}
    assert default_weights("kd", **kw) == {"gamma": 0.1, "alpha": 0.9, "beta": 0.0}
    betas = {name: default_weights(name, **kw)["beta"] for name in KD_LOSSES.names()
             if name != "kd"}
    assert betas == {"fitnet": 100, "at": 1000, "sp": 3000, "vid": 1, "rkd": 1, "pkt": 30000,
                     "crd": 0.8}
    assert all(default_weights(n, **kw)["gamma"] == 1 and default_weights(n, **kw)["alpha"]
               == alpha for n in betas)


@pytest.mark.parametrize("convention, has_kl", [("cgankd", True), ("repdistiller", False)])
def test_objective_convention_adds_or_drops_the_kl_term(convention, has_kl):
    obj = objective("at", convention=convention)
    x, labels = torch.randn(6, 3, IMAGE, IMAGE), torch.arange(6) % N_CLASSES
    _, parts = obj(x, labels, torch.arange(6))
    assert (obj.kd_term is not None) == has_kl and ("kd" in parts) == has_kl
    expected = parts["task"] + 1000 * parts["at"] + (parts["kd"] if has_kl else 0)
    assert parts["total"] == pytest.approx(expected, rel=1e-5)
    # an explicit weight still wins over the convention
    assert objective("at", convention=convention, weights={"alpha": 0.0}).kd_term is None


def test_objective_gives_crd_the_training_labels():
    data_labels = torch.arange(12) % N_CLASSES
    obj = objective("crd", data_labels=data_labels)
    assert torch.equal(obj.method_term.row_class, data_labels)
    with pytest.raises(CgankdInputError, match="kd.crd needs the training labels"):
        objective("crd")
    assert objective("crd", options={"crd": {"negatives": "uniform"}}).method_term is not None


def test_objective_without_kd_needs_no_teacher():
    obj = objective("none", teacher=None)
    x, labels = torch.randn(6, 3, IMAGE, IMAGE), torch.arange(6) % N_CLASSES
    loss, parts = obj(x, labels, torch.arange(6))
    assert set(parts) == {"task", "total"}
    assert loss.item() == pytest.approx(F.cross_entropy(obj.student(x), labels).item(), rel=1e-5)


def test_objective_combines_weighted_parts_and_freezes_teacher():
    obj = objective("fitnet", weights={"alpha": 0.5}, options={"kd": {"temperature": 2.0}})
    assert obj.kd_term.temperature == 2.0
    obj.teacher.train()
    x, labels = torch.randn(6, 3, IMAGE, IMAGE), torch.arange(6) % N_CLASSES
    loss, parts = obj(x, labels, torch.arange(6))
    assert set(parts) == {"task", "kd", "fitnet", "total"}
    assert parts["total"] == pytest.approx(parts["task"] + 0.5 * parts["kd"]
                                           + 100 * parts["fitnet"], rel=1e-5)
    loss.backward()
    assert not obj.teacher.training
    assert all(p.grad is None for p in obj.teacher.parameters())
    trainable = {id(p) for p in obj.trainable_parameters()}
    assert {id(p) for p in obj.student.parameters()} <= trainable
    assert {id(p) for p in obj.method_term.parameters()} <= trainable
    assert not {id(p) for p in obj.teacher.parameters()} & trainable
    assert not any(k.startswith("teacher") for k in obj.state_dict())


def test_objective_regression_uses_mse_and_kd_to_teacher_prediction():
    obj = objective("kd", task="regression")
    x, labels = torch.randn(6, 3, IMAGE, IMAGE), torch.rand(6)
    _, parts = obj(x, labels)
    with torch.no_grad():
        s, t = obj.student(x), obj.teacher(x)
    assert parts["task"] == pytest.approx(F.mse_loss(s[:, 0], labels).item(), rel=1e-5)
    assert parts["kd"] == pytest.approx(F.mse_loss(s, t).item(), rel=1e-5)
    assert parts["total"] == pytest.approx(0.1 * parts["task"] + 0.9 * parts["kd"], rel=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "nope"}, "'nope'"),
    ({"method": "crd", "task": "regression"}, "'crd'"),
    ({"method": "at", "weights": {"delta": 1}}, r"kd\.weights\.delta"),
    ({"method": "at", "weights": {"beta": -1}}, r"kd\.weights\.beta"),
    ({"method": "at", "options": {"at": {"bogus": 1}}}, r"kd\.at\.bogus"),
    ({"method": "at", "options": {"atx": {}}}, "'atx'"),
    ({"method": "kd", "weights": {"beta": 1}}, "beta"),
    ({"method": "none", "weights": {"alpha": 1}}, "alpha"),
    ({"method": "at", "teacher": None}, "teacher"),
    ({"method": "at", "convention": "hinton"}, r"kd\.convention: 'hinton' is not one of"),
])
def test_objective_errors_name_the_culprit(kwargs, match):
    with pytest.raises(CgankdInputError, match=match):
        objective(**kwargs)


CASES = [(name, "classification") for name in kd_loss_names("classification")]
CASES += [("kd", "regression"), ("fitnet", "regression"), ("rkd", "regression")]


@pytest.mark.parametrize("method, task", CASES)
def test_training_decreases_the_objective(method, task):
    n = 24
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(n, 3, IMAGE, IMAGE, generator=gen)
    labels = (torch.arange(n) % N_CLASSES if task == "classification"
              else torch.rand(n, generator=gen))
    obj = objective(method, task=task, n_data=n,
                    **({"data_labels": labels} if method == "crd" else {}))
    optimiser = torch.optim.Adam(obj.trainable_parameters(), lr=1e-2)
    history, term = [], []
    for _ in range(30):
        loss, parts = obj(x, labels, torch.arange(n))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(parts["total"])
        term.append(parts[method])  # the distillation term itself learns, not only the CE
    assert np.isfinite(history).all()
    assert np.mean(history[-3:]) < np.mean(history[:3]), history
    assert np.mean(term[-3:]) < np.mean(term[:3]), term


@pytest.mark.parametrize("kd, match", [
    ({"convention": "hinton"}, r"^kd\.convention: 'hinton' is not one of cgankd, repdistiller$"),
    ({"options": {"crd": {"negatives": "relax"}}}, r"^kd\.options\.crd\.negatives: 'relax'"),
    ({"convention": "repdistiller", "weights": {"kd": {"beta": 1}}}, r"kd\.weights\.kd\.beta"),
])
def test_plan_time_kd_section_checks_convention_and_negatives(kd, match):
    from cgankd.stage_options.kd import check_kd_section  # torch-free, run when planning
    with pytest.raises(CgankdInputError, match=match):
        check_kd_section(kd)
    check_kd_section({"convention": "repdistiller", "weights": {"at": {"alpha": 0.5}},
                      "options": {"crd": {"negatives": "uniform", "nce_k": 100}}})


def test_schema_convention_mirrors_the_code_default():
    from pathlib import Path

    import yaml

    from cgankd.stage_options.kd import CONVENTION_ALPHA, DEFAULT_CONVENTION
    schema = yaml.safe_load((Path(__file__).parents[1] / "config/schema.yaml").read_text())
    spec = schema["properties"]["kd"]["properties"]["convention"]
    assert spec["default"] == DEFAULT_CONVENTION and spec["enum"] == list(CONVENTION_ALPHA)
