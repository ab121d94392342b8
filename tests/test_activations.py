"""Activation masks and maximally activating patches: hand-built channels with known answers, the
shapes classifier, mode restoring, and no hooks left behind after an error."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib import zoo
from course_lib.recipes.backbone import crops
from course_lib.visualization.activations import (
    activation_mask,
    crop_patches,
    layer_activations,
    mask_from_map,
    on_mask_share,
    top_activations,
    top_from_maps,
)
from course_lib.visualization.hooks import has_hooks, record
from course_lib.visualization.receptive_field import RF, receptive_field, unit_box


def bright_pixel_detector() -> nn.Sequential:
    """A channel that copies its input (3x3 kernel, 1 in the centre), ReLU, 2x2 max pooling."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
    return nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))


def averaging_model() -> nn.Sequential:
    """A 2x2 average with stride 2, as a convolution: a 4x4 image gives a 2x2 map."""
    conv = nn.Conv2d(1, 2, 2, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(0.25)
        conv.weight[1] = -0.25  # channel 1 is the negative: it never fires on a positive image
    return nn.Sequential(conv)


@pytest.fixture(scope="module")
def shapes():
    return zoo.load("shapes_classifier"), crops("test", 200)[0]


# activation_mask


def test_activation_mask_by_hand():
    image = torch.zeros(1, 4, 4)
    image[0, :2, :2] = 2.0  # the map is [[2, 0], [0, 0]], normalized [[1, 0], [0, 0]]
    result = activation_mask(averaging_model(), image, "0", 0, threshold=0.5)
    torch.testing.assert_close(result["activation"], torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
    # Bilinear, align_corners=False: output pixels sit at source -0.25, 0.25, 0.75, 1.25 (clamped).
    ramp = torch.tensor([1.0, 0.75, 0.25, 0.0])
    torch.testing.assert_close(result["upsampled"], ramp[:, None] * ramp[None, :])
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:2, :2] = True  # 1, 0.75, 0.75, 0.5625 >= 0.5
    assert torch.equal(result["mask"], expected)
    assert result["mask"].dtype == torch.bool
    assert activation_mask(averaging_model(), image, "0", 0, threshold=0.6)["mask"].sum() == 3
    assert activation_mask(averaging_model(), image, "0", 0, threshold=1.0)["mask"].sum() == 1
    assert activation_mask(averaging_model(), image, "0", 0, threshold=0.0)["mask"].sum() == 9


def test_a_channel_that_never_fires_gives_an_empty_mask_not_nan():
    image = torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(0))
    for channel, threshold in [(1, 0.0), (1, 0.5)]:  # channel 1 is negative everywhere
        result = activation_mask(averaging_model(), image, "0", channel, threshold)
        assert not result["mask"].any()
        assert torch.equal(result["upsampled"], torch.zeros(4, 4))
    assert (result["activation"] < 0).all()
    zero = activation_mask(averaging_model(), torch.zeros(1, 4, 4), "0", 0, 0.0)
    assert not zero["mask"].any() and not zero["upsampled"].isnan().any()


def test_activation_mask_on_the_shapes_classifier(shapes):
    model, images = shapes
    result = activation_mask(model, images[0], "features.relu3", 5, threshold=0.5)
    with torch.no_grad(), record(model, "features.relu3") as recorded:
        model(images[:1])
    torch.testing.assert_close(result["activation"], recorded.activations["features.relu3"][0, 5])
    assert result["activation"].shape == (16, 16)
    assert result["upsampled"].shape == result["mask"].shape == (64, 64)
    assert 0.0 <= float(result["upsampled"].min()) and float(result["upsampled"].max()) <= 1.0
    if result["activation"].max() > 0:
        assert result["mask"].any()
    # Raising the threshold never grows the mask.
    masks = [activation_mask(model, images[0], "features.relu3", 5, t)["mask"] for t in (0.2, 0.5, 0.8)]
    assert (masks[1] <= masks[0]).all() and (masks[2] <= masks[1]).all()


