"""Hidden: blocks and U-Nets against the grader's forward pass, parameter counts, init.

Every module is checked by value, not only by shape: the grader loads random weights and
BatchNorm statistics into it (by the documented submodule names) and compares its
output, in evaluation mode, with its own numpy forward pass of the same weights
(conftest.Ref). Shapes and configurations are drawn by Hypothesis (derandomized, no
deadline, bounded examples), image sizes odd and even, down to a few pixels.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.errors import StudentError

pytestmark = [pytest.mark.visibility("after_published")]

SHAPES = settings(
    derandomize=True,
    deadline=None,
    max_examples=8,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLASSES = {"conv": "ConvBlock", "res": "ResBlock", "separable": "SeparableBlock"}


def _eval(student, module):
    student.call(module.eval, want="none")


def _input(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- blocks


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "blocks")
@pytest.mark.parametrize("kind", ["conv", "res", "separable"])
@SHAPES
@given(
    cin=st.integers(1, 6),
    cout=st.integers(1, 6),
    stride=st.sampled_from([1, 2]),
    h=st.integers(1, 11),
    w=st.integers(1, 11),
    n=st.integers(1, 3),
)
def test_block_forward(student, ref, load_random_state, kind, cin, cout, stride, h, w, n):
    """Each block computes its documented layers, for any channels, stride and size"""
    blocks = student.module("blocks")
    what = f"blocks.{CLASSES[kind]}({cin}, {cout}, stride={stride})"
    block = getattr(blocks, CLASSES[kind])(cin, cout, stride=stride)
    rng = np.random.default_rng([cin, cout, stride, h, w, n])
    state = load_random_state(block, ref.block_shapes(kind, cin, cout, stride), rng, what)
    _eval(student, block)
    x = _input(h * w + n, (n, cin, h, w))
    out = block(student.tensor(x))
    expected = ref.block(kind, state, x, stride)
    ref.assert_close(f"{what} on input {x.shape} (eval mode)", out, expected,
                     hint=f"expected shape (N, out, ceil(H/{stride}), ceil(W/{stride}))")
    assert np.asarray(out).dtype == np.float32, f"{what} returned {np.asarray(out).dtype}"


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "blocks")
def test_block_parameter_counts(student, ref):
    """Parameter counts of the three blocks match the closed forms, with and without stride"""
    blocks = student.module("blocks")
    for kind, cls in CLASSES.items():
        for cin, cout, stride in ((3, 5, 1), (8, 8, 1), (8, 8, 2), (16, 32, 2)):
            got = student.probe("count_parameters", getattr(blocks, cls)(cin, cout, stride=stride))
            expected = ref.block_params(kind, cin, cout, stride)
            assert got == expected, (
                f"blocks.{cls}({cin}, {cout}, stride={stride}) has {got} parameters, expected "
                f"{expected}")


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "blocks", "resnet")
def test_resblock_is_its_shortcut_when_last_conv_is_zero(student, ref, load_random_state, rng):
    """ResBlock with conv2 zeroed: identity block returns x, projection block its 1x1 conv"""
    blocks = student.module("blocks")
    for cin, cout, stride in ((6, 6, 1), (4, 6, 1), (6, 6, 2)):
        what = f"blocks.ResBlock({cin}, {cout}, stride={stride})"
        block = blocks.ResBlock(cin, cout, stride=stride)
        state = load_random_state(block, ref.block_shapes("res", cin, cout, stride), rng, what)
        student.probe("load_state", block, {"conv2.weight": np.zeros((cout, cout, 3, 3))})
        x = _input(cin + stride, (3, cin, 7, 6))
        expected = x if "shortcut.weight" not in state else ref.conv2d(
            x, state["shortcut.weight"], None, stride, 0)
        for mode in ("train", "eval"):  # the residual branch is zero in both modes
            student.call(getattr(block, mode), want="none")
            ref.assert_close(f"{what} with conv2 zeroed ({mode} mode)", block(student.tensor(x)),
                             expected, hint="the output must be shortcut(x) exactly: no ReLU or "
                             "BatchNorm after the addition, and a 1x1 stride-s projection "
                             "only when the shape changes")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "blocks", "mobilenet")
def test_separable_block_is_depthwise(student, ref):
    """SeparableBlock: a depthwise 3x3 conv (groups = in) and a 1x1 pointwise conv"""
    blocks = student.module("blocks")
    cin, cout = 32, 64
    block = blocks.SeparableBlock(cin, cout, stride=2)
    convs = student.probe("conv_layers", block)
    depthwise = [c for c in convs if c["kernel"] == [3, 3]]
    pointwise = [c for c in convs if c["kernel"] == [1, 1]]
    assert len(depthwise) == 1 and len(pointwise) == 1 and len(convs) == 2, (
        f"blocks.SeparableBlock({cin}, {cout}) should hold one 3x3 depthwise and one 1x1 "
        f"convolution, found {[(c['name'], c['kernel'], c['groups']) for c in convs]}")
    d, p = depthwise[0], pointwise[0]
    assert (d["in"], d["out"], d["groups"], d["stride"]) == (cin, cin, cin, [2, 2]), (
        f"the depthwise convolution is {d}; expected {cin} -> {cin} channels with "
        f"groups={cin} and stride 2")
    assert (p["in"], p["out"], p["groups"], p["stride"]) == (cin, cout, 1, [1, 1]), (
        f"the pointwise convolution is {p}; expected {cin} -> {cout}, stride 1")
    assert not d["bias"] and not p["bias"], "convolutions followed by BatchNorm have no bias"
    separable = student.probe("count_parameters", block)
    full = student.probe("count_parameters", blocks.ConvBlock(cin, cout, stride=2))
    conv1 = 9 * cin * cout + 2 * cout  # the first conv + BN of a ConvBlock: the same job
    fraction = separable / conv1
    expected = ref.block_params("separable", cin, cout) / conv1
    assert fraction == pytest.approx(expected, rel=1e-9) and fraction < 0.15, (
        f"SeparableBlock({cin}, {cout}) has {separable} parameters, {fraction:.3f} of a full "
        f"3x3 conv + BN ({conv1}); expected {expected:.3f} (about 1/out + 1/9)")
    assert full == ref.block_params("conv", cin, cout, 2), (
        f"blocks.ConvBlock({cin}, {cout}) has {full} parameters, expected "
        f"{ref.block_params('conv', cin, cout, 2)}")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "blocks", "init")
def test_he_initialization(student):
    """Block convolutions are He-initialized N(0, 2/fan_in); BatchNorm starts at 1 and 0"""
    blocks = student.module("blocks")
    cases = [("ConvBlock", (48, 96), {"conv1.weight": 48 * 9, "conv2.weight": 96 * 9}),
             ("ResBlock", (96, 48), {"conv1.weight": 96 * 9, "conv2.weight": 48 * 9,
                                     "shortcut.weight": 96}),
             ("SeparableBlock", (512, 64), {"depthwise.weight": 9, "pointwise.weight": 512})]
    # >= 4608 weights each: a correct draw passes the bands below by > 6 standard errors
    student.probe("deterministic_torch", 3)
    for cls, (cin, cout), fans in cases:
        state = student.probe("state_dict", getattr(blocks, cls)(cin, cout, stride=2))
        for name, fan_in in fans.items():
            assert name in state, f"blocks.{cls} has no parameter {name!r}"
            w = np.asarray(state[name], np.float64)
            std, mean = float(w.std()), float(w.mean())
            expected = np.sqrt(2.0 / fan_in)
            assert abs(std / expected - 1.0) < 0.1 and abs(mean) < 0.1 * expected, (
                f"blocks.{cls}({cin}, {cout}).{name}: std {std:.4f}, mean {mean:.4f}; He "
                f"initialization gives std sqrt(2 / fan_in) = {expected:.4f} with fan_in = "
                f"{fan_in} (kaiming_normal_, mode='fan_in', nonlinearity='relu')")
        for name, value in state.items():
            if name.endswith(("bn1.weight", "bn2.weight")):
                assert np.all(np.asarray(value) == 1.0), f"blocks.{cls}.{name} should start at 1"
            if name.endswith(("bn1.bias", "bn2.bias")):
                assert np.all(np.asarray(value) == 0.0), f"blocks.{cls}.{name} should start at 0"


# ---------------------------------------------------------------- U-Net


@pytest.mark.points(3)
@pytest.mark.tags("shapes", "unet")
@SHAPES
@given(
    depth=st.integers(1, 3),
    width=st.integers(2, 4),
    upsample=st.sampled_from(["bilinear", "transpose"]),
    block=st.sampled_from(["conv", "res", "separable"]),
    h=st.integers(3, 21),
    w=st.integers(3, 21),
    n=st.integers(1, 2),
    cin=st.integers(1, 2),
    cout=st.integers(1, 5),
)
def test_unet_forward(student, ref, load_random_state, depth, width, upsample, block, h, w, n,
                      cin, cout):
    """UNet: the documented architecture, output (N, out, H, W) for odd and even sizes"""
    unet = student.module("unet")
    what = (f"unet.UNet({cin}, {cout}, depth={depth}, width={width}, upsample={upsample!r}, "
            f"block={block!r})")
    model = unet.UNet(cin, cout, depth=depth, width=width, upsample=upsample, block=block)
    rng = np.random.default_rng([depth, width, h, w, n, cin, cout])
    shapes = ref.unet_shapes(cin, cout, depth, width, upsample, block)
    state = load_random_state(model, shapes, rng, what)
    _eval(student, model)
    x = _input(h * 31 + w, (n, cin, h, w))
    out = model(student.tensor(x))
    expected = ref.unet(state, x, depth, upsample, block)
    ref.assert_close(f"{what} on input {x.shape} (eval mode)", out, expected, hint=(
        "upsample to the size of the skip connection, concatenate [upsampled, skip] in this "
        "order"))


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "unet")
def test_unet_parameter_counts(student, ref):
    """UNet parameter counts for several depths, widths, upsamplings and blocks"""
    unet = student.module("unet")
    for cin, cout, depth, width, upsample, block in [
        (1, 4, 2, 8, "bilinear", "conv"), (1, 7, 3, 8, "transpose", "conv"),
        (3, 2, 4, 4, "bilinear", "res"), (1, 4, 2, 16, "transpose", "separable"),
    ]:
        model = unet.UNet(cin, cout, depth=depth, width=width, upsample=upsample, block=block)
        got = student.probe("count_parameters", model)
        expected = ref.unet_params(cin, cout, depth, width, upsample, block)
        assert got == expected, (
            f"unet.UNet({cin}, {cout}, depth={depth}, width={width}, upsample={upsample!r}, "
            f"block={block!r}) has {got} parameters, expected {expected}")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "unet")
def test_unet_rejects_unknown_options(student):
    """UNet raises ValueError for an unknown upsample mode or block name"""
    unet = student.module("unet")
    for kwargs in ({"upsample": "nearest"}, {"block": "dense"}):
        with pytest.raises(StudentError) as info:
            unet.UNet(1, 4, **kwargs)
        assert info.value.type_name == "ValueError", (
            f"unet.UNet(1, 4, **{kwargs}) raised {info.value.type_name}, expected ValueError")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "unet", "landmarks")
def test_seg_landmark_net(student, ref, load_random_state, rng):
    """SegLandmarkNet: one U-Net, first num_classes channels segment, the rest are heatmaps"""
    unet = student.module("unet")
    what = "unet.SegLandmarkNet(num_classes=3, num_landmarks=2, depth=2, width=3)"
    model = unet.SegLandmarkNet(2, num_classes=3, num_landmarks=2, depth=2, width=3,
                                upsample="transpose", block="res")
    shapes = ref.unet_shapes(2, 5, 2, 3, "transpose", "res", prefix="unet.")
    state = load_random_state(model, shapes, rng, what)
    _eval(student, model)
    x = _input(5, (2, 2, 11, 9))
    out = model(student.tensor(x))
    assert isinstance(out, tuple | list) and len(out) == 2, (
        f"{what} returned {type(out).__name__}, expected a tuple (seg_logits, heatmaps)")
    expected = ref.unet(state, x, 2, "transpose", "res", prefix="unet.")
    ref.assert_close(f"{what}: seg_logits", out[0], expected[:, :3])
    ref.assert_close(f"{what}: heatmaps", out[1], expected[:, 3:])
