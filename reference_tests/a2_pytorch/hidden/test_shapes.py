"""Hidden: shapes, parameter counts, initialization and train/eval behaviour of the models,
and the contracts of the transforms, the dataset and the loader.

Shapes come from Hypothesis (derandomized, bounded). A model is checked through its state
dict (fetched by value): the layers in registration order must be those of the specified
architecture, and its output must equal the grader's reference forward computed from
those parameters, so a right shape with wrong values earns nothing.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.visibility("after_published")]

SHAPES = settings(
    derandomize=True,
    deadline=None,
    max_examples=8,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _count(expected):
    """Trainable scalars of the expected layers (BatchNorm: a weight and a bias per channel)."""
    total = 0
    for kind, w, b in expected:
        total += 2 * w[0] if kind == "bn" else int(np.prod(w)) + (int(np.prod(b)) if b else 0)
    return total


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "models")
@SHAPES
@given(
    n=st.integers(1, 9),
    in_shape=st.sampled_from([(5,), (2, 3), (1, 2, 2)]),
    hidden=st.lists(st.integers(1, 7), min_size=0, max_size=3),
    classes=st.integers(1, 5),
)
def test_mlp_architecture(student, ref, n, in_shape, hidden, classes):
    """MLP: layers, parameter count and eval-mode scores for drawn widths, depths and batch sizes"""
    models = student.module("models")
    d = int(np.prod(in_shape))
    model = models.MLP(d, hidden, classes, dropout=0.3)
    student.call(model.eval, want="none")
    expected = ref.mlp_shapes(d, hidden, classes)
    what = f"MLP({d}, {hidden}, {classes})"
    layers = ref.check_structure(what, student.probe("state_dict", model), expected)
    assert student.probe("count_parameters", model) == _count(expected), (
        f"{what}: parameter count {student.probe('count_parameters', model)}, expected "
        f"{_count(expected)}")
    X = np.random.default_rng(n + d).standard_normal((n, *in_shape)).astype(np.float32)
    out = model(student.tensor(X))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32, (
        f"{what} returned {type(out).__name__} {getattr(out, 'dtype', '')}, expected a "
        "float32 tensor of scores")
    ref.assert_close(f"{what} scores (eval mode)", out, ref.mlp_forward(layers, X), rtol=1e-4)


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "models")
@SHAPES
@given(
    n=st.integers(1, 4),
    cin=st.integers(1, 3),
    channels=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    k=st.sampled_from([1, 3, 5]),
    hw=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    classes=st.integers(1, 4),
)
def test_cnn_architecture(student, ref, n, cin, channels, k, hw, classes):
    """SmallCNN: layers, parameter count and eval-mode scores for drawn blocks, kernels and image sizes"""
    models = student.module("models")
    model = models.SmallCNN(cin, classes, channels, k)
    student.call(model.eval, want="none")
    expected = ref.cnn_shapes(cin, classes, channels, k)
    what = f"SmallCNN({cin}, {classes}, {channels}, {k})"
    state = student.probe("state_dict", model)
    layers = ref.check_structure(what, state, expected)
    count = student.probe("count_parameters", model)
    assert count == _count(expected), f"{what}: parameter count {count}, expected {_count(expected)}"
    # random BatchNorm statistics and affine parameters, so that they matter
    rng = np.random.default_rng(n * 100 + k)
    new_state = {}
    for layer in ref.layers(state):
        for short, value in layer.tensors.items():
            if layer.kind == "bn" and short in ("weight", "running_var"):
                value = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
            elif short in ("bias", "running_mean"):
                value = (0.3 * rng.standard_normal(value.shape)).astype(value.dtype)
            new_state[f"{layer.prefix}.{short}" if layer.prefix else short] = student.tensor(value)
    student.probe("load_state", model, new_state)
    layers = ref.check_structure(what, student.probe("state_dict", model), expected)
    X = rng.standard_normal((n, cin, *hw)).astype(np.float32)
    out = model(student.tensor(X))
    ref.assert_close(f"{what} scores (eval mode)", out, ref.cnn_forward(layers, X)[0], rtol=1e-4)


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
@SHAPES
@given(cin=st.integers(1, 3), cout=st.integers(1, 4), k=st.sampled_from([1, 3, 5]),
       hw=st.tuples(st.integers(1, 9), st.integers(1, 9)))
def test_blocks(student, ref, cin, cout, k, hw):
    """Block keeps (H, W) and BlockDownSample gives (ceil(H/2), ceil(W/2)), with right values"""
    models = student.module("models")
    X = np.random.default_rng(cin + 10 * cout).standard_normal((3, cin, *hw)).astype(np.float32)
    h, w = hw
    for name, shape, stride in (("Block", (3, cout, h, w), 1),
                                ("BlockDownSample", (3, cout, (h + 1) // 2, (w + 1) // 2), 2)):
        block = getattr(models, name)(cin, cout, k)
        student.call(block.eval, want="none")
        state = student.probe("state_dict", block)
        layers = ref.check_structure(f"{name}({cin}, {cout}, {k})", state,
                                     ref.cnn_shapes(cin, 1, [cout], k)[:4])
        out = block(student.tensor(X))
        assert np.shape(out) == shape, f"{name}({cin}, {cout}, {k}) gave {np.shape(out)}, expected {shape}"
        expected = X
        for j, (conv, bn) in enumerate(((layers[0], layers[1]), (layers[2], layers[3]))):
            expected = ref.conv2d(expected, conv.tensors["weight"], stride if j == 0 else 1, k // 2)
            expected = np.maximum(ref.batchnorm(expected, bn.tensors, False)[0], 0.0)
        ref.assert_close(f"{name}({cin}, {cout}, {k}) output", out, expected, rtol=1e-4)


def _kurtosis(w):
    w = np.asarray(w, np.float64).ravel()
    return float(np.mean((w - w.mean()) ** 4) / np.var(w) ** 2)


def _he_normal(what, w, fan_in):
    std = np.sqrt(2.0 / fan_in)
    got = float(np.std(w))
    assert abs(float(np.mean(w))) < 0.05 * std + 3 * std / np.sqrt(w.size), (
        f"{what}: mean {np.mean(w):.3g}, expected 0 (He normal)")
    assert abs(got / std - 1) < 0.05, (
        f"{what}: standard deviation {got:.4g}, expected sqrt(2 / fan_in) = {std:.4g} with "
        f"fan_in = {fan_in} (He normal)")
    assert abs(_kurtosis(w) - 3.0) < 0.3, (
        f"{what}: the values are not normally distributed (kurtosis {_kurtosis(w):.2f}, "
        "a normal distribution has 3): use kaiming_normal_, not a uniform initialization")


def _xavier_uniform(what, w):
    fan_out, fan_in = w.shape
    a = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.max(np.abs(w)) <= a * (1 + 1e-6), (
        f"{what}: values up to {np.max(np.abs(w)):.4g}, beyond the Xavier bound {a:.4g}")
    assert abs(float(np.std(w)) / (a / np.sqrt(3)) - 1) < 0.05, (
        f"{what}: standard deviation {np.std(w):.4g}, expected a / sqrt(3) = "
        f"{a / np.sqrt(3):.4g} (Xavier uniform with a = sqrt(6 / (fan_in + fan_out)))")
    assert abs(_kurtosis(w) - 1.8) < 0.2, (
        f"{what}: the values are not uniform (kurtosis {_kurtosis(w):.2f}, uniform has 1.8)")


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "init")
def test_initialization(student, ref):
    """He normal for convolutions and hidden linear layers, Xavier uniform for the output layers, zero biases"""
    models = student.module("models")
    student.probe("deterministic_torch", 5)
    mlp = ref.check_structure("MLP(300, [400, 200], 300)",
                              student.probe("state_dict", models.MLP(300, [400, 200], 300)),
                              ref.mlp_shapes(300, [400, 200], 300))
    _he_normal("MLP hidden layer 1 weight", mlp[0].tensors["weight"], 300)
    _he_normal("MLP hidden layer 2 weight", mlp[1].tensors["weight"], 400)
    _xavier_uniform("MLP output layer weight", mlp[2].tensors["weight"])
    for i, layer in enumerate(mlp):
        assert not np.any(layer.tensors["bias"]), f"MLP layer {i}: the bias must start at zero"
    cnn = ref.check_structure("SmallCNN(16, 200, [32, 64], 3)",
                              student.probe("state_dict", models.SmallCNN(16, 200, [32, 64], 3)),
                              ref.cnn_shapes(16, 200, [32, 64], 3))
    for layer in cnn:
        w = layer.tensors["weight"]
        if layer.kind == "conv":
            _he_normal(f"SmallCNN convolution {layer.prefix}", w, w.shape[1] * w.shape[2] * w.shape[3])
        elif layer.kind == "bn":
            assert np.all(w == 1) and not np.any(layer.tensors["bias"]), (
                f"SmallCNN BatchNorm {layer.prefix}: weight 1 and bias 0 at the start")
    _xavier_uniform("SmallCNN output layer weight", cnn[-1].tensors["weight"])
    assert not np.any(cnn[-1].tensors["bias"]), "SmallCNN output layer: the bias must start at zero"


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "modes")
def test_batchnorm_train_and_eval(student, rng, ref):
    """SmallCNN: batch statistics and running-average updates in train mode, running averages in eval mode"""
    models = student.module("models")
    model = models.SmallCNN(2, 3, [3, 4], 3)
    X = rng.standard_normal((6, 2, 5, 5)).astype(np.float32) + 0.5
    expected = ref.cnn_shapes(2, 3, [3, 4], 3)
    layers = ref.check_structure("SmallCNN(2, 3, [3, 4], 3)", student.probe("state_dict", model), expected)
    assert student.call(model.train, want="handle") is not None
    out = model(student.tensor(X))
    scores, stats = ref.cnn_forward(layers, X, train=True)
    ref.assert_close("SmallCNN scores in train mode (batch statistics)", out, scores, rtol=1e-4)
    after = ref.layers(student.probe("state_dict", model))
    bns = [layer for layer in after if layer.kind == "bn"]
    for bn, new in zip(bns, stats, strict=True):
        for key in ("running_mean", "running_var"):
            ref.assert_close(f"{bn.prefix}.{key} after one train-mode pass", bn.tensors[key],
                             new[key], rtol=1e-4, hint="BatchNorm updates it with momentum 0.1")
    student.call(model.eval, want="none")
    modes = student.probe("modes", model)
    assert not any(modes.values()), f"after model.eval() these modules still train: {modes}"
    ref.assert_close("SmallCNN scores in eval mode (running averages)", model(student.tensor(X)),
                     ref.cnn_forward([*after], X, train=False)[0], rtol=1e-4)
    ref.assert_close("running statistics after an eval-mode pass",
                     student.probe("state_dict", model)[f"{bns[0].prefix}.running_mean"],
                     bns[0].tensors["running_mean"], rtol=1e-6, hint="eval mode changes nothing")


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "modes")
def test_dropout_train_and_eval(student, rng, ref):
    """MLP dropout: random in train mode with the 1/(1-p) scaling, off in eval mode"""
    models = student.module("models")
    model = models.MLP(4, [64], 2, dropout=0.5)
    layers = ref.check_structure("MLP(4, [64], 2, dropout=0.5)", student.probe("state_dict", model),
                                 ref.mlp_shapes(4, [64], 2))
    x = rng.standard_normal((1, 4)).astype(np.float32)
    X = np.repeat(x, 4000, axis=0)
    student.call(model.eval, want="none")
    clean = ref.mlp_forward(layers, x)
    ref.assert_close("MLP with dropout in eval mode", model(student.tensor(X[:3])), np.repeat(clean, 3, 0),
                     rtol=1e-4, hint="no dropout in eval mode")
    student.call(model.train, want="none")
    out = np.asarray(model(student.tensor(X)), np.float64)
    assert np.std(out[:, 0]) > 1e-3, "MLP with dropout 0.5 gives the same output for every copy of an input in train mode"
    hidden = np.maximum(ref.linear(x, layers[0].tensors["weight"], layers[0].tensors["bias"]), 0)
    spread = np.sqrt(np.sum((hidden * layers[1].tensors["weight"]) ** 2, axis=1))  # per output
    tol = 5 * spread / np.sqrt(len(X)) + 1e-4
    assert np.all(np.abs(out.mean(axis=0) - clean[0]) < tol), (
        f"MLP with dropout in train mode: the mean output over {len(X)} copies of one input is "
        f"{out.mean(axis=0)}, expected about the eval-mode output {clean[0]}: scale the kept "
        "units by 1 / (1 - p) (nn.Dropout does)")
    no_drop = models.MLP(4, [8], 2, dropout=0.0)
    student.call(no_drop.train, want="none")
    first = no_drop(student.tensor(X[:5]))
    np.testing.assert_array_equal(first, no_drop(student.tensor(X[:5])),
                                  err_msg="MLP with dropout=0 must be deterministic in train mode")


# ---------------------------------------------------------------- transforms and data


def _image(rng, shape=(2, 6, 7)):
    return rng.uniform(0.5, 1.5, shape)  # no zeros: a shift shows where the zeros come in


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "data")
def test_flip(student, rng):
    """RandomHorizontalFlip: never for p=0, always for p=1, about p otherwise, from its generator"""
    data = student.module("data")
    x = _image(rng)
    xt = student.tensor(x, "float32")
    for p, expect in ((0.0, x), (1.0, x[..., ::-1])):
        out = data.RandomHorizontalFlip(p, student.probe("torch_generator", 0))(xt)
        np.testing.assert_allclose(out, expect, rtol=1e-6,
                                   err_msg=f"RandomHorizontalFlip(p={p}) gave a wrong image")
    seqs = []
    for seed in (3, 3, 4):
        flip = data.RandomHorizontalFlip(0.5, student.probe("torch_generator", seed))
        outs = student.map(flip, [(xt,)] * 60)
        seqs.append([bool(np.allclose(o, x[..., ::-1])) for o in outs])
        for o in outs:
            assert np.allclose(o, x) or np.allclose(o, x[..., ::-1]), (
                "RandomHorizontalFlip returned an image that is neither the input nor its mirror")
    assert 15 <= sum(seqs[0]) <= 45, f"RandomHorizontalFlip(0.5) flipped {sum(seqs[0])} of 60 images"
    assert seqs[0] == seqs[1], (
        "RandomHorizontalFlip with generators seeded alike flipped different images: draw "
        "with the generator you are given (torch.rand((), generator=...))")
    assert seqs[0] != seqs[2], "RandomHorizontalFlip gave the same flips for different generator seeds"
    # the documented draw: one u = torch.rand((), generator=g) per call, flip when u < p
    draws = student.probe("uniform_draws", 7, 40)
    flip = data.RandomHorizontalFlip(0.3, student.probe("torch_generator", 7))
    got = [bool(np.allclose(o, x[..., ::-1])) for o in student.map(flip, [(xt,)] * 40)]
    assert got == [u < 0.3 for u in draws], (
        "RandomHorizontalFlip(0.3) flipped other images than the documented rule: one draw "
        "u = torch.rand((), generator=generator) per call, flip when u < p")
    # generator=None: torch's global generator, so seeding torch repeats the flips
    runs = []
    for global_seed in (21, 21, 22):
        student.probe("deterministic_torch", global_seed)
        flip = data.RandomHorizontalFlip(0.5)
        runs.append([bool(np.allclose(o, x[..., ::-1])) for o in student.map(flip, [(xt,)] * 40)])
    assert runs[0] == runs[1] and runs[0] != runs[2], (
        "RandomHorizontalFlip(p, generator=None) must draw from torch's global generator "
        "(torch.manual_seed then repeats its flips)")


def _shift_of(out, x, m):
    """The (dy, dx) with |dy|, |dx| <= m for which out is x shifted with zero fill, or None."""
    h, w = x.shape[-2:]
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            e = np.zeros_like(x)
            e[..., max(dy, 0): h + min(dy, 0), max(dx, 0): w + min(dx, 0)] = \
                x[..., max(-dy, 0): h - max(dy, 0), max(-dx, 0): w - max(dx, 0)]
            if np.allclose(out, e, rtol=1e-6, atol=1e-7):
                return dy, dx
    return None


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "data")
def test_shift(student, rng):
    """RandomShift: zero-filled shifts, every offset in -m..m drawn, from its generator"""
    data = student.module("data")
    x = _image(rng)
    xt = student.tensor(x, "float64")
    seqs = []
    for seed in (1, 1):
        shift = data.RandomShift(2, student.probe("torch_generator", seed))
        outs = student.map(shift, [(xt,)] * 80)
        shifts = []
        for o in outs:
            assert np.asarray(o).dtype == np.float64 and np.shape(o) == x.shape, (
                f"RandomShift returned {np.asarray(o).dtype}{list(np.shape(o))} for a float64 "
                f"image of shape {x.shape}; keep shape and dtype")
            s = _shift_of(np.asarray(o), x, 2)
            assert s is not None, (
                "RandomShift(2) returned an image that is not the input shifted by at most 2 "
                "pixels with zeros filled in (no wrap-around)")
            shifts.append(s)
        seqs.append(shifts)
    dys, dxs = {s[0] for s in seqs[0]}, {s[1] for s in seqs[0]}
    assert dys == dxs == set(range(-2, 3)), (
        f"RandomShift(2) drew the offsets dy {sorted(dys)} and dx {sorted(dxs)} in 80 calls; "
        "each of -2..2 should occur")
    assert seqs[0] == seqs[1], "RandomShift with generators seeded alike gave different shifts"


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "data")
def test_noise_and_compose(student, rng):
    """GaussianNoise: mean 0, std as given, dtype kept; no transform changes its input; Compose applies in order"""
    data = student.module("data")
    x = rng.uniform(0, 1, (1, 64, 64))
    held = student.put(student.tensor(x, "float64"))
    noise = data.GaussianNoise(0.3, student.probe("torch_generator", 2))
    out = np.asarray(noise(held))
    assert out.dtype == np.float64, f"GaussianNoise returned {out.dtype} for a float64 image"
    d = out - x
    assert abs(d.mean()) < 0.02 and abs(d.std() - 0.3) < 0.02, (
        f"GaussianNoise(0.3): the noise has mean {d.mean():.3f} and std {d.std():.3f}")
    np.testing.assert_array_equal(student.fetch(held), x,
                                  err_msg="GaussianNoise modified its input in place")
    again = data.GaussianNoise(0.3, student.probe("torch_generator", 2))(held)
    np.testing.assert_array_equal(again, out, err_msg="GaussianNoise with generators seeded alike differ")
    for name, transform in (("RandomHorizontalFlip", data.RandomHorizontalFlip(1.0)),
                            ("RandomShift", data.RandomShift(3, student.probe("torch_generator", 4)))):
        for _ in range(3):
            transform(held)
        np.testing.assert_array_equal(student.fetch(held), x,
                                      err_msg=f"{name} modified its input in place")
    img = _image(rng)
    t = student.tensor(img, "float32")

    def pipeline():
        return (data.RandomShift(2, student.probe("torch_generator", 8)),
                data.RandomHorizontalFlip(1.0, student.probe("torch_generator", 9)))

    shift, flip = pipeline()
    composed = data.Compose([shift, flip])(t)
    shift, flip = pipeline()
    in_order = flip(student.call(shift, t, want="handle"))
    np.testing.assert_allclose(composed, in_order, rtol=1e-6,
                               err_msg="Compose([a, b])(x) must equal b(a(x))")


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "data")
def test_dataset(student, rng):
    """DigitsDataset: len, (transformed image, 0-d int64 label) items, stored images unchanged"""
    data = student.module("data")
    images = rng.uniform(0.5, 1.5, (7, 1, 3, 4))
    labels = rng.integers(0, 10, 7)
    held = student.put(student.tensor(images, "float32"))
    ds = data.DigitsDataset(held, student.tensor(labels),
                            data.RandomHorizontalFlip(1.0, student.probe("torch_generator", 0)))
    n = student.probe("length", ds)
    assert n == 7, f"len(DigitsDataset) is {n!r}, expected 7"
    got = student.probe("items", ds, [0, 6, 3])
    for (img, lab), i in zip(got, [0, 6, 3], strict=True):
        np.testing.assert_allclose(img, images[i][..., ::-1], rtol=1e-6,
                                   err_msg=f"ds[{i}] image: the transform must be applied")
        lab = np.asarray(lab)
        assert lab.shape == () and lab.dtype == np.int64 and int(lab) == labels[i], (
            f"ds[{i}] label is {lab!r}, expected a 0-d int64 tensor {labels[i]}")
    np.testing.assert_allclose(student.fetch(held), images.astype(np.float32),
                               err_msg="reading the dataset changed the stored images")
    plain = data.DigitsDataset(held, student.tensor(labels))
    (img, _), = student.probe("items", plain, [2])
    np.testing.assert_allclose(img, images[2], rtol=1e-6, err_msg="without transform ds[i] is the stored image")


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "data")
@SHAPES
@given(n=st.integers(1, 23), batch=st.integers(1, 9))
def test_loader(student, n, batch):
    """make_loader: batch sizes, order without shuffle, seeded permutations with shuffle"""
    data = student.module("data")
    images = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1)
    ds = data.DigitsDataset(student.tensor(images), student.tensor(np.arange(n)))
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])

    def order(loader):
        got = student.probe("batches", loader)
        assert [len(b[1]) for b in got] == sizes, (
            f"make_loader(batch_size={batch}) over {n} samples gave batches of "
            f"{[len(b[1]) for b in got]}, expected {sizes}")
        for xb, yb in got:
            np.testing.assert_array_equal(np.asarray(xb).reshape(-1), yb,
                                          err_msg="images and labels of a batch do not match")
        return [int(v) for b in got for v in b[1]]

    assert order(data.make_loader(ds, batch)) == list(range(n)), "without shuffle the order must be kept"
    a = data.make_loader(ds, batch, shuffle=True, seed=5)
    first, second = order(a), order(a)
    assert sorted(first) == list(range(n)), "a shuffled pass must visit every sample once"
    b = data.make_loader(ds, batch, shuffle=True, seed=5)
    assert order(b) == first and order(b) == second, (
        "two loaders made with the same seed must give the same batches, pass after pass")
    if n >= 8:
        assert first != second, "each pass of a shuffled loader must draw a new order"
        assert order(data.make_loader(ds, batch, shuffle=True, seed=6)) != first, (
            "loaders made with different seeds gave the same order")