def test_activation_mask_runs_in_eval_mode_and_restores_the_modes(shapes):
    model, images = shapes
    expected = activation_mask(model, images[0], "features.relu2", 3)
    model.train()
    model.features.bn1.eval()  # a mixed state must come back as it was
    running_mean = model.features.bn2.running_mean.clone()
    try:
        result = activation_mask(model, images[0], "features.relu2", 3)
        assert model.training and model.features.bn2.training and not model.features.bn1.training
        torch.testing.assert_close(result["upsampled"], expected["upsampled"])  # eval-mode batch norm
        assert torch.equal(model.features.bn2.running_mean, running_mean)  # statistics untouched
        with pytest.raises(ValueError, match="channel"):
            activation_mask(model, images[0], "features.relu2", 64)
        assert model.training and not model.features.bn1.training
    finally:
        model.eval()


def test_activation_mask_bad_input(shapes):
    model, images = shapes
    for threshold in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"threshold: expected a value in \[0.0, 1.0\]"):
            activation_mask(model, images[0], "features.relu3", 0, threshold)
    for channel in (128, -1):
        with pytest.raises(ValueError, match=f"channel: expected 0..127, got {channel}"):
            activation_mask(model, images[0], "features.relu3", channel)
    assert not has_hooks(model)
    with pytest.raises(ValueError, match="unknown name 'features.relu9'"):
        activation_mask(model, images[0], "features.relu9", 0)
    with pytest.raises(ValueError, match="expected a layer with a"):
        activation_mask(model, images[0], "fc", 0)
    with pytest.raises(ValueError, match=r"image: expected a Tensor\[C, H, W\]"):
        activation_mask(model, images[:1], "features.relu3", 0)
    with pytest.raises(TypeError, match="channel: expected an int"):
        activation_mask(model, images[0], "features.relu3", 1.0)
    assert not has_hooks(model)


# layer_activations


def test_layer_activations_are_every_channel_of_a_manual_forward_pass():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    model[1].running_mean.uniform_()  # eval mode must use these, not the batch's statistics
    images = torch.rand(5, 2, 8, 8)
    maps = layer_activations(model, images, "2", batch_size=2)  # three batches: 2, 2, 1
    with torch.no_grad():
        expected = model.eval()(images)
    assert maps.shape == (5, 4, 6, 6) and not maps.requires_grad
    torch.testing.assert_close(maps, expected)
    torch.testing.assert_close(layer_activations(model, images[:1], "2")[0], expected[0])  # one of the batch
    assert not has_hooks(model)


def test_layer_activations_restore_the_modes_and_reject_bad_input():
    model = bright_pixel_detector()
    model.train()
    model[1].eval()  # a mixed state comes back as it was
    assert layer_activations(model, planted_images(), "1").shape == (6, 1, 16, 16)
    assert model.training and model[0].training and not model[1].training
    assert layer_activations(model, torch.zeros(0, 1, 16, 16), "2").shape == (0, 1, 8, 8)
    with pytest.raises(ValueError, match=r"images: expected a Tensor\[N, C, H, W\], got shape \(1, 16, 16\)"):
        layer_activations(model, planted_images()[0], "1")
    with pytest.raises(ValueError, match=r"batch_size: expected a value in \[1, inf\]"):
        layer_activations(model, planted_images(), "1", batch_size=0)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"layer: expected a layer with a \(B, C, H, W\) output"):
        layer_activations(flat, torch.rand(1, 1, 2, 2), "1")
    assert not has_hooks(flat) and model.training


# mask_from_map


