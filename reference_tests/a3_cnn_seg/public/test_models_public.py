"""Public tests for blocks.py and unet.py: shapes, parameter counts, small known answers.

Run them with `autograder check a3` in your assignment folder. Your code runs in a
separate process through the `student` fixture; what comes back is plain numpy arrays.
The graded (hidden) tests check the same things more thoroughly: every block and U-Net
configuration against the grader's own forward pass, random odd image sizes, gradients,
training on phantoms, and speed.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("visible")]


def _count(student, module):
    return student.probe("count_parameters", module)


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "blocks")
@pytest.mark.hint("3x3 convolutions with padding 1; only the first one has the stride.")
def test_block_shapes(student):
    """ConvBlock, ResBlock and SeparableBlock: (N, out, ceil(H/s), ceil(W/s)) outputs"""
    blocks = student.module("blocks")
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
    for name in ("ConvBlock", "ResBlock", "SeparableBlock"):
        for stride, expected in ((1, (2, 5, 9, 8)), (2, (2, 5, 5, 4))):
            block = getattr(blocks, name)(3, 5, stride=stride)
            out = block(student.tensor(x))
            assert isinstance(out, np.ndarray), (
                f"blocks.{name} returned {type(out).__name__}, expected a tensor")
            assert out.shape == expected, (
                f"blocks.{name}(3, 5, stride={stride}) returned shape {out.shape} for input "
                f"{x.shape}, expected {expected}")
            assert out.dtype == np.float32, f"blocks.{name} returned {out.dtype}, expected float32"


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "blocks")
def test_block_parameter_counts(student):
    """Parameter counts of the three blocks (16 -> 32 channels)"""
    blocks = student.module("blocks")
    i, o = 16, 32
    expected = {
        "ConvBlock": 9 * i * o + 9 * o * o + 4 * o,
        "ResBlock": 2 * i + 9 * i * o + 2 * o + 9 * o * o + i * o,
        "SeparableBlock": 9 * i + 2 * i + i * o + 2 * o,
    }
    for name, count in expected.items():
        got = _count(student, getattr(blocks, name)(i, o))
        assert got == count, f"blocks.{name}({i}, {o}) has {got} parameters, expected {count}"


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "blocks")
@pytest.mark.hint("No ReLU after the addition; the shortcut of an identity block is nn.Identity().")
def test_resblock_identity_when_last_conv_is_zero(student):
    """ResBlock(8, 8): with conv2's weights zeroed the block returns its input"""
    blocks = student.module("blocks")
    block = blocks.ResBlock(8, 8)
    state = student.probe("state_dict", block)
    student.probe("load_state", block, {"conv2.weight": np.zeros_like(state["conv2.weight"])})
    x = np.random.default_rng(1).standard_normal((2, 8, 5, 6)).astype(np.float32)
    out = block(student.tensor(x))
    assert isinstance(out, np.ndarray) and out.shape == x.shape, (
        f"blocks.ResBlock(8, 8) returned {type(out).__name__} {np.shape(out)}, expected {x.shape}")
    np.testing.assert_allclose(out, x, rtol=1e-6, atol=1e-6,
                               err_msg="ResBlock with conv2 zeroed should be the identity")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "unet")
@pytest.mark.hint("Upsample to the size of the skip connection, not by a fixed factor of 2.")
def test_unet_output_shape(student):
    """UNet keeps the image size, also for sizes not divisible by 2**depth"""
    unet = student.module("unet")
    for upsample in ("bilinear", "transpose"):
        model = unet.UNet(1, 4, depth=2, width=4, upsample=upsample)
        student.call(model.eval, want="none")
        for h, w in ((32, 32), (13, 7)):
            x = np.random.default_rng(h).standard_normal((2, 1, h, w)).astype(np.float32)
            out = model(student.tensor(x))
            assert isinstance(out, np.ndarray), (
                f"unet.UNet returned {type(out).__name__}, expected a tensor")
            assert out.shape == (2, 4, h, w), (
                f"unet.UNet(upsample={upsample!r}) returned shape {out.shape} for input "
                f"{x.shape}, expected {(2, 4, h, w)}")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "unet")
def test_seg_landmark_net(student):
    """SegLandmarkNet returns (seg_logits, heatmaps) with 4 and 3 channels"""
    unet = student.module("unet")
    model = unet.SegLandmarkNet(num_classes=4, num_landmarks=3, depth=2, width=4)
    student.call(model.eval, want="none")
    x = np.random.default_rng(2).standard_normal((2, 1, 16, 16)).astype(np.float32)
    out = model(student.tensor(x))
    assert isinstance(out, tuple | list) and len(out) == 2, (
        f"unet.SegLandmarkNet returned {type(out).__name__}, expected (seg_logits, heatmaps)")
    seg, heat = out
    assert np.shape(seg) == (2, 4, 16, 16), f"seg_logits has shape {np.shape(seg)}"
    assert np.shape(heat) == (2, 3, 16, 16), f"heatmaps has shape {np.shape(heat)}"