def test_mask_from_map_hand_computed():
    view = mask_from_map(torch.tensor([[0.0, 2.0], [4.0, -1.0]]), (2, 2), threshold=0.5)
    assert view["upsampled"].tolist() == [[0.0, 0.5], [1.0, 0.0]]  # clamp at 0, divide by the peak 4
    assert view["mask"].tolist() == [[False, True], [True, False]]
    empty = mask_from_map(torch.zeros(3, 3), (6, 6), threshold=0.0)  # never fires: no NaN, empty mask
    assert not empty["mask"].any() and torch.equal(empty["upsampled"], torch.zeros(6, 6))


def test_activation_mask_is_mask_from_map_on_the_recorded_channel():
    model, images = bright_pixel_detector(), planted_images()
    maps = layer_activations(model, images, "2")  # (6, 1, 8, 8)
    for index, threshold in [(4, 0.5), (1, 0.0), (0, 0.9)]:
        expected = mask_from_map(maps[index, 0], (16, 16), threshold)
        result = activation_mask(model, images[index], "2", 0, threshold)
        for key in ("activation", "upsampled", "mask"):
            assert torch.equal(result[key], expected[key]), (index, key)


@settings(max_examples=20)
@given(st.integers(0, 2**16), st.floats(0, 1), st.floats(0, 1))
def test_mask_shrinks_as_threshold_rises(seed, a, b):
    activation = torch.randn(5, 5, generator=torch.Generator().manual_seed(seed))
    low, high = sorted((a, b))
    small = mask_from_map(activation, (20, 20), high)["mask"]
    large = mask_from_map(activation, (20, 20), low)["mask"]
    assert not (small & ~large).any()


def test_mask_from_map_bad_input():
    with pytest.raises(ValueError, match=r"activation: expected a Tensor\[h, w\], got shape \(1, 2, 2\)"):
        mask_from_map(torch.zeros(1, 2, 2), (4, 4), 0.5)
    with pytest.raises(ValueError, match=r"threshold: expected a value in \[0.0, 1.0\]"):
        mask_from_map(torch.zeros(2, 2), (4, 4), 1.5)


# top_from_maps


def test_top_from_maps_hand_computed():
    maps = torch.tensor([[[0.0, 1.0], [2.0, 0.5]],  # image 0: best unit (1, 0), value 2
                         [[3.0, 0.0], [0.0, 3.0]],  # image 1: a tie, the first unit (0, 0) wins
                         [[0.0, 0.0], [0.0, 2.0]]])  # image 2: value 2 as image 0, the lower index first
    top = top_from_maps(maps, RF(size=4, stride=2, start=-1), k=3)
    assert top["indices"].tolist() == [1, 0, 2]
    assert top["rows"].tolist() == [0, 1, 1] and top["cols"].tolist() == [0, 0, 1]
    assert top["values"].tolist() == [3.0, 2.0, 2.0]
    # unit (row, col) sees x from start + col * stride, y from start + row * stride, size pixels wide
    assert top["fields"].tolist() == [[-1, -1, 3, 3], [-1, 1, 3, 5], [1, 1, 5, 5]]
    assert top["fields"].dtype == torch.float32 and top["indices"].dtype == torch.int64
    assert top_from_maps(maps, RF(size=4, stride=2, start=-1), k=1)["indices"].tolist() == [1]


def test_top_from_maps_empty_and_bad_input():
    rf = RF(size=3, stride=1, start=0)
    empty = top_from_maps(torch.zeros(0, 4, 4), rf, k=5)
    assert empty["indices"].shape == (0,) and empty["fields"].shape == (0, 4)
    assert top_from_maps(torch.rand(3, 4, 4), rf, k=0)["fields"].shape == (0, 4)
    with pytest.raises(ValueError, match=r"maps: expected a Tensor\[N, h, w\], got shape \(4, 4\)"):
        top_from_maps(torch.rand(4, 4), rf, k=1)
    with pytest.raises(ValueError, match="k: expected a value in"):
        top_from_maps(torch.rand(2, 4, 4), rf, k=-1)


# top_activations


def planted_images():
    """Six dim images; images 4, 1 and 3 get one bright pixel each, at known places."""
    images = 0.1 * torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    images[4, 0, 9, 2] = 3.0
    images[1, 0, 0, 15] = 2.0
    images[3, 0, 14, 7] = 1.5
    return images


def test_top_activations_find_the_planted_pixels():
    model, images = bright_pixel_detector(), planted_images()
    result = top_activations(model, images, "2", 0, k=3)
    assert result["indices"].tolist() == [4, 1, 3]
    assert result["rows"].tolist() == [4, 0, 7] and result["cols"].tolist() == [1, 7, 3]  # pixel // 2
    torch.testing.assert_close(result["values"], torch.tensor([3.0, 2.0, 1.5]))
    rf = result["rf"]
    assert (rf.size, rf.stride, rf.start) == (4, 2, -1)
    assert result["boxes"].tolist() == [[1, 7, 5, 11], [13, 0, 16, 3], [5, 13, 9, 16]]
    assert result["fields"].tolist() == [[1, 7, 5, 11], [13, -1, 17, 3], [5, 13, 9, 17]]
    planted = [(9, 2), (0, 15), (14, 7)]  # (y, x) of the bright pixels of images 4, 1, 3
    for (x1, y1, x2, y2), (y, x) in zip(result["boxes"].long().tolist(), planted, strict=True):
        assert x1 <= x < x2 and y1 <= y < y2  # the bright pixel is inside its unit's field
    assert result["indices"].dtype == result["rows"].dtype == torch.int64


def test_top_activations_equal_a_brute_force_search():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 3, 3, padding=1))
    images = torch.rand(11, 2, 14, 14)
    result = top_activations(model, images, "3", 2, k=5, batch_size=4)
    with torch.no_grad():
        maps = model(images)[:, 2]  # (N, h, w)
    scored = sorted(((-float(m.max()), n) for n, m in enumerate(maps)))[:5]
    assert result["indices"].tolist() == [n for _, n in scored]
    for index, row, col, value in zip(result["indices"], result["rows"], result["cols"], result["values"],
                                      strict=True):
        assert float(maps[index, row, col]) == float(value) == float(maps[index].max())
    assert len(top_activations(model, images, "3", 2, k=20)["indices"]) == 11  # k > N: all images


def test_ties_go_to_the_lower_image_index_and_the_first_unit():
    model = bright_pixel_detector()
    images = torch.zeros(4, 1, 8, 8)
    images[2, 0, 6, 6] = images[2, 0, 1, 1] = 1.0
    images[0, 0, 3, 3] = 1.0
    result = top_activations(model, images, "2", 0, k=4)
    assert result["indices"].tolist() == [0, 2, 1, 3]
    assert (result["rows"][1], result["cols"][1]) == (0, 0)


def test_top_activations_on_the_shapes_classifier(shapes):
    model, images = shapes
    result = top_activations(model, images, "features.relu3", 7, k=9)
    again = top_activations(model, images, "features.relu3", 7, k=9, batch_size=33)
    assert torch.equal(result["indices"], again["indices"]) and torch.equal(result["values"], again["values"])
    assert len(set(result["indices"].tolist())) == 9
    assert (result["values"][:-1] >= result["values"][1:]).all()
    with torch.no_grad(), record(model, "features.relu3") as recorded:
        model(images)
    maps = recorded.activations["features.relu3"][:, 7]  # (N, 16, 16)
    assert float(result["values"][0]) == float(maps.max())
    rf = receptive_field(model, "features.relu3")
    positions = zip(result["indices"], result["rows"], result["cols"], result["boxes"], strict=True)
    for index, row, col, box in positions:
        assert float(maps[index, row, col]) == float(maps[index].max())
        assert tuple(box.long().tolist()) == unit_box(rf, int(row), int(col), 64)
    patches = crop_patches(images[result["indices"]], result["fields"])
    assert patches.shape == (9, 3, 18, 18)
    from_boxes = crop_patches(images[result["indices"]], result["boxes"], size=rf.size)
    torch.testing.assert_close(patches, from_boxes)
    assert not has_hooks(model)


def test_top_activations_empty_and_bad_input(shapes):
    model, images = shapes
    empty = top_activations(model, images[:0], "features.relu3", 0)
    assert empty["indices"].shape == (0,) and empty["indices"].dtype == torch.int64
    assert empty["boxes"].shape == empty["fields"].shape == (0, 4) and empty["values"].shape == (0,)
    assert top_activations(model, images[:3], "features.relu3", 0, k=0)["boxes"].shape == (0, 4)
    with pytest.raises(ValueError, match="channel: expected 0..127, got 128"):
        top_activations(model, images[:4], "features.relu3", 128)
    assert not has_hooks(model)
    with pytest.raises(ValueError, match="'fc' follows other modules"):  # no receptive field
        top_activations(model, images[:4], "fc", 0)
    with pytest.raises(ValueError, match="unknown name"):
        top_activations(model, images[:4], "features.relu7", 0)
    with pytest.raises(ValueError, match="k: expected a value in"):
        top_activations(model, images[:4], "features.relu3", 0, k=-1)
    with pytest.raises(ValueError, match=r"images: expected a Tensor\[N, C, H, W\]"):
        top_activations(model, images[0], "features.relu3", 0)
    with pytest.raises(ValueError, match=r"expected a Tensor\[B, 3, H, W\]"):  # the model refuses 1 channel
        top_activations(model, images[:4, :1], "features.relu3", 0)
    assert not has_hooks(model)


# crop_patches


def test_crop_patches_by_hand():
    image = torch.arange(25.0).reshape(1, 1, 5, 5)
    crop = crop_patches(image, torch.tensor([[-1.0, -1.0, 2.0, 2.0]]))[0, 0]
    torch.testing.assert_close(crop, torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 5.0, 6.0]]))
    # The same field clipped to the image, padded back on the side that touches the border.
    torch.testing.assert_close(crop_patches(image, torch.tensor([[0.0, 0.0, 2.0, 2.0]]), size=3)[0, 0], crop)
    end = crop_patches(image, torch.tensor([[3.0, 4.0, 5.0, 5.0]]), size=3)[0, 0]
    torch.testing.assert_close(end, torch.tensor([[23.0, 24.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    whole = crop_patches(image, torch.tensor([[0.0, 0.0, 5.0, 5.0]]), size=7)[0, 0]  # both borders: centred
    torch.testing.assert_close(whole[1:6, 1:6], image[0, 0])
    assert whole.sum() == image.sum()


def test_crop_patches_equal_slicing_a_zero_padded_image():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(7, 2, 9, 11, generator=generator)
    corners = torch.randint(-4, 12, (7, 2), generator=generator).float()
    boxes = torch.cat([corners, corners + 5], dim=1)
    padded = F.pad(images, (5, 5, 5, 5))
    expected = torch.stack([padded[n, :, int(y) + 5 : int(y) + 10, int(x) + 5 : int(x) + 10]
                            for n, (x, y) in enumerate(corners)])
    torch.testing.assert_close(crop_patches(images, boxes), expected)


def test_crop_patches_edge_and_bad_input():
    images = torch.rand(2, 3, 8, 8)
    assert crop_patches(images[:0], torch.zeros(0, 4)).shape == (0, 3, 0, 0)
    assert crop_patches(images[:0], torch.zeros(0, 4), size=5).shape == (0, 3, 5, 5)
    with pytest.raises(ValueError, match="integer pixel coordinates"):
        crop_patches(images, torch.tensor([[0.5, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]]))
    with pytest.raises(ValueError, match="sides of at most size=2, got 3"):
        crop_patches(images, torch.tensor([[0.0, 0.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]]), size=2)
    with pytest.raises(ValueError, match=r"expected a Tensor\[1, C, H, W\] \(one per box\)"):
        crop_patches(images, torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    with pytest.raises(ValueError, match="x2 >= x1"):
        crop_patches(images[:1], torch.tensor([[3.0, 0.0, 2.0, 2.0]]))


# on_mask_share


def test_on_mask_share_by_hand():
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, :2, :2] = 2.0  # channel 0's mask at 0.5 is the top-left 2 x 2 (test_activation_mask_by_hand)
    objects = torch.zeros(1, 4, 4, dtype=torch.uint8)
    objects[0, :, 0] = 1  # the left column: 2 of the mask's 4 pixels
    result = on_mask_share(averaging_model(), "0", image, objects, threshold=0.5)
    assert result["channels"].tolist() == [0]  # channel 1 is negative everywhere
    torch.testing.assert_close(result["share"], torch.tensor([0.5]))
    torch.testing.assert_close(result["mask_area"], torch.tensor([4 / 16]))
    torch.testing.assert_close(result["object_area"], torch.tensor([4 / 16]))
    never = on_mask_share(averaging_model(), "0", image, objects, channel=1)  # empty mask: share 0, not NaN
    assert never["share"].tolist() == [0.0] and never["mask_area"].tolist() == [0.0]


def direct_share(model, image, objects, layer, threshold, channel=None):
    """The share for one image, the slow way: record the layer, pick the channel, activation_mask."""
    with torch.no_grad(), record(model, layer) as recorded:
        model(image[None])
    if channel is None:
        channel = int(recorded.activations[layer][0].amax(dim=(1, 2)).argmax())
    mask = activation_mask(model, image, layer, channel, threshold)["mask"]
    return float((mask & objects.bool()).sum() / mask.sum()), channel


@pytest.mark.parametrize(
    "layer, threshold, channel",
    [("features.relu4", 0.5, None), ("features.relu2", 0.3, None), ("features.relu3", 0.7, 17)],
)
def test_on_mask_share_equals_activation_mask_image_by_image(shapes, layer, threshold, channel):
    model, images = shapes
    images = images[:12]
    objects = torch.stack([images[i].mean(dim=0) > images[i].mean() for i in range(12)])  # any masks will do
    result = on_mask_share(model, layer, images, objects, threshold, channel, batch_size=5)
    for index in range(12):
        share, used = direct_share(model, images[index], objects[index], layer, threshold, channel)
        assert int(result["channels"][index]) == used
        assert float(result["share"][index]) == pytest.approx(share, abs=1e-6)
    torch.testing.assert_close(result["object_area"], objects.flatten(1).float().mean(dim=1))
    assert not has_hooks(model)


def test_on_mask_share_empty_and_bad_input(shapes):
    model, images = shapes
    objects = torch.zeros(3, 64, 64, dtype=torch.uint8)
    empty = on_mask_share(model, "features.relu4", images[:0], objects[:0])
    assert all(value.shape == (0,) for value in empty.values())
    with pytest.raises(ValueError, match=r"masks: expected a Tensor\[3, 64, 64\]"):
        on_mask_share(model, "features.relu4", images[:3], objects[:2])
    with pytest.raises(ValueError, match=r"masks: expected values in \{0, 1\}"):
        on_mask_share(model, "features.relu4", images[:3], objects + 2)
    with pytest.raises(ValueError, match="channel: expected 0..127, got 128"):
        on_mask_share(model, "features.relu4", images[:3], objects, channel=128)
    with pytest.raises(ValueError, match=r"threshold: expected a value in \[0.0, 1.0\]"):
        on_mask_share(model, "features.relu4", images[:3], objects, threshold=2.0)
    with pytest.raises(ValueError, match=r"images: expected a Tensor\[N, C, H, W\]"):
        on_mask_share(model, "features.relu4", images[0], objects[0])
    assert not has_hooks(model)
